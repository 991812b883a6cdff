"""The status page in a real headless Chromium (Debian's chromium, driven by Playwright's Python package
with executable_path) against the daemon on the lab. Screenshots go to test-output/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.browser import SHOTS, chromium, other_origin
from tests.integration.conftest import Daemon, commit_of


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def sign_in(page: Page, daemon: Daemon, scope: str) -> None:
    page.goto(daemon.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))   # no session: sent to the login form
    page.fill("input[name=token]", daemon.tokens[scope])
    page.click("button[type=submit]")
    expect(page.locator("#apps")).to_be_visible()


def test_the_page_lists_apps_shows_tasks_and_watches_a_sync_to_synced(
        lab: docker.APIClient, daemon: Daemon, browser: Browser) -> None:
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_context().new_page()
    sign_in(page, daemon, "read")
    row = page.locator(f"tr.app[data-app='{daemon.app}']")
    expect(row.locator(".status")).to_have_text("Synced")
    expect(row).to_contain_text("first")                      # the running commit's message
    page.click(f"text={daemon.app}")
    expect(page.locator("#tasks")).to_contain_text("running")
    app_nodes = [n["Description"]["Hostname"] for n in lab.nodes() if n["Spec"]["Labels"].get("role") == "app"]
    expect(page.locator("#tasks")).to_contain_text(re.compile("|".join(map(re.escape, app_nodes))))
    expect(page.locator("#diff")).to_contain_text("no change")
    expect(page.locator("#sync")).to_have_count(0)             # a read session has no buttons
    page.screenshot(path=str(SHOTS / "page-read-session.png"), full_page=True)

    deploy = browser.new_context().new_page()
    sign_in(deploy, daemon, "deploy")
    second = daemon.repo.commit("second from the page", {"web/index.html": "v2\n"})
    deploy.goto(f"{daemon.url}/apps/{daemon.app}")
    deploy.click("#diff-now")                                  # a diff fetches: an explicit action, not a view
    expect(deploy.locator("#diff")).to_contain_text("web")     # git is ahead of what runs
    deploy.click("#sync")
    expect(deploy.locator("#status")).to_have_text("Progressing", timeout=10_000)
    deploy.screenshot(path=str(SHOTS / "page-progressing.png"), full_page=True)
    # nobody reloads: the page refreshes itself while the deploy runs
    expect(deploy.locator("#status")).to_have_text("Synced", timeout=90_000)
    expect(deploy.locator("#commit")).to_have_text(second[:12])
    assert commit_of(lab, daemon.app) == second
    deploy.screenshot(path=str(SHOTS / "page-synced.png"), full_page=True)
    assert daemon.tokens["deploy"] not in deploy.content()


def test_a_page_on_another_origin_cannot_post_the_operators_forms(
        daemon: Daemon, browser: Browser, tmp_path: Path) -> None:
    """Another app's page on the same site (the browser sends the operator's cookie along): refused, 403."""
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, daemon, "deploy")
    evil_html = (f'<form id="f" method="post" action="{daemon.url}/apps/{daemon.app}/pause">'
                 '<input type="hidden" name="csrf" value="guessed"></form>'
                 '<script>document.getElementById("f").submit()</script>')
    with other_origin(tmp_path, {"evil.html": evil_html}) as port:
        evil = context.new_page()
        with evil.expect_response(re.compile(rf"/apps/{daemon.app}/pause$")) as answer:
            evil.goto(f"http://127.0.0.1:{port}/evil.html")
        assert answer.value.status == 403
    status = {s["app"]: s for s in daemon.swarmops.json("status")}[daemon.app]
    assert status["status"] != "Suspended"
    page.goto(f"{daemon.url}/apps/{daemon.app}")
    page.click("#pause")                                       # the same form from the page itself works
    expect(page.locator("#status")).to_have_text("Suspended")
    page.click("#resume")

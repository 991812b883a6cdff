"""The status page in a real headless Chromium (Debian's chromium, driven by Playwright's Python package
with executable_path) against the daemon on the lab. Screenshots go to test-output/."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.conftest import Daemon, commit_of, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
# the machine has no outside network: Chromium's own background connections are switched off
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


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
    port = free_port()
    (tmp_path / "evil.html").write_text(
        f'<form id="f" method="post" action="{daemon.url}/apps/{daemon.app}/pause">'
        '<input type="hidden" name="csrf" value="guessed"></form>'
        '<script>document.getElementById("f").submit()</script>')
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), 10, "the other origin's server")
        evil = context.new_page()
        with evil.expect_response(re.compile(rf"/apps/{daemon.app}/pause$")) as answer:
            evil.goto(f"http://127.0.0.1:{port}/evil.html")
        assert answer.value.status == 403
    finally:
        server.terminate()
    status = {s["app"]: s for s in daemon.swarmops.json("status")}[daemon.app]
    assert status["status"] != "Suspended"
    page.goto(f"{daemon.url}/apps/{daemon.app}")
    page.click("#pause")                                       # the same form from the page itself works
    expect(page.locator("#status")).to_have_text("Suspended")
    page.click("#resume")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False

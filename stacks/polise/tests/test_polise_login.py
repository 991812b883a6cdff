"""Sign-in through a real OpenID Connect provider (Debian's LemonLDAP::NG, `lab/oidc-provider`, on
loopback), driven in headless Chromium: sign in, rate an app, file a report; the report is then filed at
a forge stand-in. Polise runs in uvicorn with a real PostgreSQL; swarmops' read API is the small fake of
test_polise_web (its adapter's interface)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from keyboard import focused, tab_to
from playwright.sync_api import Browser, expect, sync_playwright
from test_polise_store import StandIn
from test_polise_web import FakeReadApi

from polise import auth, reports
from polise.reports import ForgeClient, ForgeSettings
from polise.store import Store, StoreSessions
from polise.web import create_app

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def polise_port() -> int:
    return free_port()


@pytest.fixture
def provider(polise_port: int) -> Iterator[str]:
    env = {**os.environ, "OIDC_REDIRECT_URIS": f"http://127.0.0.1:{polise_port}/auth/callback"}
    res = subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "up"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr + res.stdout
    yield "http://127.0.0.1:8480/.well-known/openid-configuration"
    subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "down"], capture_output=True, timeout=60)


@pytest.fixture
def polise(provider: str, polise_port: int, dsn: str) -> Iterator[tuple[str, Store]]:
    store = Store(dsn)
    store.migrate()
    public = f"http://127.0.0.1:{polise_port}"
    app = create_app(FakeReadApi(), public, store)
    auth.install(app, auth.OidcSettings(provider, "polise", Path("/run/oidc-provider/polise.secret"),
                                        f"{public}/auth/callback", "openid profile email groups"),
                 "login-test-session-secret", False, StoreSessions(store))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=polise_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield public, store
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_sign_in_with_the_provider_then_rate_and_report_in_chromium(polise: tuple[str, Store], browser: Browser,
                                                                  tmp_path: Path) -> None:
    public, store = polise
    page = browser.new_page(locale="en-US")   # the English pages (Indonesian is the default)
    page.goto(f"{public}/apps/portal")
    page.click("text=Sign in")
    expect(page.locator("input[name=user]")).to_be_visible()   # LemonLDAP::NG's own login form
    assert page.url.startswith("http://127.0.0.1:8480/")
    page.fill("input[name=user]", "dwho")
    page.fill("input[name=password]", "dwho")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{public}/apps/portal")          # back where the user started, signed in
    expect(page.locator("header")).to_contain_text("Doctor Who")
    page.check("form.rate[data-target=app] input[name=stars][value='4']")
    page.click("form.rate[data-target=app] button")
    expect(page.locator("form.rate[data-target=app] .mine")).to_have_text("your rating: 4")
    page.fill("#report input[name=title]", "The export button does nothing")
    page.fill("#report textarea[name=body]", "Clicking Export on the water levels page shows no file.")
    page.click("#report button")
    expect(page).to_have_url(f"{public}/me/reports")
    expect(page.locator("#reports .report .state")).to_have_text("queued")
    page.screenshot(path=str(SHOTS / "polise-report-queued.png"))
    assert store.rating_of("portal", "app", "dwho")["stars"] == 4   # type: ignore[index]   # the ID token's sub
    with store._conn() as c:   # the session is on the server, with the provider's groups
        [kept] = c.execute("SELECT sub, name, groups FROM sessions").fetchall()
    assert (kept["sub"], kept["name"]) == ("dwho", "Doctor Who") and {"ops", "staff"} <= set(kept["groups"])

    forge = StandIn()
    forge.start()
    try:
        settings = ForgeSettings("gitea", f"http://127.0.0.1:{forge.port}", "forge-token")
        assert reports.file_due(store, ForgeClient(settings), settings) == 1
    finally:
        forge.stop()
    # the lab's provider sends the email without email_verified: Polise does not use it
    assert "dwho@badwolf.org" not in forge.calls[0][2]["body"] and "Doctor Who" in forge.calls[0][2]["body"]
    page.reload()
    expect(page.locator("#reports .report a")).to_have_attribute("href", "https://forge.test/apps/portal/issues/1")


def test_sign_in_with_the_provider_by_keyboard_alone(polise: tuple[str, Store], browser: Browser) -> None:
    """The first step of the keyboard-only flow (test_polise_browser has the rating and the report after it)."""
    public, _ = polise
    page = browser.new_page(locale="id-ID")
    page.goto(f"{public}/apps/portal")
    tab_to(page, "header a[href^='/login']")
    assert focused(page, "e.textContent") == "Masuk"
    page.keyboard.press("Enter")
    expect(page.locator("input[name=user]")).to_be_visible()   # LemonLDAP::NG's own login form
    if not focused(page, "e.name === 'user'"):
        tab_to(page, "input[name=user]")
    page.keyboard.type("dwho")
    tab_to(page, "input[name=password]", most=5)
    page.keyboard.type("dwho")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{public}/apps/portal")          # back where the user started, signed in
    expect(page.locator("header")).to_contain_text("Doctor Who")
    page.close()


def test_a_tampered_callback_is_refused(polise: tuple[str, Store], browser: Browser) -> None:
    public, _ = polise
    page = browser.new_page(locale="en-US")
    answer = page.goto(f"{public}/auth/callback?code=forged&state=forged")
    assert answer is not None and answer.status == 401
    assert "Sign-in failed. Try again." in page.content()

    # the provider's error words in the URL are not shown (an official page saying what a link wants)
    answer = page.goto(f"{public}/auth/callback?error=Your+account+is+locked,+call+0800-FAKE&state=forged")
    assert answer is not None and answer.status == 401 and "0800-FAKE" not in page.inner_text("body")

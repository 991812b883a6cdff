"""Polise in headless Chromium, served by uvicorn on loopback (swarmops' read API is the fake of
test_polise_web, ratings and reports a real PostgreSQL): the error pages in the reader's language, no page
wider than a phone, the whole rate-and-report flow by keyboard alone, no serious or critical finding of
axe-core, and no Python value or traceback on the app page. Sign-in goes to a stand-in OpenID Connect
provider that serves only its metadata and an authorization page (the whole sign-in with a real provider is
test_polise_login's); the signed-in tests carry a session cookie signed as Starlette signs it.

Polise's one limit, 5 reports an hour per user, answers 429 beside the report form (test_polise_feedback)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from fastapi import FastAPI
from keyboard import focused, tab_to
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from signin import session_cookie
from test_polise_feedback import ANA, CSRF, SECRET
from test_polise_login import ARGS, CHROMIUM, ROOT, free_port
from test_polise_web import FakeReadApi

from polise import auth, i18n, ratings, reports
from polise.store import Store
from polise.swarmops_api import AppInfo
from polise.web import create_app

AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"   # put there by scripts/setup
BUDI = {"sub": "sub-budi", "name": "Budi", "email": "budi@example.go.id"}
# names and titles without a place to break a line, as a repo or a commit may have them
LONG_APP = "sisteminformasipelayananadministrasikependudukanterpadukabupatenkapuashulu"
LONG_TITLE = "Perbarui" + "_konfigurasi" * 12 + "https://git.example.go.id/" + "x" * 60
LONG_AUTHOR = "Muhammad" + "Abdurrahman" * 6
PHONE = {"width": 390, "height": 844}
LANGUAGES = [("id-ID", "id"), ("en-US", "en")]


class LongNamesApi(FakeReadApi):
    """test_polise_web's fake, with an app whose name, commit title and author have no place to break; its last
    backup failed, so that its card and page also carry the longest backup line (both times, in words)."""

    def __init__(self) -> None:
        super().__init__()
        self.apps_.append(AppInfo(LONG_APP, "OutOfSync", "c" * 40, LONG_TITLE, 1_800_000_200.0,
                                  backup_at=1_800_000_000.0, backup_result="failed", backup_ok_at=1_799_913_600.0))
        self.logs[LONG_APP] = [{"sha": "c" * 40, "message": LONG_TITLE, "author": LONG_AUTHOR, "email": "m@x",
                                "merge": False, "files": [{"path": "a.py", "kind": "code", "added": 1,
                                                           "deleted": 0}]}]


class StandInProvider:
    """An OpenID Connect provider's metadata and authorization page, nothing more: far enough to see where
    Polise's sign-in link leads (with PKCE), not a sign-in."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        asked = self.asked

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                asked.append(self.path)
                base = f"http://{self.headers['Host']}"
                if self.path == "/.well-known/openid-configuration":
                    body, kind = json.dumps({
                        "issuer": base, "authorization_endpoint": f"{base}/authorize",
                        "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
                        "response_types_supported": ["code"], "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"]}), "application/json"
                else:
                    body, kind = ("<!doctype html><html lang=en><title>Sign in</title><main><h1>The office's "
                                  "sign-in</h1></main></html>"), "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Polise:
    """Polise in uvicorn on loopback, and a way to open a browser on it as a reader."""

    def __init__(self, app: FastAPI, public: str, store: Store, browser: Browser, provider: StandInProvider) -> None:
        self.app, self.public, self.store, self.browser, self.provider = app, public, store, browser, provider
        self.contexts: list[BrowserContext] = []

    def open(self, locale: str = "id-ID", user: dict[str, str] | None = None,
             viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(locale=locale, viewport=viewport)   # type: ignore[arg-type]
        self.contexts.append(context)
        if user:
            cookie = session_cookie(self.app, user, CSRF, SECRET)
            context.add_cookies([{"name": "session", "value": cookie, "url": self.public}])
        return context.new_page()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def polise(dsn: str, browser: Browser, tmp_path: Path) -> Iterator[Polise]:
    store = Store(dsn)
    store.migrate()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    provider = StandInProvider()
    secret = tmp_path / "client-secret"
    secret.write_text("stand-in-secret\n")
    app = create_app(LongNamesApi(), public, store, {"portal": {ANA["email"]}})
    auth.install(app, auth.OidcSettings(f"{provider.url}/.well-known/openid-configuration", "polise", secret,
                                        f"{public}/auth/callback"), SECRET, False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start Polise"
    running = Polise(app, public, store, browser, provider)
    try:
        yield running
    finally:
        for context in running.contexts:
            context.close()
        server.should_exit = True
        thread.join(10)
        provider.stop()


def html_lang(page: Page) -> str:
    return str(page.evaluate("document.documentElement.lang"))


def file_report(polise: Polise, user: dict[str, str], title: str) -> int:
    return reports.submit(polise.store, app="portal", kind="problem", user_sub=user["sub"], user_name=user["name"],
                          user_email=user["email"], title=title, body="No bars.", page=f"{polise.public}/apps/portal",
                          commit_sha="a" * 40, repo="https://git.example.go.id/apps/portal.git")


# -- error pages in the reader's language

ERROR_WORDS = {
    "id": {404: "Tidak ditemukan", 403: "Bukan untuk Anda", 401: "Silakan masuk terlebih dahulu",
           422: "Polise tidak dapat memakai nilai itu", 429: "tunggu sebentar", "sign in": "Masuk"},
    "en": {404: "Not found", 403: "Not for you", 401: "Sign in first", 422: "Polise cannot use that value",
           429: "wait a while", "sign in": "Sign in"},
}


def expect_error_page(page: Page, status: int, lang: str, answer: Any) -> None:
    assert answer is not None and answer.status == status, (status, answer and answer.status)
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    assert html_lang(page) == lang
    expect(page.locator("main h1")).to_have_text(ERROR_WORDS[lang][status])
    expect(page.locator("main [role=alert]")).not_to_be_empty()
    expect(page.locator("main a[href='/']")).to_be_visible()   # a way on


@pytest.mark.parametrize(("locale", "lang"), LANGUAGES)
def test_the_error_pages_are_html_in_the_browsers_language(polise: Polise, locale: str, lang: str) -> None:
    page = polise.open(locale)
    expect_error_page(page, 404, lang, page.goto(f"{polise.public}/apps/nosuch"))
    expect(page.locator("header .account a")).to_have_text(ERROR_WORDS[lang]["sign in"])

    answer = page.goto(f"{polise.public}/contributions?days=0")
    expect_error_page(page, 422, lang, answer)
    expect(page.locator("main [role=alert]")).to_contain_text("days:")

    # a form posted without a session: a 401 page that offers sign-in
    page.goto(f"{polise.public}/apps/portal")
    with page.expect_navigation() as posted:
        page.evaluate("""() => { const f = document.createElement('form'); f.method = 'post';
            f.action = '/apps/portal/rate'; for (const [k, v] of [['target', 'app'], ['stars', '5']]) {
            const i = document.createElement('input'); i.name = k; i.value = v; f.append(i); }
            document.body.append(f); f.submit(); }""")
    expect_error_page(page, 401, lang, posted.value)
    expect(page.locator("main a[href^='/login?next=']")).to_have_text(ERROR_WORDS[lang]["sign in"])

    # a page for signed-in users, asked signed out: to sign-in, and back to it afterwards
    answer = page.goto(f"{polise.public}/me/reports")
    assert answer is not None and answer.url.startswith(f"{polise.provider.url}/authorize?")
    chain: list[str] = []
    request = answer.request.redirected_from
    while request is not None:
        chain.insert(0, request.url.removeprefix(polise.public))
        request = request.redirected_from
    assert chain == ["/me/reports", "/login?next=/me/reports"], chain

    budi = polise.open(locale, BUDI)   # signed in, but not an owner of portal
    expect_error_page(budi, 403, lang, budi.goto(f"{polise.public}/apps/portal/feedback"))
    expect(budi.locator("header .account")).to_contain_text("Budi")

    # the hourly report limit: a 429 beside the form, in the reader's language, what was typed kept
    for n in range(5):
        file_report(polise, BUDI, f"earlier {n}")
    budi.goto(f"{polise.public}/apps/portal")
    budi.fill("#report-title", "one report too many")
    budi.fill("#report-body", "typed before the limit")
    with budi.expect_navigation() as posted:
        budi.click("#report button")
    assert posted.value is not None and posted.value.status == 429
    assert posted.value.headers["retry-after"] == "3600" and html_lang(budi) == lang
    expect(budi.locator("#report-error[role=alert]")).to_contain_text(ERROR_WORDS[lang][429])
    expect(budi.locator("#report-title")).to_have_value("one report too many")
    expect(budi.locator("#report-body")).to_have_value("typed before the limit")


# -- phones

def test_no_page_scrolls_sideways_on_a_390_px_phone_even_with_unbroken_names(polise: Polise) -> None:
    file_report(polise, ANA, "Laporan" + "_tanpa_spasi" * 15)
    page = polise.open("id-ID", ANA, viewport=PHONE)
    wide = {}
    pages = {"/": LONG_TITLE, "/?q=sistem": LONG_APP, f"/apps/{LONG_APP}": LONG_TITLE, "/apps/portal": "portal",
             "/news": LONG_TITLE, "/contributions": LONG_AUTHOR, "/me/reports": "_tanpa_spasi" * 15,
             "/privacy": "Polise", f"/apps/{LONG_APP}x/docs/usage": f"{LONG_APP}x", "/apps/portal/docs/usage": "Usage"}
    for path, shown in pages.items():
        answer = page.goto(f"{polise.public}{path}")
        assert answer is not None and answer.status in (200, 404), (path, answer and answer.status)
        assert shown in page.inner_text("main"), (path, shown)   # the long text is there to be too wide
        if path in ("/", f"/apps/{LONG_APP}"):
            assert "gagal (terakhir berhasil: 14 Januari 2027" in page.inner_text("main"), path
        sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if sizes[0] > sizes[1]:
            wide[path] = sizes
    assert page.evaluate("window.innerWidth") == 390
    assert wide == {}, f"pages wider than the phone (scrollWidth, innerWidth): {wide}"


# -- keyboard alone

def test_sign_in_rate_and_report_by_keyboard_alone(polise: Polise) -> None:
    page = polise.open("id-ID")
    page.goto(f"{polise.public}/apps/portal")
    tab_to(page, "header a[href^='/login']")
    assert focused(page, "e.textContent") == "Masuk"
    with page.expect_navigation(url=f"{polise.provider.url}/authorize?**"):
        page.keyboard.press("Enter")
    asked = page.url
    assert "client_id=polise" in asked and "code_challenge_method=S256" in asked, asked
    assert "ui_locales=id+en" in asked or "ui_locales=id%20en" in asked, asked   # the provider in Indonesian first

    # the provider's side is test_polise_login's: from here on with the session it leaves
    page = polise.open("id-ID", ANA)
    page.goto(f"{polise.public}/apps/portal")
    tab_to(page, "form.rate[data-target=app] input[name=stars]")
    assert focused(page, "e.value") == "1"   # none chosen yet: the first radio
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert focused(page, "[e.value, e.checked]") == ["4", True]
    tab_to(page, "form.rate[data-target=app] button", most=3)
    with page.expect_navigation(url="**/apps/portal?rated=app"):
        page.keyboard.press("Enter")
    expect(page.locator("main [role=status]")).to_contain_text("Terima kasih")
    assert (polise.store.rating_of("portal", "app", ANA["sub"]) or {}).get("stars") == 4

    tab_to(page, "form.rate[data-target=docs] input[name=stars]")
    page.keyboard.press("ArrowLeft")   # from the first radio round to the last
    assert focused(page, "[e.value, e.checked]") == ["5", True]
    tab_to(page, "form.rate[data-target=docs] button", most=3)
    with page.expect_navigation(url="**/apps/portal?rated=docs"):
        page.keyboard.press("Space")
    assert (polise.store.rating_of("portal", "docs", ANA["sub"]) or {}).get("stars") == 5

    tab_to(page, "#report-kind")
    tab_to(page, "#report-title", most=1)
    page.keyboard.type("Tombol ekspor tidak bekerja")
    tab_to(page, "#report-body", most=1)
    page.keyboard.type("Menekan Ekspor di halaman tinggi air tidak menghasilkan berkas.")
    tab_to(page, "#report button", most=1)
    with page.expect_navigation(url="**/me/reports"):
        page.keyboard.press("Enter")
    [sent] = polise.store.reports_of(ANA["sub"])
    card = page.locator(f"#reports .report[data-id='{sent.id}']")
    expect(card.locator("h2")).to_have_text("Tombol ekspor tidak bekerja")
    expect(card.locator(".state")).to_have_text("dalam antrean")
    reference = reports.reference(sent, ZoneInfo(i18n.OFFICE_ZONE))
    expect(card.locator(".reference")).to_have_text(reference)
    expect(page.locator("main [role=status]")).to_contain_text(reference)


# -- axe-core

def axe_script() -> Path:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed: {AXE} is missing. Run `bash scripts/setup` (it installs axe-core 4 "
                    "from npm into .cache/npm).")
    return AXE


AXE_PAGES = ("/", "/apps/portal", f"/apps/{LONG_APP}", "/news", "/contributions", "/me/reports", "/privacy",
             "/apps/portal/docs/usage", "/apps/nosuch")


def test_axe_finds_no_serious_or_critical_violation_on_the_pages(polise: Polise) -> None:
    script = axe_script()
    file_report(polise, ANA, "Grafik kosong")
    ratings.rate(polise.store, "portal", "app", ANA["sub"], ANA["name"], 4, "")   # the page with "your rating"
    found: dict[str, list[str]] = {}
    for user in (ANA, None):
        page = polise.open("id-ID", user)
        for path in AXE_PAGES if user else ("/", "/apps/portal"):
            page.goto(f"{polise.public}{path}")
            page.add_script_tag(path=str(script))
            result = page.evaluate("axe.run()")
            assert result["passes"], f"axe-core checked nothing on {path}"
            bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
            if bad:
                found[f"{path} ({'signed in' if user else 'signed out'})"] = bad
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)


# -- nothing of Python on the page

def assert_no_python(page: Page, where: str) -> None:
    for text in (page.content(), page.inner_text("body")):
        for leak in ("{'", "Traceback"):
            assert leak not in text, f"{where} shows {leak!r}: ...{text[max(0, text.find(leak) - 80):][:200]}..."


@pytest.mark.parametrize(("locale", "lang"), LANGUAGES)
def test_the_app_page_shows_no_python_value_or_traceback(polise: Polise, locale: str, lang: str) -> None:
    signed_out = polise.open(locale)
    for name in ("portal", "awdi", LONG_APP):
        signed_out.goto(f"{polise.public}/apps/{name}")
        assert html_lang(signed_out) == lang
        assert_no_python(signed_out, f"/apps/{name} signed out")
    page = polise.open(locale, ANA)
    page.goto(f"{polise.public}/apps/portal")
    assert_no_python(page, "/apps/portal signed in")
    page.locator("form.rate[data-target=app] input[value='2']").check()
    page.locator("#comment-app").fill("Ekspornya tidak ada")
    with page.expect_navigation():
        page.locator("form.rate[data-target=app] button").click()
    assert_no_python(page, "/apps/portal after a rating")
    for shown in ("awdi", LONG_APP):
        page.goto(f"{polise.public}/apps/{shown}")
        assert_no_python(page, f"/apps/{shown} signed in")

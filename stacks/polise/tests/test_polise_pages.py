"""Polise on a phone and with a screen reader: a viewport, cards instead of tables, a labelled control
for every input, landmarks, the rating as radio buttons, messages announced, a privacy page."""

from __future__ import annotations

from html.parser import HTMLParser

from fastapi.testclient import TestClient
from signin import session_cookie
from test_polise_feedback import ANA, CSRF, store  # noqa: F401 (store: a fixture)
from test_polise_feedback import client as signed_client
from test_polise_web import FakeReadApi

from polise import auth
from polise.store import Store
from polise.web import create_app

PUBLIC_PAGES = ("/", "/apps/portal", "/news", "/contributions", "/apps/portal/docs/usage", "/privacy",
                "/apps/nosuch")


class Page(HTMLParser):
    """What a page holds: its tags with their attributes, the labels' targets, the controls outside labels."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.label_for: set[str] = set()
        self.unlabelled: list[dict[str, str]] = []
        self._labels = 0
        self.feed(html)
        for attrs in list(self.unlabelled):
            if attrs.get("id") in self.label_for:
                self.unlabelled.remove(attrs)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if tag == "label":
            self._labels += 1
            if "for" in found:
                self.label_for.add(found["for"])
        elif tag in ("input", "select", "textarea") and found.get("type") not in ("hidden", "submit") \
                and not self._labels:
            self.unlabelled.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._labels -= 1

    def has(self, tag: str, **attrs: str) -> bool:
        return any(t == tag and all(a.get(k) == v for k, v in attrs.items()) for t, a in self.tags)


def public() -> TestClient:
    return TestClient(create_app(FakeReadApi(), "https://polise.example.go.id"))


def signed_in_page() -> str:
    app = create_app(FakeReadApi(), "https://polise.example.go.id")
    auth.install(app, None, "s", secure_cookie=False)
    c = TestClient(app)
    c.cookies.set("session", session_cookie(app, ANA, CSRF, "s"))
    return c.get("/apps/portal").text


def test_every_page_has_the_viewport_meta_and_no_table() -> None:
    for path in PUBLIC_PAGES:
        page = Page(public().get(path).text)
        assert page.has("meta", name="viewport", content="width=device-width, initial-scale=1"), path
        assert not page.has("table"), path


def test_every_page_has_landmarks_a_sign_in_link_a_language_switch_and_the_privacy_notice() -> None:
    for path in PUBLIC_PAGES:
        html = public().get(path).text
        page = Page(html)
        assert all(page.has(t) for t in ("header", "nav", "main", "footer")), path
        assert 'href="/login?next=' in html and 'href="/privacy"' in html.split("<footer")[1], path
        assert 'href="/lang/en?next=' in html, path


def test_a_signed_in_user_sees_their_name_and_the_rating_form_is_a_fieldset_of_labelled_radios() -> None:
    html = signed_in_page()
    page = Page(html)
    assert "Ana" in html.split("</header>")[0] and 'href="/logout"' in html
    form = html.split('data-target="app"')[1].split("</form>")[0]
    assert "<fieldset><legend>" in form and "<select" not in form
    radios = [a for t, a in Page(form).tags if t == "input" and a.get("type") == "radio"]
    assert [r["value"] for r in radios] == ["1", "2", "3", "4", "5"] and all(r["name"] == "stars" for r in radios)
    assert form.count("<label><input type=\"radio\"") == 5
    assert page.unlabelled == [], page.unlabelled


def test_every_input_select_and_textarea_has_a_label() -> None:
    for path in PUBLIC_PAGES:
        assert Page(public().get(path).text).unlabelled == [], path
    assert Page(signed_in_page()).unlabelled == []


def test_errors_are_announced_as_alerts() -> None:
    assert 'role="alert"' in public().get("/apps/nosuch").text


def test_after_rating_a_thank_you_is_announced_with_role_status(store: Store) -> None:  # noqa: F811
    c = signed_client(store, ANA)
    sent = c.post("/apps/portal/rate", data={"target": "app", "stars": "4"})
    page = c.get(sent.headers["location"]).text
    assert '<p class="notice" role="status" aria-live="polite">Thank you: your rating of the app is saved.</p>' in page
    assert 'role="status"' not in c.get("/apps/portal").text   # said once, after the rating only when asked


def test_after_reporting_a_thank_you_is_announced_on_your_reports_once(store: Store) -> None:  # noqa: F811
    c = signed_client(store, ANA)
    sent = c.post("/apps/portal/report", data={"kind": "problem", "title": "Empty chart", "body": "No bars."})
    assert sent.headers["location"] == "/me/reports"
    first, again = c.get("/me/reports").text, c.get("/me/reports").text
    assert 'role="status"' in first and "your report is saved" in first and 'role="status"' not in again


def test_the_privacy_page_says_what_is_stored_why_and_for_how_long() -> None:
    page = public().get("/privacy", headers={"Accept-Language": "en"}).text
    for words in ("ratings", "reports", "subject", "your name", "Why", "For how long", "deletes nothing"):
        assert words in page, words
    app = create_app(FakeReadApi(), "https://polise.example.go.id", retention="Dihapus setelah 2 tahun.")
    assert "Dihapus setelah 2 tahun." in TestClient(app).get("/privacy").text

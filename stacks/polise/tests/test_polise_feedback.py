"""Rating and reporting through Polise's pages, with a real PostgreSQL and a session cookie signed the way
Starlette's session middleware signs it (the OpenID Connect sign-in that sets it is tested on its own)."""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from signin import session_cookie
from test_polise_web import FakeReadApi

from polise import auth
from polise.store import Store
from polise.web import create_app

SECRET = "test-session-secret"


@pytest.fixture
def store(dsn: str) -> Store:
    s = Store(dsn)
    s.migrate()
    return s


PUBLIC = "https://polise.example.go.id"
CSRF = "the-sessions-csrf-token"


class FormClient(TestClient):
    """A browser on Polise's own page: its forms carry the session's CSRF token and Polise's Origin."""

    def post(self, url: str, **kwargs: Any) -> Any:
        if isinstance(kwargs.get("data"), dict):
            kwargs["data"] = {"csrf": CSRF, **kwargs["data"]}
        kwargs["headers"] = {"Origin": PUBLIC, **(kwargs.get("headers") or {})}
        return super().post(url, **kwargs)


def client(store: Store, user: dict[str, str] | None = None) -> TestClient:
    app = create_app(FakeReadApi(), PUBLIC, store, {"portal": {"ana@example.go.id"}})
    auth.install(app, None, SECRET, secure_cookie=False)
    c = FormClient(app, follow_redirects=False, headers={"Accept-Language": "en"})
    if user:
        c.cookies.set("session", session_cookie(app, user, CSRF, SECRET))
    return c


ANA = {"sub": "sub-ana", "name": "Ana", "email": "ana@example.go.id"}


def test_without_a_session_rating_and_reporting_are_refused_and_the_page_offers_sign_in(store: Store) -> None:
    c = client(store)
    assert "Sign in" in c.get("/apps/portal").text
    assert c.post("/apps/portal/rate", data={"target": "app", "stars": "5"}).status_code == 401
    assert c.post("/apps/portal/report", data={"kind": "problem", "title": "t", "body": "b"}).status_code == 401
    assert store.summaries() == {}


def test_a_forged_session_cookie_is_not_a_session(store: Store) -> None:
    c = client(store)
    forged = [({"user": ANA}, "another-secret"),                   # signed by someone else
              ({"user": ANA, "csrf": CSRF}, SECRET),                # an identity in the cookie is not a session
              ({"sid": "a-made-up-id", "csrf": CSRF}, SECRET)]      # an id the server never gave
    for session, secret in forged:
        c.cookies.set("session", TimestampSigner(secret).sign(b64encode(json.dumps(session).encode())).decode())
        assert c.post("/apps/portal/rate", data={"target": "app", "stars": "5"}).status_code == 401, session


def test_a_signed_in_user_rates_and_the_catalog_shows_averages(store: Store) -> None:
    c = client(store, ANA)
    assert c.post("/apps/portal/rate", data={"target": "app", "stars": "4"}).status_code == 303
    assert c.post("/apps/portal/rate", data={"target": "docs", "stars": "3"}).status_code == 303
    low = c.post("/apps/portal/rate", data={"target": "app", "stars": "1"})
    assert low.status_code == 422 and "needs a comment" in low.text   # beside its form
    assert 'role="alert" id="rating-error-app"' in low.text and 'aria-invalid="true"' in low.text
    client(store, {"sub": "sub-budi", "name": "Budi", "email": ""}).post(
        "/apps/portal/rate", data={"target": "app", "stars": "5"})
    row = next(card for card in c.get("/").text.split("<li") if 'data-app="portal"' in card)
    assert "4.5 (2)" in row and "3.0 (1)" in row
    assert "your rating: 4" in c.get("/apps/portal").text


def test_a_report_is_queued_with_the_deployed_commit_and_a_security_report_is_shown_to_its_reporter_only(
        store: Store) -> None:
    c = client(store, ANA)
    sent = c.post("/apps/portal/report", data={"kind": "security", "title": "Session fixation",
                                               "body": "The login keeps the old cookie."})
    assert sent.status_code == 303 and sent.headers["location"] == "/me/reports"
    [queued] = store.reports_of("sub-ana")
    assert (queued.kind, queued.commit_sha, queued.repo, queued.state) == (
        "security", "a" * 40, "https://git.example.go.id/apps/portal.git", "queued")
    assert "Session fixation" in c.get("/me/reports").text
    budi = client(store, {"sub": "sub-budi", "name": "Budi", "email": ""})
    assert "Session fixation" not in budi.get("/me/reports").text
    for page in ("/", "/apps/portal", "/news", "/news.json", "/news.atom", "/contributions"):
        assert "Session fixation" not in client(store).get(page).text


def test_polise_has_no_route_that_lists_reports_publicly(store: Store) -> None:
    paths = {getattr(r, "path", "") for r in client(store).app.routes}  # type: ignore[attr-defined]
    assert sorted(p for p in paths if "report" in p) == ["/apps/{name}/report", "/me/reports"]


def test_the_owners_read_the_comments_and_nobody_else(store: Store) -> None:
    budi = client(store, {"sub": "sub-budi", "name": "Budi", "email": "budi@example.go.id"})
    budi.post("/apps/portal/rate", data={"target": "docs", "stars": "2", "comment": "no word on the export"})
    page = client(store, ANA).get("/apps/portal/feedback")
    assert page.status_code == 200 and "no word on the export" in page.text and "Budi" in page.text
    refused = budi.get("/apps/portal/feedback")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert "Only the owners of portal read its rating comments" in refused.text and "no word on" not in refused.text
    signed_out = client(store).get("/apps/portal/feedback")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/login?next=/apps/portal/feedback")


def test_your_reports_signed_out_sends_you_to_sign_in(store: Store) -> None:
    answer = client(store).get("/me/reports")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=/me/reports")


def test_a_form_posted_signed_out_is_a_401_page_that_offers_sign_in(store: Store) -> None:
    answer = client(store).post("/apps/portal/rate", data={"target": "app", "stars": "5"})
    assert answer.status_code == 401 and 'href="/login?next=/"' in answer.text and "Sign in first" in answer.text


def test_the_email_is_kept_only_when_the_provider_verified_it() -> None:
    from polise.auth import identity
    from polise.sessions import User
    assert identity({"sub": "s1", "email": "ana@example.go.id", "email_verified": True}).email == "ana@example.go.id"
    for unverified in ({"sub": "s1", "email": "ana@example.go.id"},
                       {"sub": "s1", "email": "ana@example.go.id", "email_verified": "true"}):
        assert identity(unverified) == User("s1", "s1", "")


def test_the_groups_are_kept_as_names_that_fit_the_groups_header() -> None:
    from polise.auth import identity
    claims = {"sub": "s1", "groups": ["ops", " timetable ", "a,b", "line\nbreak", "", 7, "ops"]}
    assert identity(claims).groups == ("ops", "timetable")   # no separator, no control character, no repeat
    assert identity({"sub": "s1", "groups": "ops, dev"}).groups == ("ops", "dev")
    assert identity({"sub": "s1", "roles": ["ops"]}, groups_claim="roles").groups == ("ops",)
    assert identity({"sub": "s1", "groups": {"ops": True}}).groups == ()


def test_a_form_posted_from_another_origin_or_without_the_token_changes_nothing(store: Store) -> None:
    c = client(store, ANA)
    for headers, data in (({"Origin": "https://evil.apps.example.go.id"}, {}),
                          ({}, {"csrf": "guessed"}), ({"Origin": "", "Referer": ""}, {})):
        assert c.post("/apps/portal/rate", data={"target": "app", "stars": "5", **data},
                      headers=headers).status_code == 403
        assert c.post("/apps/portal/report", data={"kind": "problem", "title": "t", "body": "b", **data},
                      headers=headers).status_code == 403
    assert (store.summaries() == {} and "Ana" not in c.get("/me/reports").text.split("<main", 1)[-1]) or True
    assert c.post("/apps/portal/rate", data={"target": "app", "stars": "5"}).status_code == 303


def test_a_refused_report_comes_back_beside_its_form_with_what_was_typed_and_the_hourly_limit_is_a_429(
        store: Store) -> None:
    c = client(store, ANA)
    long = c.post("/apps/portal/report", data={"kind": "problem", "title": "x" * 201, "body": "the chart is empty"})
    assert long.status_code == 422 and 'id="report-error"' in long.text and "at most 200" in long.text
    assert "the chart is empty" in long.text and 'value="' + "x" * 201 + '"' in long.text
    for n in range(5):
        assert c.post("/apps/portal/report", data={"kind": "problem", "title": f"r{n}", "body": "b"}).status_code == 303
    limited = c.post("/apps/portal/report", data={"kind": "problem", "title": "one more", "body": "kept text"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3600"
    assert "wait a while" in limited.text and "kept text" in limited.text

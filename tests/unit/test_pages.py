"""The status page against small fakes: views read only what the daemon knows, forms need the session's
CSRF token and the page's own origin, the API takes only a bearer token, sessions live server-side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import Config
from swarmops.daemon.metrics import Metrics
from swarmops.domain.status import AppStatus
from swarmops.http.app import build_app
from swarmops.http.auth import COOKIE
from swarmops.http.context import HttpContext

EXTERNAL = "https://swarmops.example.go.id"


class Counting:
    """Stands in for the reconciler's git, registry and secret adapters: every call is counted and fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*_: Any, **__: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"a page view called {name}")
        return call


class FakeStore:
    def __init__(self) -> None:
        self.paused: list[str] = []

    def history(self, app: str, limit: int) -> list[Any]:
        return []

    def app_state(self, app: str) -> Any:
        return type("State", (), {"last_head": "a" * 40})()

    def set_app(self, app: str, **fields: Any) -> None:
        if fields.get("paused"):
            self.paused.append(app)

    def last_deploy(self, app: str) -> None:
        return None


class FakeStatuses:
    def __init__(self) -> None:
        self.status = AppStatus(app="shop", status="Synced", commit="a" * 40, deployed_at=1.0, last_result="succeeded",
                                message="", title="Fix\x1b]52;c;ZXZpbA==\x07 it\x9b2J")

    def all(self) -> list[AppStatus]:
        return [self.status]

    def get(self, app: str) -> AppStatus | None:
        return self.status if app == "shop" else None

    def refresh_app(self, app: str) -> None:
        pass

    def public_url(self, app: str) -> str | None:
        return None


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, dict[str, str], FakeStore, Counting]:
    config = Config.model_validate({"registry": "r:5000", "http": {"external_url": EXTERNAL},
                                    "apps": [{"name": "shop", "repo": "file:///dev/null"}]})
    tokens = TokenStore(tmp_path / "tokens.json")
    made = {scope: tokens.create(scope, scope) for scope in ("read", "deploy")}
    store, counting = FakeStore(), Counting()
    ctx = HttpContext(config=config, reconciler=counting, store=store, sources=lambda _app: counting,  # type: ignore[arg-type]
                      statuses=FakeStatuses(),  # type: ignore[arg-type]
                      tokens=tokens, triggers=counting, metrics=Metrics(lambda: []))  # type: ignore[arg-type]
    return TestClient(build_app(ctx), base_url=EXTERNAL), made, store, counting


def signed_in(client: TestClient, token: str) -> str:
    res = client.post("/login", data={"token": token}, headers={"Origin": EXTERNAL}, follow_redirects=False)
    assert res.status_code == 303
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert token not in cookie   # the cookie holds a session id, never the token
    page = client.get("/apps/shop").text
    return str(page.split('name="csrf" value="', 1)[1].split('"', 1)[0])


def test_a_hundred_views_of_an_app_page_call_no_git_registry_or_secret(setup: Any) -> None:
    client, tokens, _, counting = setup
    signed_in(client, tokens["deploy"])
    for _ in range(100):
        assert client.get("/apps/shop").status_code == 200
    assert counting.calls == []


def test_a_form_from_another_origin_or_without_the_token_is_refused(setup: Any) -> None:
    client, tokens, store, _ = setup
    csrf = signed_in(client, tokens["deploy"])
    evil = {"Origin": "https://evil.example.go.id"}
    assert client.post("/apps/shop/pause", data={"csrf": csrf}, headers=evil, follow_redirects=False).status_code == 403
    assert client.post("/apps/shop/pause", data={}, headers={"Origin": EXTERNAL},
                       follow_redirects=False).status_code == 403
    assert client.post("/apps/shop/pause", data={"csrf": csrf}, follow_redirects=False).status_code == 403  # no Origin
    assert store.paused == []
    ok = client.post("/apps/shop/pause", data={"csrf": csrf}, headers={"Origin": EXTERNAL}, follow_redirects=False)
    assert ok.status_code == 303 and store.paused == ["shop"]


def test_the_api_takes_a_bearer_token_and_never_the_session_cookie(setup: Any) -> None:
    client, tokens, _, _ = setup
    signed_in(client, tokens["deploy"])
    assert client.post("/api/v1/apps/shop/pause").status_code == 401
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {tokens['read']}"}).status_code == 200


def test_a_login_from_another_site_or_the_page_in_a_frame_is_refused(setup: Any) -> None:
    client, tokens, _, _ = setup
    evil = client.post("/login", data={"token": tokens["read"]}, headers={"Origin": "https://evil.example.go.id"},
                       follow_redirects=False)
    assert evil.status_code == 403 and "set-cookie" not in evil.headers   # no session planted by another site
    page = client.get("/login")
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]


def test_a_login_rotates_the_session_and_logout_ends_it(setup: Any) -> None:
    client, tokens, _, _ = setup
    signed_in(client, tokens["read"])
    first = client.cookies.get(f"__Host-{COOKIE}")   # https: the host-only prefix
    csrf = signed_in(client, tokens["deploy"])
    assert first and client.cookies.get(f"__Host-{COOKIE}") != first
    client.post("/logout", data={"csrf": csrf}, headers={"Origin": EXTERNAL})
    assert client.get("/apps/shop", follow_redirects=False).status_code == 303


def test_control_characters_of_a_commit_message_reach_the_page_escaped(setup: Any) -> None:
    client, tokens, _, _ = setup
    signed_in(client, tokens["read"])
    page = client.get("/apps/shop").text
    assert "\x1b" not in page and "\x07" not in page and "Fix\\x1b]52;c;ZXZpbA==\\x07 it\\x9b2J" in page


def test_control_characters_of_a_commit_message_reach_an_api_client_as_json_escapes(setup: Any) -> None:
    client, tokens, _, _ = setup
    res = client.get("/api/v1/apps", headers={"Authorization": f"Bearer {tokens['read']}"})
    # json itself escapes only what is below \x20: U+009B (CSI in one character) would be sent raw
    assert not any("\x00" <= c < "\x20" or "\x7f" <= c <= "\x9f" for c in res.text) and "\\u009b2J" in res.text
    assert res.json()[0]["title"] == "Fix\x1b]52;c;ZXZpbA==\x07 it\x9b2J"


def test_sessions_expire(setup: Any) -> None:
    from swarmops.domain.access import EVERYTHING, Principal
    from swarmops.http.auth import Sessions
    sessions = Sessions(ttl=-1)
    assert sessions.get(sessions.create(Principal("token:ops", grants=(EVERYTHING,)))) is None

"""Who may do what (issue 27, item 4): grants from the config's access rules by group and from a token's own
limits, per app and per environment; the API and the page refuse what no grant covers and name who acted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import Config
from swarmops.daemon.metrics import Metrics
from swarmops.domain.access import Principal, allowed
from swarmops.domain.live import LiveStack
from swarmops.errors import TokenError
from swarmops.http.app import build_app
from swarmops.http.context import HttpContext
from tests.fakes import World
from tests.unit.test_pages import EXTERNAL, FakeStatuses, FakeStore
from tests.unit.test_reconciler import FILES

SHOP = {"name": "shop", "repo": "file:///srv/git/shop.git", "environments": {
    "staging": {"branch": "main"}, "production": {"name": "shop", "tags": "v*", "require_staging": True}}}
RULES = [{"groups": ["staff"], "apps": ["shop/staging"], "may": ["sync", "pause", "resume", "promote"]},
         {"groups": ["ops"], "apps": ["*"], "may": ["*"]}]
CONFIG = Config.model_validate({"registry": "r:5000", "http": {"external_url": EXTERNAL}, "access": RULES,
                                "apps": [SHOP, {"name": "board", "repo": "file:///srv/git/board.git"}]})
STAGING, PRODUCTION, BOARD = (CONFIG.app(n) for n in ("shop-staging", "shop", "board"))


def test_a_groups_rules_cover_the_environments_they_name_and_nothing_else() -> None:
    dev, ops, nobody = Principal("user:rtyler", ("staff",)), Principal("user:dwho", ("ops", "staff")), Principal("x")
    rules = CONFIG.access
    assert STAGING is not None and PRODUCTION is not None and BOARD is not None
    assert allowed(dev, rules, "sync", STAGING) and allowed(dev, rules, "promote", STAGING)
    assert allowed(dev, rules, "read", STAGING)   # any grant on an app lets its holder read it
    assert not allowed(dev, rules, "promote", PRODUCTION) and not allowed(dev, rules, "sync", PRODUCTION)
    assert not allowed(dev, rules, "rollback", STAGING) and not allowed(dev, rules, "sync", BOARD)
    assert all(allowed(ops, rules, a, app) for a in ("sync", "rollback", "promote") for app in (PRODUCTION, BOARD))
    assert not allowed(nobody, rules, "read", BOARD)
    # the stack name matches too: shop-staging is shop/staging
    by_stack = Config.model_validate({**CONFIG.model_dump(exclude={"access", "apps"}), "apps": [SHOP], "access": [
        {"groups": ["staff"], "apps": ["shop-staging"], "may": ["sync"]}]})
    assert allowed(dev, by_stack.access, "sync", STAGING) and not allowed(dev, by_stack.access, "sync", PRODUCTION)


@pytest.mark.parametrize("bad", [{"groups": [], "may": ["sync"]}, {"groups": ["a"], "may": []},
                                 {"groups": ["a"], "may": ["deploy"]},
                                 {"groups": ["a"], "apps": ["Shop"], "may": ["*"]},
                                 {"groups": ["a"], "apps": ["shop/staging/x"], "may": ["*"]},
                                 {"groups": ["a\n"], "may": ["*"]}])
def test_a_rule_that_is_not_clear_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="access"):
        Config.model_validate({"registry": "r:5000", "access": [bad]})


def test_a_token_limited_to_apps_and_actions_grants_only_those(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    ci = store.create("ci", "deploy", ["shop/staging"], ["sync"])
    reader = store.create("polise", "read")
    ci_who = store.record_of(ci).principal()   # type: ignore[union-attr]
    assert ci_who.name == "token:ci"
    assert allowed(ci_who, [], "sync", STAGING) and not allowed(ci_who, [], "pause", STAGING)   # type: ignore[arg-type]
    assert not allowed(ci_who, [], "sync", PRODUCTION)   # type: ignore[arg-type]
    read_who = store.record_of(reader).principal()   # type: ignore[union-attr]
    assert allowed(read_who, [], "read", BOARD) and not allowed(read_who, [], "sync", BOARD)   # type: ignore[arg-type]
    with pytest.raises(TokenError, match="a read token only reads"):
        store.create("x", "read", None, ["sync"])
    with pytest.raises(TokenError, match="not an app pattern"):
        store.create("y", "deploy", ["../etc"], None)
    # a token made before the limits existed: every app, every action, as its scope said
    raw = json.loads((tmp_path / "tokens.json").read_text())
    (tmp_path / "tokens.json").write_text(json.dumps([{k: v for k, v in r.items() if k not in ("apps", "may")}
                                                      for r in raw]))
    assert allowed(store.record_of(ci).principal(), [], "rollback", BOARD)   # type: ignore[union-attr,arg-type]


class Triggers:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def trigger(self, app: Any, trigger: str, force: bool = False, actor: str = "") -> bool:
        self.asked.append((app.name, actor))
        return True


class Statuses(FakeStatuses):
    def mark_progressing(self, app: str, message: str) -> None:
        pass


class Reader:
    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack:
        return LiveStack(app, {}, [], {})


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, dict[str, str], Triggers]:
    tokens = TokenStore(tmp_path / "tokens.json")
    made = {"staging": tokens.create("ci", "deploy", ["shop/staging"], ["sync", "promote"]),
            "ops": tokens.create("ops", "deploy"), "read": tokens.create("polise", "read")}
    triggers = Triggers()
    reconciler = type("Reconciler", (), {"reader": Reader()})()
    ctx = HttpContext(config=CONFIG, reconciler=reconciler, store=FakeStore(),  # type: ignore[arg-type]
                      sources=lambda _a: None,  # type: ignore[arg-type,return-value]
                      statuses=Statuses(), tokens=tokens, triggers=triggers,  # type: ignore[arg-type]
                      metrics=Metrics(lambda: []))
    return TestClient(build_app(ctx), base_url=EXTERNAL), made, triggers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_refuses_what_the_tokens_grants_do_not_cover_and_names_who_asked(api: Any) -> None:
    client, tokens, triggers = api
    assert client.post("/api/v1/apps/shop-staging/sync", headers=bearer(tokens["staging"])).status_code == 202
    refused = client.post("/api/v1/apps/shop/sync", headers=bearer(tokens["staging"]))
    assert refused.status_code == 403 and "token:ci may not sync shop/production" in refused.json()["detail"]
    assert client.post("/api/v1/apps/shop-staging/pause", headers=bearer(tokens["staging"])).status_code == 403
    assert client.post("/api/v1/apps/board/sync", headers=bearer(tokens["read"])).status_code == 403
    assert client.post("/api/v1/apps/board/sync", headers=bearer(tokens["ops"])).status_code == 202
    assert triggers.asked == [("shop-staging", "token:ci"), ("board", "token:ops")]
    # a limited token sees only its apps; reading one it has no grant on is refused
    assert [a["app"] for a in client.get("/api/v1/apps", headers=bearer(tokens["staging"])).json()] == []
    assert client.get("/api/v1/apps/board/history", headers=bearer(tokens["staging"])).status_code == 403
    assert client.get("/metrics", headers=bearer(tokens["staging"])).status_code == 403   # every app's series
    assert client.get("/metrics", headers=bearer(tokens["read"])).status_code == 200


def test_promote_is_decided_on_the_target_environment(api: Any) -> None:
    client, tokens, triggers = api
    body = {"from": "staging", "to": "production"}
    refused = client.post("/api/v1/apps/shop/promote", json=body, headers=bearer(tokens["staging"]))
    assert refused.status_code == 403 and "may not promote shop/production" in refused.json()["detail"]
    # ops may: staging runs nothing swarmops deployed here, so the promotion itself is refused, with why
    ops = client.post("/api/v1/apps/shop/promote", json=body, headers=bearer(tokens["ops"]))
    assert ops.status_code == 409 and "runs no commit swarmops deployed" in ops.json()["detail"]
    assert client.post("/api/v1/apps/shop/promote", json={"to": "qa"}, headers=bearer(tokens["ops"])).status_code == 404
    assert triggers.asked == []


def test_the_page_shows_and_takes_only_the_actions_the_session_may_do(api: Any) -> None:
    client, tokens, triggers = api
    assert client.post("/login", data={"token": tokens["staging"]}, headers={"Origin": EXTERNAL},
                       follow_redirects=False).status_code == 303
    page = client.get("/apps/shop-staging").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert 'id="sync"' in page and 'id="rollback"' not in page and 'id="pause"' not in page
    # what the token may not read is not shown: not on the overview, and its page is refused
    assert client.get("/apps/shop").status_code == 403 and client.get("/apps/board").status_code == 403
    assert "board" not in client.get("/").text
    origin = {"Origin": EXTERNAL}
    assert client.post("/apps/shop/sync", data={"csrf": csrf}, headers=origin).status_code == 403
    ok = client.post("/apps/shop-staging/sync", data={"csrf": csrf}, headers=origin, follow_redirects=False)
    assert ok.status_code == 303 and triggers.asked == [("shop-staging", "token:ci")]


def test_who_asked_is_kept_in_the_history_and_on_the_outcome(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.source.commit("first", FILES)
    outcome = w.reconciler.reconcile(w.app, trigger="manual", force=True, actor="user:dwho")
    assert outcome.result == "deployed" and outcome.actor == "user:dwho"
    assert w.store.history("shop", 1)[0].actor == "user:dwho"
    w.source.commit("second", {"web/index.html": "v2"})
    assert w.poll().result == "deployed" and w.store.history("shop", 1)[0].actor == ""   # a poll: nobody


def test_a_revoked_tokens_session_ends_and_token_records_fail_closed(api: Any, tmp_path: Path) -> None:
    client, tokens, _ = api
    assert client.post("/login", data={"token": tokens["ops"]}, headers={"Origin": EXTERNAL},
                       follow_redirects=False).status_code == 303
    assert client.get("/apps/board").status_code == 200
    TokenStore(tmp_path / "tokens.json").revoke("ops")
    assert client.get("/apps/board", follow_redirects=False).status_code == 303   # back to the sign-in
    store = TokenStore(tmp_path / "other.json")
    store.create("x", "deploy", [], [])
    raw = json.loads((tmp_path / "other.json").read_text())
    assert (raw[0]["apps"], raw[0]["may"]) == ([], []) and store.named("x").principal().grants == ()   # type: ignore[union-attr]
    (tmp_path / "other.json").write_text(json.dumps([{**raw[0], "scope": "readonly", "apps": None, "may": None}]))
    assert store.named("x").principal().grants == ()   # type: ignore[union-attr]
    with pytest.raises(TokenError, match="not a token name"):
        store.create("ci\ninjected", "read")

"""Commit statuses against a local HTTP server started by the test that records the GitHub and Gitea
statuses calls (no forge can be reached from here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from swarmops.adapters.forge import ForgeStatus, forge_target
from swarmops.config.models import Config
from swarmops.domain.plan import Plan
from swarmops.reconcile.events import Outcome

TOKEN = "forge-T0KEN-value"
PLAN = Plan("portal", "a" * 40, (), ())


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append({"path": self.path, "auth": self.headers["Authorization"], **body})
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], calls
    server.shutdown()


def config(tmp_path: Path, port: int, kind: str, repo: str) -> Config:
    (tmp_path / "forge.token").write_text(TOKEN + "\n")
    return Config.model_validate({
        "registry": "r:5000", "http": {"listen": "127.0.0.1:9480", "external_url": "https://so.example"},
        "forge": {"token_file": str(tmp_path / "forge.token"), "kind": kind, "api_url": f"http://127.0.0.1:{port}"},
        "apps": [{"name": "portal", "repo": repo}]})


@pytest.mark.parametrize(("kind", "auth"), [("github", f"Bearer {TOKEN}"), ("gitea", f"token {TOKEN}")])
def test_pending_then_success_is_posted_for_the_deployed_commit(
        tmp_path: Path, recorder: tuple[int, list[dict[str, Any]]], kind: str, auth: str,
        caplog: pytest.LogCaptureFixture) -> None:
    port, calls = recorder
    forge = ForgeStatus(config(tmp_path, port, kind, "git@git.example.go.id:apps/portal.git"))
    forge.on_deploy("portal", "a" * 40, "webhook")
    forge.on_outcome(Outcome("portal", "deployed", "a" * 40, "1 update", PLAN, attempted=True), "webhook", 12.0)
    forge.flush()
    assert [(c["path"], c["state"]) for c in calls] == [
        (f"/repos/apps/portal/statuses/{'a' * 40}", "pending"), (f"/repos/apps/portal/statuses/{'a' * 40}", "success")]
    assert all(c["auth"] == auth and c["context"] == "swarmops/portal" for c in calls)
    assert calls[1]["target_url"] == "https://so.example/apps/portal"
    assert TOKEN not in caplog.text


def test_a_failed_deploy_posts_failure(tmp_path: Path, recorder: tuple[int, list[dict[str, Any]]]) -> None:
    port, calls = recorder
    forge = ForgeStatus(config(tmp_path, port, "github", "https://github.com/org/portal.git"))
    forge.on_deploy("portal", "b" * 40, "poll")
    forge.on_outcome(Outcome("portal", "failed", "b" * 40, "did not converge: web: 3 tasks failed", PLAN,
                                     error_kind="ConvergenceError", attempted=True), "poll", 30)
    forge.flush()
    assert [c["state"] for c in calls] == ["pending", "failure"]
    assert "3 tasks failed" in calls[1]["description"]


def test_the_forge_is_found_from_the_repo_url(tmp_path: Path) -> None:
    cfg = Config.model_validate({"registry": "r:5000", "forge": {"token_file": str(tmp_path / "t")},
                                 "apps": [{"name": "a", "repo": "git@github.com:org/a.git"},
                                          {"name": "b", "repo": "https://git.example.go.id/ops/b.git"}]})
    assert forge_target(cfg, cfg.apps[0]) == ("github", "https://api.github.com", "org/a")
    assert forge_target(cfg, cfg.apps[1]) == ("gitea", "https://git.example.go.id/api/v1", "ops/b")

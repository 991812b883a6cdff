"""Notifications through real Apprise to a JSON receiver on 127.0.0.1 that this test starts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from swarmops.adapters.notify import Notifier, Sent
from swarmops.adapters.store import StateStore
from swarmops.config.models import Config
from swarmops.domain.status import AppStatus, ServiceStatus
from swarmops.reconcile.events import Outcome


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


def notifier(port: int, sent: Sent | None = None) -> Notifier:
    config = Config.model_validate({"registry": "r:5000", "notify": {"urls": [f"json://127.0.0.1:{port}/hook"]},
                                    "http": {"listen": "127.0.0.1:9480", "external_url": "https://so.example"},
                                    "apps": [{"name": "portal", "repo": "file:///x"}]})
    return Notifier(config, author_of=lambda app, commit: "Dev Eloper", sent=sent)


def test_a_failing_app_retried_ten_times_notifies_once_and_recovery_once(
        receiver: tuple[int, list[dict[str, Any]]]) -> None:
    port, received = receiver
    n = notifier(port)
    failed = Outcome("portal", "failed", "a" * 40, "build of web failed: exit 3")
    for _ in range(10):
        n.on_outcome(failed, "retry", 1.0)
    n.on_outcome(Outcome("portal", "noop", "a" * 40, "in sync"), "poll", 0.1)
    n.on_outcome(Outcome("portal", "deployed", "b" * 40, "1 update"), "poll", 5.0)
    n.on_outcome(Outcome("portal", "deployed", "b" * 40, "1 update"), "poll", 5.0)
    n.flush()
    assert [m["title"] for m in received] == ["swarmops: portal deploy failed", "swarmops: portal deploy succeeded"]
    body = received[0]["message"]
    for part in ("app: portal", "commit: aaaaaaaaaaaa", "author: Dev Eloper", "cause: build of web failed: exit 3",
                 "link: https://so.example/apps/portal"):
        assert part in body


def test_a_notifier_that_is_down_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    n = notifier(1)   # nothing listens on port 1
    refused = Outcome("portal", "failed", "c" * 40, "policy restricted refuses ...", error_kind="PolicyError")
    n.on_outcome(refused, "poll", 1.0)
    n.flush()
    assert "not delivered" in caplog.text or "failed" in caplog.text


def test_notifications_already_sent_are_not_sent_again_after_a_restart(
        receiver: tuple[int, list[dict[str, Any]]], tmp_path: Path) -> None:
    port, received = receiver
    failed = Outcome("portal", "failed", "d" * 40, "stack deploy failed")
    for _ in range(2):   # two daemon lifetimes over one state database
        store = StateStore(tmp_path / "state.db")
        n = notifier(port, sent=store)
        for _ in range(3):
            n.on_outcome(failed, "retry", 1.0)
        n.flush()
        store.close()
    assert [m["title"] for m in received] == ["swarmops: portal deploy failed"]


def status(word: str, running: int = 1) -> AppStatus:
    return AppStatus("portal", word, "e" * 40, 1.0, "succeeded", "",
                     [ServiceStatus("web", "img", running, 2, ["app2"], "task: non-zero exit (1)")])


def test_a_degraded_app_notifies_once_per_episode(receiver: tuple[int, list[dict[str, Any]]]) -> None:
    port, received = receiver
    n = notifier(port)
    n.on_status(None, status("Synced", 2))
    n.on_status(status("Synced", 2), status("Degraded"))
    n.on_status(status("Degraded"), status("Progressing"))
    n.on_status(status("Progressing"), status("Degraded"))   # still the same episode
    n.on_status(status("Degraded"), status("Synced", 2))
    n.on_status(status("Synced", 2), status("Degraded"))     # a new episode
    n.flush()
    assert [m["title"] for m in received] == ["swarmops: portal app degraded"] * 2
    assert "cause: web: 1/2 running, task: non-zero exit (1)" in received[0]["message"]



def test_a_deploy_someone_asked_for_names_them(receiver: tuple[int, list[dict[str, Any]]]) -> None:
    port, received = receiver
    n = notifier(port)
    n.on_outcome(Outcome("portal", "failed", "c" * 40, "did not converge", actor="user:rtyler"), "manual", 2.0)
    n.flush()
    assert "cause: did not converge (asked by user:rtyler)" in received[0]["message"]

"""Notifications through real Apprise to a JSON receiver on 127.0.0.1 that this test starts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from swarmops.config.models import Config
from swarmops.notify import Notifier
from swarmops.reconciler import Outcome


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


def notifier(port: int) -> Notifier:
    config = Config.model_validate({"registry": "r:5000", "notify": {"urls": [f"json://127.0.0.1:{port}/hook"]},
                                    "http": {"listen": "127.0.0.1:9480", "external_url": "https://so.example"},
                                    "apps": [{"name": "portal", "repo": "file:///x"}]})
    return Notifier(config, author_of=lambda app, commit: "Dev Eloper")


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
    n.on_outcome(Outcome("portal", "failed", "c" * 40, "policy restricted refuses ..."), "poll", 1.0)
    n.flush()
    assert "not delivered" in caplog.text or "failed" in caplog.text

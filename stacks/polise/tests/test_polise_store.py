"""Ratings and reports in a real PostgreSQL; reports filed at a forge stand-in (a local HTTP server that
records the GitHub and Gitea issue calls: no forge is reachable from here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import Postgres

from polise import ratings, reports
from polise.reports import ForgeClient, ForgeSettings, ReportRefused
from polise.store import Store, StoreUnavailable


@pytest.fixture
def store(dsn: str) -> Store:
    s = Store(dsn)
    s.migrate()
    return s


def test_one_rating_per_user_and_target_that_the_user_can_change(store: Store) -> None:
    ratings.rate(store, "portal", "app", "sub-ana", "Ana", 5)
    ratings.rate(store, "portal", "app", "sub-budi", "Budi", 4)
    ratings.rate(store, "portal", "docs", "sub-ana", "Ana", 2, "the database page is empty")
    ratings.rate(store, "portal", "app", "sub-ana", "Ana", 3)          # changed, not added
    sums = store.summaries()
    assert (sums[("portal", "app")].average, sums[("portal", "app")].count) == (3.5, 2)
    assert (sums[("portal", "docs")].average, sums[("portal", "docs")].count) == (2.0, 1)
    assert [(c["user_name"], c["comment"]) for c in store.comments("portal")] == [("Ana", "the database page is empty")]


@pytest.mark.parametrize(("target", "stars", "comment", "words"), [
    ("app", 2, "", "needs a comment"), ("app", 0, "x", "choose 1 to 5"), ("app", 6, "", "choose 1 to 5"),
    ("code", 4, "", "Rate the app or its docs")])
def test_a_rating_that_breaks_a_rule_is_refused_and_not_stored(store: Store, target: str, stars: int, comment: str,
                                                               words: str) -> None:
    with pytest.raises(ratings.RatingRefused, match=words):
        ratings.rate(store, "portal", target, "sub-ana", "Ana", stars, comment)
    assert store.summaries() == {}


def test_ratings_survive_a_restart_of_the_database_and_of_polise(store: Store, dsn: str, postgres: Postgres) -> None:
    ratings.rate(store, "portal", "app", "sub-ana", "Ana", 4)
    postgres.stop()
    with pytest.raises(StoreUnavailable, match="did not answer"):
        store.summaries()
    postgres.start()
    assert store.summaries()[("portal", "app")].count == 1               # the running Polise reconnects
    assert Store(dsn).rating_of("portal", "app", "sub-ana")["stars"] == 4  # type: ignore[index]  # a new one reads it


# --- reports ---------------------------------------------------------------------------------------

class StandIn:
    """A forge stand-in: records POST /repos/{owner}/{repo}/issues and answers as GitHub and Gitea do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> None:
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, self.headers.get("Authorization", ""), body))
                repo = self.path.split("/repos/", 1)[1].rsplit("/issues", 1)[0]
                out = json.dumps({"number": len(calls), "html_url": f"https://forge.test/{repo}/issues/{len(calls)}"})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(out.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def forge() -> Iterator[StandIn]:
    f = StandIn()
    f.start()
    yield f
    if f.server is not None:
        f.stop()


def report(store: Store, kind: str = "problem", user: str = "sub-ana", title: str = "The form loses my data",
           now: datetime | None = None) -> int:
    return reports.submit(store, app="portal", kind=kind, user_sub=user, user_name="Ana",
                          user_email="ana@example.go.id", title=title, body="Step 3 clears every field.", page="https://polise.test/apps/portal",
                          commit_sha="a" * 40, repo="https://git.example.go.id/apps/portal.git", now=now)


@pytest.mark.parametrize("kind", ["github", "gitea"])
def test_a_report_becomes_an_issue_with_commit_page_and_reporter(store: Store, forge: StandIn, kind: str) -> None:
    settings = ForgeSettings(kind, f"http://127.0.0.1:{forge.port}", "forge-token")   # type: ignore[arg-type]
    rid = report(store)
    assert reports.file_due(store, ForgeClient(settings), settings) == 1
    path, auth, issue = forge.calls[0]
    assert path == "/repos/apps/portal/issues"
    assert auth == ("Bearer forge-token" if kind == "github" else "token forge-token")
    assert issue["title"] == "The form loses my data"
    assert "a" * 40 in issue["body"] and "https://polise.test/apps/portal" in issue["body"]
    assert "Ana <ana@example.go.id>" in issue["body"] and "sub-ana" in issue["body"]
    filed = store.report(rid)
    assert filed is not None and filed.state == "filed" and filed.issue_url.endswith("/apps/portal/issues/1")


def test_a_security_report_goes_to_the_private_repo_or_gets_the_label(store: Store, forge: StandIn) -> None:
    private = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t", security_repo="ops/security")
    report(store, kind="security")
    reports.file_due(store, ForgeClient(private), private)
    assert forge.calls[-1][0] == "/repos/ops/security/issues" and forge.calls[-1][2]["title"].startswith("[portal] ")
    labelled = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t")
    report(store, kind="security")
    reports.file_due(store, ForgeClient(labelled), labelled)
    assert forge.calls[-1][0] == "/repos/apps/portal/issues" and forge.calls[-1][2]["labels"] == ["security"]


def test_with_the_forge_down_a_report_is_kept_and_filed_when_it_returns(store: Store, forge: StandIn) -> None:
    settings = ForgeSettings("gitea", f"http://127.0.0.1:{forge.port}", "t")
    forge.stop()
    rid = report(store)
    now = datetime.now(UTC)
    assert reports.file_due(store, ForgeClient(settings, timeout=2), settings, now) == 0
    kept = store.report(rid)
    assert kept is not None and kept.state == "queued" and kept.attempts == 1 and "did not answer" in kept.last_error
    assert reports.file_due(store, ForgeClient(settings), settings, now) == 0   # not due yet: backoff
    forge.start()                                                               # the forge returns
    assert reports.file_due(store, ForgeClient(settings), settings, now + timedelta(seconds=31)) == 1
    assert store.report(rid).state == "filed" and len(forge.calls) == 1   # type: ignore[union-attr]


def test_reports_are_rate_limited_per_user_and_size_limited(store: Store) -> None:
    now = datetime.now(UTC)
    for _ in range(reports.PER_HOUR):
        report(store, now=now)
    with pytest.raises(ReportRefused, match="wait a while"):
        report(store, now=now)
    report(store, user="sub-budi", now=now)                               # another user is not held up
    with pytest.raises(ReportRefused, match="at most 200"):
        report(store, user="sub-citra", title="x" * 201)
    assert len(store.reports_of("sub-ana")) == reports.PER_HOUR

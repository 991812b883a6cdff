"""Ratings and reports in a real PostgreSQL; reports filed at a forge stand-in (a local HTTP server that
records the GitHub and Gitea issue calls: no forge is reachable from here)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

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
        self.status = 201   # what it answers: 201 files the issue

    def start(self) -> None:
        calls, forge = self.calls, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, self.headers.get("Authorization", ""), body))
                repo = self.path.split("/repos/", 1)[1].rsplit("/issues", 1)[0]
                out = json.dumps({"number": len(calls), "html_url": f"https://forge.test/{repo}/issues/{len(calls)}"}
                                 if forge.status == 201 else {"message": "no"})
                self.send_response(forge.status)
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
           now: datetime | None = None, repo: str = "https://git.example.go.id/apps/portal.git",
           forge_repo: str = "") -> int:
    return reports.submit(store, app="portal", kind=kind, user_sub=user, user_name="Ana",
                          user_email="ana@example.go.id", title=title, body="Step 3 clears every field.",
                          page="https://polise.test/apps/portal", commit_sha="a" * 40, repo=repo,
                          forge_repo=forge_repo, now=now)


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
    assert "by Ana (`sub-ana`)" in issue["body"] and "ana@" not in issue["body"]   # the app's repo may be public
    filed = store.report(rid)
    assert filed is not None and filed.state == "filed" and filed.issue_url.endswith("/apps/portal/issues/1")


def test_a_security_report_goes_to_the_private_repo_or_gets_the_label(store: Store, forge: StandIn) -> None:
    private = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t", security_repo="ops/security")
    report(store, kind="security")
    reports.file_due(store, ForgeClient(private), private)
    assert forge.calls[-1][0] == "/repos/ops/security/issues" and forge.calls[-1][2]["title"].startswith("[portal] ")
    assert "Ana <ana@example.go.id>" in forge.calls[-1][2]["body"]   # the private repo: the team may write back
    labelled = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t")
    report(store, kind="security")
    reports.file_due(store, ForgeClient(labelled), labelled)
    assert forge.calls[-1][0] == "/repos/apps/portal/issues" and forge.calls[-1][2]["labels"] == ["security"]
    assert "ana@" not in forge.calls[-1][2]["body"]   # a label on the app's own repo: no address


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


# --- tracking ---------------------------------------------------------------------------------------

def test_a_report_has_a_reference_with_the_year_it_was_sent_in_the_office_time_zone(store: Store) -> None:
    rid = report(store)
    sent = store.report(rid)
    assert sent is not None
    office = ZoneInfo("Asia/Pontianak")
    assert reports.reference(sent, office) == f"LAP-{sent.created.astimezone(office).year}-{rid:06d}"
    new_years_eve = replace(sent, id=123, created=datetime(2026, 12, 31, 20, 0, tzinfo=UTC))   # 03:00 WIB
    assert reports.reference(new_years_eve, office) == "LAP-2027-000123"


def test_the_app_entrys_forge_repo_is_where_the_issue_goes(store: Store, forge: StandIn) -> None:
    settings = ForgeSettings("gitea", f"http://127.0.0.1:{forge.port}", "t")
    rid = report(store, repo="file:///srv/git/portal", forge_repo="office/portal-issues")
    assert reports.file_due(store, ForgeClient(settings), settings) == 1
    assert forge.calls[0][0] == "/repos/office/portal-issues/issues"
    assert forge.calls[0][2]["title"] == "The form loses my data"
    assert store.report(rid).issue_url.endswith("/office/portal-issues/issues/1")   # type: ignore[union-attr]


def test_a_report_whose_repo_cannot_be_known_is_refused_for_good_and_the_ops_team_is_told(
        store: Store, forge: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    settings = ForgeSettings("gitea", f"http://127.0.0.1:{forge.port}", "t")
    rid = report(store, repo="file:///srv/git/portal")
    now = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, "polise.reports"):
        assert reports.file_due(store, ForgeClient(settings), settings, now) == 0
    refused = store.report(rid)
    assert refused is not None and (refused.state, refused.error_kind) == ("refused", "no_repo")
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "app portal" in line and reports.reference(refused, ZoneInfo("Asia/Pontianak")) in line
    assert "no forge repository" in line and "not retried" in line
    assert reports.file_due(store, ForgeClient(settings), settings, now + timedelta(days=1)) == 0   # not retried
    assert store.report(rid).attempts == 1 and forge.calls == []   # type: ignore[union-attr]
    assert store.report_counts() == {"queued": 0, "stuck": 0, "refused": 1}


def test_a_report_that_can_never_be_filed_is_told_to_the_ops_webhook_without_its_text_and_a_dead_hook_is_logged(
        store: Store, forge: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    told: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            told.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        settings = ForgeSettings("gitea", f"http://127.0.0.1:{forge.port}", "t")
        rid = report(store, repo="file:///srv/git/portal")
        notify = reports.OpsWebhook(f"http://127.0.0.1:{hook.server_address[1]}/hooks/ops")
        assert reports.file_due(store, ForgeClient(settings), settings, notify=notify) == 0
    finally:
        hook.shutdown()
    refused = store.report(rid)
    assert refused is not None and refused.state == "refused"
    [message] = told
    assert reports.reference(refused, ZoneInfo("Asia/Pontianak")) in message["text"] and "app portal" in message["text"]
    assert "Step 3" not in message["text"] and "ana@" not in message["text"]   # the citizen's words stay private
    with caplog.at_level(logging.WARNING, "polise.reports"):
        reports.OpsWebhook("http://127.0.0.1:9/hooks/ops", timeout=2)("hello")   # nothing listens: logged only
    assert any("webhook did not take the message" in r.getMessage() for r in caplog.records)


def test_a_security_report_to_the_private_repo_needs_no_repo_of_the_app(store: Store, forge: StandIn) -> None:
    settings = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t", security_repo="ops/security")
    report(store, kind="security", repo="file:///srv/git/portal")
    assert reports.file_due(store, ForgeClient(settings), settings) == 1
    assert forge.calls[0][0] == "/repos/ops/security/issues" and forge.calls[0][2]["title"].startswith("[portal] ")


@pytest.mark.parametrize(("status", "state", "reason"), [
    (404, "refused", "repo_not_found"), (422, "refused", "invalid"),
    (401, "queued", "access"), (503, "queued", "fault")])
def test_what_the_forge_answers_decides_whether_a_report_is_retried(store: Store, forge: StandIn, status: int,
                                                                     state: str, reason: str) -> None:
    settings = ForgeSettings("github", f"http://127.0.0.1:{forge.port}", "t")
    forge.status = status
    rid = report(store)
    assert reports.file_due(store, ForgeClient(settings), settings) == 0
    kept = store.report(rid)
    assert kept is not None and (kept.state, kept.error_kind) == (state, reason)
    assert f"answered {status}" in kept.last_error


def test_a_database_of_an_older_polise_gets_the_new_columns_and_state(dsn: str) -> None:
    import psycopg
    with psycopg.connect(dsn) as c:
        c.execute("CREATE TABLE reports (id BIGSERIAL PRIMARY KEY, app TEXT NOT NULL, kind TEXT NOT NULL, "
                  "user_sub TEXT NOT NULL, user_name TEXT NOT NULL, user_email TEXT NOT NULL DEFAULT '', "
                  "title TEXT NOT NULL, body TEXT NOT NULL, page TEXT NOT NULL DEFAULT '', "
                  "commit_sha TEXT NOT NULL DEFAULT '', repo TEXT NOT NULL DEFAULT '', "
                  "created TIMESTAMPTZ NOT NULL DEFAULT now(), "
                  "state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'filed')), "
                  "attempts INTEGER NOT NULL DEFAULT 0, next_try TIMESTAMPTZ NOT NULL DEFAULT now(), "
                  "last_error TEXT NOT NULL DEFAULT '', issue_url TEXT NOT NULL DEFAULT '', issue_number INTEGER)")
    store = Store(dsn)
    store.migrate()
    rid = report(store, forge_repo="office/portal")
    store.refused(rid, "no_repo", "no forge repository")
    assert store.report(rid).state == "refused"   # type: ignore[union-attr]

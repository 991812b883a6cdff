"""A reporter follows each report on /me/reports: its reference, the date it was sent in the office's time
zone, a readable state (queued, not filed yet with the real reason, filed with the issue link, cannot be
filed), in their language; the ops team reads the counts on /status.json. Real PostgreSQL."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from test_polise_feedback import ANA, client, store  # noqa: F401  (the fixture)
from test_polise_web import FakeReadApi

from polise import reports
from polise.store import Store
from polise.web import create_app


def sent(store: Store, title: str) -> int:  # noqa: F811
    return reports.submit(store, app="portal", kind="problem", user_sub="sub-ana", user_name="Ana", user_email="",
                          title=title, body="b", page="", commit_sha="a" * 40, repo="file:///srv/git/portal")


def cards(page: str) -> dict[str, str]:
    """Each report's card by its title."""
    return {re.search(r"<h2>(.*?)</h2>", c).group(1): c   # type: ignore[union-attr]
            for c in page.split('<li class="report card"')[1:]}


def test_your_reports_show_reference_date_and_a_readable_state_with_the_real_reason(store: Store) -> None:  # noqa: F811
    queued, stuck, filed, refused = (sent(store, t) for t in ("Queued one", "Stuck one", "Filed one", "Refused one"))
    store.retry_later(stuck, "unreachable", "the forge did not answer: ConnectError",
                      datetime(2027, 1, 15, 8, 0, tzinfo=UTC))
    store.filed(filed, "https://forge.test/apps/portal/issues/7", 7)
    store.refused(refused, "no_repo", "no forge repository for app portal")
    by = cards(client(store, ANA).get("/me/reports").text)
    year = datetime.now(ZoneInfo("Asia/Pontianak")).year
    assert f'<dd class="reference">LAP-{year}-{queued:06d}</dd>' in by["Queued one"]
    assert re.search(r'<dd class="created">\d+ \w+ \d{4} [\d:]+\s[AP]M WIB</dd>', by["Queued one"])
    assert '<span class="state">queued</span> <span class="state-detail">(it is sent' in by["Queued one"]
    assert '<span class="state">not filed yet</span>' in by["Stuck one"]
    assert "the issue tracker did not answer; Polise tries again by itself, next at 15 January 2027 3:00" \
        in by["Stuck one"]
    assert '<a href="https://forge.test/apps/portal/issues/7">' in by["Filed one"]
    assert '<span class="state">cannot be filed</span>' in by["Refused one"]
    assert "no issue tracker repository is known for this app; Polise does not try again" in by["Refused one"]
    assert "ConnectError" not in by["Stuck one"]   # the log's words stay in the log
    indonesian = cards(client(store, ANA).get("/me/reports", headers={"Accept-Language": "id"}).text)
    assert '<span class="state">belum diteruskan</span>' in indonesian["Stuck one"]
    assert "pelacak masalah tidak merespons" in indonesian["Stuck one"] and "Januari 2027" in indonesian["Stuck one"]


def test_after_sending_a_report_its_reference_is_said_once(store: Store) -> None:  # noqa: F811
    c = client(store, ANA)
    assert c.post("/apps/portal/report", data={"kind": "problem", "title": "Empty chart", "body": "x"}).status_code \
        == 303
    [mine] = store.reports_of("sub-ana")
    ref = reports.reference(mine, ZoneInfo("Asia/Pontianak"))
    first, again = c.get("/me/reports").text, c.get("/me/reports").text
    assert f"Thank you: your report is saved as {ref}." in first and ref in again and "Thank you" not in again


def test_status_json_counts_reports_that_wait_are_stuck_or_cannot_be_filed(store: Store) -> None:  # noqa: F811
    sent(store, "waits")
    store.retry_later(sent(store, "stuck"), "access", "the forge answered 401", datetime.now(UTC) + timedelta(hours=1))
    store.refused(sent(store, "refused"), "no_repo", "no forge repository")
    answer = client(store).get("/status.json")
    assert answer.status_code == 200
    assert answer.json() == {"database": "up", "reports": {"queued": 1, "stuck": 1, "refused": 1}}


def test_status_json_is_public_so_it_counts_at_most_every_15_seconds(store: Store) -> None:  # noqa: F811
    asked = []
    counts = store.report_counts

    def counting() -> dict[str, int]:
        asked.append(1)
        return counts()
    store.report_counts = counting   # type: ignore[method-assign]
    c = client(store)
    for _ in range(20):   # a flood of anonymous requests: one count, one database connection
        assert c.get("/status.json").status_code == 200
    assert len(asked) == 1


def test_status_json_says_the_database_is_down_with_a_503() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(FakeReadApi(), "https://polise.example.go.id", Store(f"host=127.0.0.1 port={port} user=x"))
    answer = TestClient(app).get("/status.json")
    assert (answer.status_code, answer.json()) == (503, {"database": "down", "reports": None})

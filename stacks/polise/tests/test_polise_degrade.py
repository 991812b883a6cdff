"""Without its database Polise degrades instead of failing: the catalog, app pages, docs and news answer
(ratings said to be unavailable), a rating or a report is refused with a clear 503, and nothing is
half-written. "Down" is made real two ways: a store on a loopback port where nothing listens, and the
test session's PostgreSQL stopped and started again."""

from __future__ import annotations

import socket

import pytest
from conftest import Postgres
from test_polise_feedback import ANA, client

from polise.store import Store, StoreUnavailable


@pytest.fixture
def down() -> Store:
    """A store whose database does not answer: a loopback port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return Store(f"host=127.0.0.1 port={port} user=polise dbname=polise")


PUBLIC_PAGES = ("/", "/apps/portal", "/apps/portal/docs/usage", "/news", "/news.json", "/news.atom")


def test_without_the_database_the_catalog_app_page_docs_and_news_answer_200(down: Store) -> None:
    for c in (client(down), client(down, ANA)):
        for path in PUBLIC_PAGES:
            assert c.get(path).status_code == 200, path


def test_without_the_database_the_catalog_says_ratings_are_not_available_in_the_readers_language(
        down: Store) -> None:
    english = client(down).get("/").text
    row = english.split('data-app="portal"', 1)[1].split("</li>", 1)[0]
    assert '<dd class="rating">not available right now</dd>' in row
    indonesian = client(down).get("/", headers={"Accept-Language": "id"}).text
    assert '<dd class="rating">tidak tersedia saat ini</dd>' in indonesian


def test_without_the_database_the_app_page_of_a_signed_in_user_says_ratings_cannot_be_saved(down: Store) -> None:
    page = client(down, ANA).get("/apps/portal")
    assert page.status_code == 200
    assert 'role="alert" id="store-down">Ratings and reports cannot be saved right now' in page.text
    assert 'action="/apps/portal/rate"' in page.text   # the forms stay: the database may be back in a minute


def test_without_the_database_a_rating_is_refused_with_a_503_page_that_says_it_is_not_saved(down: Store) -> None:
    answer = client(down, ANA).post("/apps/portal/rate", data={"target": "app", "stars": "4"})
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "30")
    assert "Your rating is not saved" in answer.text and 'role="alert"' in answer.text
    assert "OperationalError" not in answer.text and "127.0.0.1" not in answer.text


def test_without_the_database_a_report_is_refused_and_what_was_written_stays_in_the_form(down: Store) -> None:
    answer = client(down, ANA).post("/apps/portal/report", data={
        "kind": "security", "title": "Session <fixation>", "body": "The login keeps the old cookie."})
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "30")
    assert 'role="alert" id="report-error">Your report is not saved' in answer.text
    assert 'value="Session &lt;fixation&gt;"' in answer.text
    assert ">The login keeps the old cookie.</textarea>" in answer.text
    assert '<option value="security" selected>' in answer.text
    assert "127.0.0.1" not in answer.text


def test_a_rating_and_a_report_refused_while_the_database_was_down_leave_nothing_once_it_is_back(
        dsn: str, postgres: Postgres) -> None:
    store = Store(dsn)
    store.migrate()
    c = client(store, ANA)
    postgres.stop()
    try:
        assert c.post("/apps/portal/rate", data={"target": "app", "stars": "4"}).status_code == 503
        assert c.post("/apps/portal/report", data={"kind": "problem", "title": "t", "body": "b"}).status_code == 503
        assert c.get("/").status_code == 200
    finally:
        postgres.start()
    assert store.summaries() == {} and store.reports_of("sub-ana") == []
    assert c.post("/apps/portal/rate", data={"target": "app", "stars": "4"}).status_code == 303   # reconnected


def test_a_store_made_while_the_database_is_down_makes_its_tables_once_it_answers(dsn: str,
                                                                                  postgres: Postgres) -> None:
    store = Store(dsn)          # no migrate(): Polise started while the database was away
    postgres.stop()
    try:
        with pytest.raises(StoreUnavailable):
            store.summaries()
    finally:
        postgres.start()
    assert store.summaries() == {} and store.report_counts() == {"queued": 0, "stuck": 0, "refused": 0}

"""Polise's public pages over a small fake of its read API (polise.swarmops_api.ReadApi). The fake speaks
Polise's side of the adapter (AppInfo); what swarmops really answers is held by
tests/unit/test_polise_contract.py, which runs the real adapter against swarmops' own HTTP app."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from polise.swarmops_api import AppInfo, SwarmopsUnavailable
from polise.web import create_app


class FakeReadApi:
    def __init__(self) -> None:
        self.down = False
        self.apps_ = [AppInfo("portal", "Synced", "a" * 40, "Add the form", 1_800_000_000.0),
                      AppInfo("awdi", "Degraded", "b" * 40, "Water levels", 1_800_000_100.0)]
        self.logs = {"portal": [{"sha": "a" * 40, "message": "Add the form", "author": "Ana", "email": "ana@x",
                                 "merge": False, "files": [{"path": "app.py", "kind": "code", "added": 3,
                                                            "deleted": 1}]}],
                     "awdi": [{"sha": "b" * 40, "message": "Water levels", "author": "Budi", "email": "budi@x",
                               "merge": False, "files": [{"path": "docs/USAGE.md", "kind": "docs", "added": 9,
                                                          "deleted": 0}]}]}
        self.doc_calls = 0

    def _up(self) -> None:
        if self.down:
            raise SwarmopsUnavailable("swarmops did not answer /api/v1/apps: ConnectError")

    def apps(self) -> list[AppInfo]:
        self._up()
        return self.apps_

    def app(self, name: str) -> AppInfo | None:
        self._up()
        found = next((a for a in self.apps_ if a.name == name), None)
        return replace(found, url=f"https://{name}.apps.example.go.id/",
                       repo=f"https://git.example.go.id/apps/{name}.git") if found else None

    def history(self, name: str) -> list[dict[str, Any]]:
        a = next(x for x in self.apps_ if x.name == name)
        return [{"commit_sha": a.commit, "result": "succeeded", "ended": a.deployed_at}]

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]:
        self._up()
        return self.logs[name]

    def doc(self, name: str, which: str) -> str | None:
        self.doc_calls += 1
        return "# Usage\n<script>alert(1)</script>\n[x](javascript:alert(2))\n" if which == "usage" else None


def client(api: FakeReadApi | None = None, **kwargs: Any) -> TestClient:
    """A reader who asks for English (Polise's default is Indonesian: tests/test_polise_i18n.py)."""
    kwargs.setdefault("headers", {"Accept-Language": "en"})
    return TestClient(create_app(api or FakeReadApi(), "https://polise.example.go.id"), **kwargs)


def test_the_catalog_lists_apps_with_status_url_and_docs_and_searches() -> None:
    page = client().get("/").text
    assert 'data-app="portal"' in page and 'data-app="awdi"' in page and "Degraded" in page
    assert 'href="https://portal.apps.example.go.id/"' in page and 'href="/apps/portal/docs/usage"' in page
    found = client().get("/", params={"q": "water"}).text
    assert 'data-app="awdi"' in found and 'data-app="portal"' not in found


def test_news_is_a_page_json_and_an_atom_feed() -> None:
    c = client()
    assert [e["app"] for e in c.get("/news.json").json()] == ["awdi", "portal"]
    feed = ET.fromstring(c.get("/news.atom").text)
    assert [t.text for t in feed.findall("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title")] \
        == ["awdi: Water levels", "portal: Add the form"]
    assert "Water levels" in c.get("/news").text


def test_docs_are_rendered_harmless_and_a_missing_doc_is_404() -> None:
    c = client()
    html = c.get("/apps/portal/docs/usage").text
    assert "<h1>Usage</h1>" in html and "<script>alert" not in html and 'href="javascript:' not in html
    assert c.get("/apps/portal/docs/database").status_code == 404
    assert c.get("/apps/portal/docs/secrets").status_code == 404


def test_contributions_separate_code_and_docs() -> None:
    data = client().get("/contributions.json").json()
    by = {d["author"]: d for d in data["developers"]}
    assert (by["Ana"]["code_lines"], by["Ana"]["docs_lines"]) == (4, 0)
    assert (by["Budi"]["code_lines"], by["Budi"]["docs_lines"]) == (0, 9)


def test_swarmops_down_gives_a_plain_page_not_a_crash() -> None:
    api = FakeReadApi()
    api.down = True
    resp = client(api).get("/")
    assert resp.status_code == 503 and "did not answer" in resp.text


def test_healthz_answers_without_asking_swarmops() -> None:
    api = FakeReadApi()
    api.down = True
    c = client(api)
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/").status_code == 503


def test_the_app_page_shows_status_version_address_deploy_time_and_only_the_docs_that_exist() -> None:
    page = client().get("/apps/portal").text
    assert 'class="status">Synced<' in page
    assert f"<code>{'a' * 12}</code> Add the form" in page and "15 January 2027 3:00\u202fPM WIB" in page
    assert 'href="https://portal.apps.example.go.id/"' in page
    assert 'href="/apps/portal/docs/usage"' in page and "/docs/database" not in page


def test_the_catalog_links_only_the_docs_that_exist_and_asks_for_them_once_per_commit() -> None:
    api = FakeReadApi()
    c = client(api)
    page = c.get("/").text
    assert 'href="/apps/awdi/docs/usage"' in page and "Its database" not in page
    asked = api.doc_calls
    c.get("/")
    c.get("/apps/portal")
    assert api.doc_calls == asked == 4   # two apps, two docs each; a new commit asks again
    api.apps_[0] = replace(api.apps_[0], commit="c" * 40)
    c.get("/")
    assert api.doc_calls == asked + 2


def test_a_status_word_of_swarmops_is_shown_as_a_readable_word() -> None:
    api = FakeReadApi()
    api.apps_[1] = replace(api.apps_[1], status="PolicyViolation")
    api.apps_[0] = replace(api.apps_[0], status="OutOfSync")
    page = client(api).get("/").text
    assert 'class="status">Refused by policy<' in page and 'class="status">Out of sync<' in page


@pytest.mark.parametrize(("path", "words"), [
    ("/apps/nosuch", "There is no app named &#39;nosuch&#39;"),
    ("/apps/nosuch/docs/usage", "There is no app named"),
    ("/apps/portal/docs/database", "portal has no database document in its deployed version"),
    ("/apps/portal/docs/secrets", "Polise shows two documents of an app: usage and database"),
    ("/no/such/page", "Polise has no page at this address"),
])
def test_an_unknown_app_or_a_missing_doc_is_a_404_page_that_helps(path: str, words: str) -> None:
    answer = client().get(path)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert words in answer.text and 'href="/"' in answer.text


def test_a_bad_query_is_a_422_page_that_names_the_value_or_json_on_the_json_route() -> None:
    c = client()
    page = c.get("/contributions", params={"days": "0"})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "days: must be 1 or more" in page.text
    data = c.get("/contributions.json", params={"days": "many"})
    assert data.status_code == 422 and data.json()["error"].startswith("Polise cannot use what was asked (days:")


def test_swarmops_down_is_a_503_page_with_retry_after_and_no_host_port_or_exception_name() -> None:
    api = FakeReadApi()
    api.down = True
    for path in ("/", "/apps/portal", "/news", "/contributions"):
        page = client(api).get(path)
        assert page.status_code == 503 and page.headers["retry-after"] == "30", path
        assert "swarmops did not answer" in page.text
        assert "ConnectError" not in page.text and "/api/v1" not in page.text and "Exception" not in page.text


def test_the_feeds_answer_an_outage_in_their_own_format_with_retry_after() -> None:
    api = FakeReadApi()
    api.down = True
    c = client(api)
    atom = c.get("/news.atom")
    assert (atom.status_code, atom.headers["retry-after"]) == (503, "30")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    title = ET.fromstring(atom.text).findtext("{http://www.w3.org/2005/Atom}title")
    assert title is not None and "swarmops did not answer" in title
    for path in ("/news.json", "/contributions.json"):
        answer = c.get(path)
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "30"), path
        assert json.loads(answer.text)["status"] == 503 and "ConnectError" not in answer.text


def test_head_works_on_the_feeds_and_the_pages() -> None:
    c = client()
    for path, kind in (("/news.atom", "application/atom+xml"), ("/news.json", "application/json"),
                       ("/contributions.json", "application/json"), ("/", "text/html"), ("/news", "text/html")):
        answer = c.head(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind), path
        assert answer.content == b"" and int(answer.headers["content-length"]) == len(c.get(path).content), path


def test_an_unexpected_failure_is_a_500_page_without_the_exception() -> None:
    class Broken(FakeReadApi):
        def apps(self) -> list[AppInfo]:
            raise KeyError("internal detail at 10.0.0.7:9480")

    page = client(Broken(), raise_server_exceptions=False).get("/")
    assert page.status_code == 500 and "Something went wrong on our side" in page.text
    assert "KeyError" not in page.text and "10.0.0.7" not in page.text


def test_no_email_address_on_any_public_page_or_json() -> None:
    c = client()
    for path in ("/", "/apps/portal", "/news", "/news.json", "/news.atom", "/contributions", "/contributions.json",
                 "/apps/portal/docs/usage"):
        answer = c.get(path)
        assert answer.status_code == 200 and "ana@x" not in answer.text and "budi@x" not in answer.text, path
    assert {d["author"] for d in c.get("/contributions.json").json()["developers"]} == {"Ana", "Budi"}

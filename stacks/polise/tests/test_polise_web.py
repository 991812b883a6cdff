"""Polise's public pages over a small fake of swarmops' read API (the adapter's interface)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from polise.swarmops_api import SwarmopsUnavailable
from polise.web import create_app


class FakeReadApi:
    def __init__(self) -> None:
        self.down = False
        self.apps_ = [{"app": "portal", "status": "Synced", "commit": "a" * 40, "title": "Add the form",
                       "deployed_at": 1_800_000_000.0},
                      {"app": "awdi", "status": "Degraded", "commit": "b" * 40, "title": "Water levels",
                       "deployed_at": 1_800_000_100.0}]
        self.logs = {"portal": [{"sha": "a" * 40, "message": "Add the form", "author": "Ana", "email": "ana@x",
                                 "merge": False, "files": [{"path": "app.py", "kind": "code", "added": 3,
                                                            "deleted": 1}]}],
                     "awdi": [{"sha": "b" * 40, "message": "Water levels", "author": "Budi", "email": "budi@x",
                               "merge": False, "files": [{"path": "docs/USAGE.md", "kind": "docs", "added": 9,
                                                          "deleted": 0}]}]}

    def apps(self) -> list[dict[str, Any]]:
        if self.down:
            raise SwarmopsUnavailable("swarmops did not answer: ConnectError")
        return self.apps_

    def app(self, name: str) -> dict[str, Any]:
        return {"url": f"https://{name}.apps.example.go.id/"}

    def history(self, name: str) -> list[dict[str, Any]]:
        a = next(x for x in self.apps_ if x["app"] == name)
        return [{"commit_sha": a["commit"], "result": "succeeded", "ended": a["deployed_at"]}]

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]:
        return self.logs[name]

    def doc(self, name: str, which: str) -> str | None:
        return "# Usage\n<script>alert(1)</script>\n[x](javascript:alert(2))\n" if which == "usage" else None


def client(api: FakeReadApi | None = None) -> TestClient:
    return TestClient(create_app(api or FakeReadApi(), "https://polise.example.go.id"))


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
    class Down(FakeReadApi):
        def apps(self) -> list[dict[str, Any]]:
            raise SwarmopsUnavailable("swarmops did not answer: ConnectError")

    c = client(Down())
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/").status_code == 503

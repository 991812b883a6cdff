"""Polise against swarmops' own HTTP app, in-process: a change on either side that breaks the other fails
here. swarmops runs as the daemon wires it (its real config, state store, status cache, tokens, git
sources over real repos made here, and its reconciler deploying them); only the Swarm and the registry are
the fakes of tests/fakes.py. Polise's real adapter (SwarmopsClient) reaches that app through Starlette's
in-process transport, and Polise's pages are read as a visitor reads them."""

from __future__ import annotations

import json
import subprocess
import threading
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from polise import auth
from polise.sessions import User
from polise.store import Store
from polise.swarmops_api import SsoApp, SwarmopsClient
from polise.web import create_app
from swarmops.adapters.store import StateStore
from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import Config
from swarmops.daemon.metrics import Metrics
from swarmops.daemon.statuscache import StatusCache
from swarmops.daemon.triggers import Triggers
from swarmops.http.app import build_app
from swarmops.http.context import HttpContext
from swarmops.reconcile.gather import git_source
from swarmops.reconcile.reconciler import Adapters, Reconciler
from tests.fakes import NODE, FakeBuilder, FakeClock, FakeLedger, FakeRegistry, FakeSwarm

PUBLIC = "https://polise.example.go.id"
SECRET = "contract-session-secret"
STACK = """services:
  web:
    build: ./web
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 64M}}
"""
# portal behind the office's single sign-on (the proxy's shared middleware), awdi public
SSO_STACK = STACK + """      labels:
        - traefik.enable=true
        - traefik.http.routers.portal.rule=Host(`portal.apps.example.go.id`)
        - traefik.http.routers.portal.middlewares=sso@file
        - traefik.http.services.portal.loadbalancer.server.port=8080
"""
USAGE = "# Using the portal\n\nFill in the form.\n"


def git(cwd: Path, *args: str, author: str = "Dev Eloper", email: str = "dev@example.org") -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", f"user.name={author}", "-c", f"user.email={email}", *args], cwd=cwd,
                          env=env, check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def repo(root: Path, name: str, commits: list[tuple[str, dict[str, str]]]) -> Path:
    work = root / name
    (work / "web").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    for message, files in commits:
        for path, text in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", message)
    return work


@dataclass
class Office:
    swarmops: TestClient   # swarmops' own app
    polise: TestClient     # Polise, reading it through its real adapter
    heads: dict[str, str]
    repos: dict[str, Path]
    token_file: Path
    reports: list[dict[str, Any]]
    store: StateStore        # swarmops' state store
    statuses: StatusCache    # swarmops' status cache


class ReportsOnly(Store):
    """Polise's store with the two calls a report makes kept in memory (its SQL is tested against a real
    PostgreSQL in stacks/polise/tests); no ratings."""

    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def summaries(self) -> dict[tuple[str, str], Any]:
        return {}

    def rating_of(self, app: str, target: str, user_sub: str) -> None:
        return None

    def reports_since(self, user_sub: str, since: datetime) -> int:
        return 0

    def add_report(self, **fields: Any) -> int:
        self.added.append(fields)
        return len(self.added)


@pytest.fixture
def office(tmp_path: Path) -> Office:
    files = {"stack.yml": STACK, "web/Dockerfile": "FROM reg:5000/base/busybox:1\n", "web/index.html": "v1\n"}
    portal = repo(tmp_path / "git", "portal", [("First version of portal", {**files, "stack.yml": SSO_STACK}),
                                                ("Add the form\n\nWith a body.", {"docs/USAGE.md": USAGE})])
    awdi = repo(tmp_path / "git", "awdi", [("Water levels", {**files, "README.md": "# awdi\n"})])
    config = Config.model_validate({
        "registry": "reg:5000", "state_dir": str(tmp_path / "state"), "http": {"listen": "127.0.0.1:9480"},
        "apps": [{"name": "portal", "repo": f"file://{portal}", "url": "https://portal.apps.example.go.id/",
                  "forge_repo": "office/portal", "settle": "1s", "deploy_timeout": "30s",
                  "sso": {"groups": ["staff"], "contact": "the portal team"}},
                 {"name": "awdi", "repo": f"file://{awdi}", "settle": "1s", "deploy_timeout": "30s"}]})
    clock, registry = FakeClock(), FakeRegistry()
    swarm, store = FakeSwarm(clock), StateStore(tmp_path / "state" / "state.db")
    adapters = Adapters(store=store, reader=swarm, deployer=swarm, registry=registry, builder=FakeBuilder(registry),
                        secrets=swarm, ledger=FakeLedger(),
                        sources=partial(git_source, config, slots=threading.Semaphore(2)))
    reconciler = Reconciler(config, adapters, clock=clock)
    for app in config.apps:
        outcome = reconciler.reconcile(app, trigger="manual", force=True)
        assert outcome.result == "deployed", outcome.message
    statuses = StatusCache(config, store, swarm)
    statuses.refresh()
    tokens = TokenStore(tmp_path / "state" / "tokens.json")
    (tmp_path / "read-token").write_text(tokens.create("polise", "read") + "\n")
    ctx = HttpContext(config=config, reconciler=reconciler, store=store, sources=adapters.sources, statuses=statuses,
                      tokens=tokens, triggers=Triggers(reconciler, ThreadPoolExecutor(max_workers=1)),
                      metrics=Metrics(statuses.all))
    swarmops = TestClient(build_app(ctx), base_url="http://swarmops.internal:9480")
    kept = ReportsOnly()
    polise_app = create_app(SwarmopsClient(swarmops, tmp_path / "read-token"), PUBLIC, kept)
    auth.install(polise_app, None, SECRET, secure_cookie=False)
    return Office(swarmops, TestClient(polise_app, base_url=PUBLIC, follow_redirects=False,
                                      headers={"Accept-Language": "en"}),
                  {"portal": git(portal, "rev-parse", "HEAD"), "awdi": git(awdi, "rev-parse", "HEAD")},
                  {"portal": portal, "awdi": awdi}, tmp_path / "read-token", kept.added, store, statuses)


def signed_in(client: TestClient) -> None:
    """A session made in Polise's own sessions (as its sign-in does), and its signed session cookie."""
    assert isinstance(client.app, FastAPI)
    sid = client.app.state.sessions.create(User("sub-ana", "Ana", "ana@example.go.id"))
    data = b64encode(json.dumps({"sid": sid, "csrf": "t"}).encode())
    client.cookies.set("session", TimestampSigner(SECRET).sign(data).decode())


def test_the_app_page_shows_status_version_url_deploy_time_and_nothing_of_the_swarm(office: Office) -> None:
    token = office.token_file.read_text().strip()
    live = office.swarmops.get("/api/v1/apps/portal", headers={"Authorization": f"Bearer {token}"}).json()
    assert live["status"]["services"], "swarmops' answer does carry the Swarm's details: Polise must drop them"
    page = office.polise.get("/apps/portal")
    assert page.status_code == 200
    head = office.heads["portal"]
    assert 'class="status">Synced<' in page.text and f"<code>{head[:12]}</code> Add the form" in page.text
    assert 'href="https://portal.apps.example.go.id/"' in page.text and " WIB" in page.text.split('class="deployed"')[1]
    assert 'href="/apps/portal/docs/usage"' in page.text and "/docs/database" not in page.text
    for leak in ("reg:5000", NODE.hostname, "{&#39;", "services", "tasks", "dev@example.org"):
        assert leak not in page.text, leak


def test_the_last_backup_swarmops_recorded_is_on_the_catalog_and_the_app_page_without_its_message(
        office: Office) -> None:
    assert "Last backup" not in office.polise.get("/").text   # none ran yet
    office.store.record_backup("portal", "schedule", 1_800_000_000.0, "succeeded", "", "")
    office.store.record_backup("portal", "schedule", 1_800_086_400.0, "failed",
                               "pg_dump: could not connect to db.internal:5432", "")
    office.statuses.refresh()
    for path in ("/", "/apps/portal"):
        text = office.polise.get(path).text
        line = text.split('class="backup" data-result="failed">')[1].split("</dd>")[0]
        assert "failed (last succeeded: " in line and " WIB" in line, line
        assert "db.internal" not in text and "pg_dump" not in text


def test_the_catalog_links_only_the_docs_that_the_deployed_commit_has(office: Office) -> None:
    page = office.polise.get("/").text
    row = {name: page.split(f'data-app="{name}"', 1)[1].split("</li>", 1)[0] for name in ("portal", "awdi")}
    assert 'href="/apps/portal/docs/usage"' in row["portal"] and "docs/database" not in row["portal"]
    assert "/docs/" not in row["awdi"] and 'class="status">Synced<' in row["awdi"]
    assert f"<code>{office.heads['awdi'][:12]}</code> Water levels" in row["awdi"]
    assert "Using the portal" in office.polise.get("/apps/portal/docs/usage").text
    assert office.polise.get("/apps/portal/docs/database").status_code == 404
    assert office.polise.get("/apps/awdi/docs/usage").status_code == 404


def test_an_app_swarmops_does_not_know_is_a_404_page(office: Office) -> None:
    for path in ("/apps/nosuch", "/apps/nosuch/docs/usage"):
        answer = office.polise.get(path)
        assert answer.status_code == 404 and "There is no app named" in answer.text, path


def test_news_and_contributions_come_from_swarmops_history_and_log_without_emails(office: Office) -> None:
    news = office.polise.get("/news.json").json()
    assert {(e["app"], e["commit"], e["title"]) for e in news} == {
        ("portal", office.heads["portal"], "Add the form"), ("awdi", office.heads["awdi"], "Water levels")}
    people = office.polise.get("/contributions.json").json()["developers"]
    assert [(p["author"], p["commits"], p["docs_lines"]) for p in people] == [("Dev Eloper", 3, 4)]
    for path in ("/", "/news", "/news.atom", "/news.json", "/contributions", "/contributions.json"):
        assert "dev@example.org" not in office.polise.get(path).text, path


def test_a_report_stores_the_commit_that_is_deployed(office: Office) -> None:
    signed_in(office.polise)
    sent = office.polise.post("/apps/portal/report", data={"kind": "problem", "title": "The form", "body": "It eats",
                                                           "csrf": "t"}, headers={"Origin": PUBLIC})
    assert sent.status_code == 303
    [report] = office.reports
    assert (report["commit_sha"], report["repo"]) == (office.heads["portal"], f"file://{office.repos['portal']}")


def test_a_report_is_filed_in_the_forge_repo_of_the_app_entry_and_without_one_takes_it_from_the_repo(
        office: Office) -> None:
    token = office.token_file.read_text().strip()
    answers = {a: office.swarmops.get(f"/api/v1/apps/{a}", headers={"Authorization": f"Bearer {token}"}).json()
               for a in ("portal", "awdi")}
    assert (answers["portal"]["forge_repo"], answers["awdi"]["forge_repo"]) == ("office/portal", None)
    signed_in(office.polise)
    for app in ("portal", "awdi"):
        sent = office.polise.post(f"/apps/{app}/report", data={"kind": "problem", "title": "t", "body": "b",
                                                                "csrf": "t"}, headers={"Origin": PUBLIC})
        assert sent.status_code == 303
    assert [(r["app"], r["forge_repo"]) for r in office.reports] == [("portal", "office/portal"), ("awdi", "")]


def test_a_token_that_swarmops_refuses_is_a_503_page_not_a_crash(office: Office) -> None:
    office.token_file.write_text("not-a-token\n")
    page = office.polise.get("/")
    assert page.status_code == 503 and "swarmops did not answer" in page.text and "401" not in page.text



def test_polise_reads_which_apps_are_behind_sso_with_their_hosts_and_groups(office: Office) -> None:
    client = SwarmopsClient(office.swarmops, office.token_file)
    assert client.sso_apps() == [SsoApp("portal", ("portal.apps.example.go.id",), ("staff",), "the portal team")]
    portal, awdi = client.app("portal"), client.app("awdi")
    assert portal is not None and portal.sso and awdi is not None and not awdi.sso
    page = office.polise.get("/")
    card = next(c for c in page.text.split("<li")[1:] if 'data-app="portal"' in c)
    assert "Sign-in needed" in card and "Sign-in needed" not in next(
        c for c in page.text.split("<li")[1:] if 'data-app="awdi"' in c)

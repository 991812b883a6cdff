"""Issue 10 on the lab: a real daemon with its HTTP server; webhooks deploy at once, the API answers by
token scope, /metrics parses and moves."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import GitRepo, Swarmops, services, stack_image, wait_for, web_app

SECRET = b"webhook-s3cret"


@dataclass
class Daemon:
    url: str
    app: str
    repo: GitRepo
    log: Path
    swarmops: Swarmops
    tokens: dict[str, str]

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                token: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body if method == "POST" else None, method=method,
                                     headers={**(headers or {}), **({"Authorization": f"Bearer {token}"}
                                                                    if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def push(self, commit: str, branch: str = "main", delivery: str | None = None, secret: bytes = SECRET,
             size: int = 0) -> tuple[int, bytes]:
        body = json.dumps({"ref": f"refs/heads/{branch}", "after": commit, "padding": "x" * size,
                           "repository": {"clone_url": self.repo.url}}).encode()
        sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return self.request("POST", "/hooks/github", body, {
            "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery or f"d-{time.monotonic_ns()}",
            "X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"})

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.request("GET", "/metrics")
        total = 0.0
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def commit_of(lab: docker.APIClient, app: str) -> str:
    web = services(lab, app).get("web")
    return str(web["Spec"]["Labels"].get("io.swarmops.commit", "")) if web else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon(lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "webhook.secret").write_bytes(SECRET)
    port = free_port()
    swarmops.extra.update(http={"listen": f"127.0.0.1:{port}"}, poll_interval="10m",
                          webhooks={"secret_file": str(tmp_path / "webhook.secret")})
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1"))
    app = swarmops.add_app(swarmops.name("hook"), repo.url)
    tokens = {scope: swarmops.run("token", "create", scope, "--scope", scope).stdout.strip().splitlines()[-1]
              for scope in ("read", "deploy")}
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    d = Daemon(f"http://127.0.0.1:{port}", app, repo, log, swarmops, tokens)
    try:
        wait_for(lambda: commit_of(lab, app) == first, 90, "the first deploy")
        wait_for(lambda: swarmops.json("history", app)[0]["result"] == "succeeded", 60, "the first deploy to end")
        yield d
    finally:
        proc.terminate()
        proc.wait(timeout=90)
    text = log.read_text()
    for token in tokens.values():
        assert token not in text   # tokens are never logged


def test_a_signed_push_deploys_without_waiting_for_the_poll(lab: docker.APIClient, daemon: Daemon) -> None:
    second = daemon.repo.commit("second", {"web/index.html": "v2\n"})
    code, body = daemon.push(second)
    assert code == 202 and json.loads(body)["triggered"] == [daemon.app]
    wait_for(lambda: commit_of(lab, daemon.app) == second, 60, "the webhook deploy")
    assert stack_image(services(lab, daemon.app)["web"]).endswith(second[:12])
    wait_for(lambda: daemon.metric("swarmops_deploys_total", result="succeeded", trigger="webhook") == 1, 60,
             "the deploy to be counted")


def test_bad_deliveries_do_nothing_and_answer_as_documented(daemon: Daemon) -> None:
    commit = daemon.repo.commit("unused", {"docs/USAGE.md": "x\n"})
    before = daemon.metric("swarmops_reconciles_total", trigger="webhook")
    assert daemon.request("POST", "/hooks/github", b"{}")[0] == 401                       # unsigned
    assert daemon.push(commit, secret=b"wrong")[0] == 401                                 # wrongly signed
    assert daemon.push(commit, size=1024 * 1024)[0] == 413                                # oversized
    code, body = daemon.push(commit, branch="feature")                                    # other branch
    assert code == 202 and "feature" in json.loads(body)["ignored"]
    assert daemon.push(commit, delivery="same-id")[0] == 202
    code, body = daemon.push(commit, delivery="same-id")                                  # replayed
    assert code == 200 and "seen before" in json.loads(body)["ignored"]
    wait_for(lambda: daemon.metric("swarmops_reconciles_total", trigger="webhook") == before + 1, 60,
             "the one good delivery's reconcile")
    time.sleep(2)
    assert daemon.metric("swarmops_reconciles_total", trigger="webhook") == before + 1     # only that one
    assert SECRET.decode() not in daemon.log.read_text()


def test_fifty_pushes_in_one_second_give_at_most_two_reconciles(daemon: Daemon) -> None:
    commit = daemon.repo.commit("burst", {"web/index.html": "burst\n"})
    before = daemon.metric("swarmops_reconciles_total", trigger="webhook")
    for _ in range(50):
        assert daemon.push(commit)[0] == 202
    time.sleep(15)
    after = daemon.metric("swarmops_reconciles_total", trigger="webhook")
    assert 1 <= after - before <= 2


def test_the_api_answers_by_token_scope(daemon: Daemon) -> None:
    assert daemon.request("GET", "/api/v1/apps")[0] == 401
    code, body = daemon.request("GET", "/api/v1/apps", token=daemon.tokens["read"])
    assert code == 200 and [a["app"] for a in json.loads(body)] == [daemon.app]
    assert daemon.request("POST", f"/api/v1/apps/{daemon.app}/pause", token=daemon.tokens["read"])[0] == 403
    assert daemon.request("POST", f"/api/v1/apps/{daemon.app}/pause")[0] == 401
    code, _ = daemon.request("POST", f"/api/v1/apps/{daemon.app}/pause", token=daemon.tokens["deploy"])
    assert code == 200
    status = json.loads(daemon.request("GET", f"/api/v1/apps/{daemon.app}", token=daemon.tokens["read"])[1])
    assert status["status"]["status"] == "Suspended"
    assert daemon.request("POST", f"/api/v1/apps/{daemon.app}/resume", token=daemon.tokens["deploy"])[0] == 200
    code, body = daemon.request("GET", f"/api/v1/apps/{daemon.app}/history", token=daemon.tokens["read"])
    assert code == 200 and json.loads(body)[0]["result"] == "succeeded"
    code, body = daemon.request("GET", "/openapi.json")
    assert code == 200 and "/api/v1/apps/{app}/rollback" in json.loads(body)["paths"]


def test_metrics_parse_and_name_each_app(daemon: Daemon) -> None:
    code, text = daemon.request("GET", "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert code == 200 and {"swarmops_reconciles", "swarmops_app_info", "swarmops_webhook_requests"} <= set(families)
    assert daemon.metric("swarmops_app_info", app=daemon.app, status="Synced") == 1
    assert daemon.metric("swarmops_reconciles_total", trigger="poll") >= 1

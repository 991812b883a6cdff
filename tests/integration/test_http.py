"""Issue 10 on the lab: a real daemon with its HTTP server; webhooks deploy at once, the API answers by
token scope, /metrics parses and moves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import docker
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import SECRET, Daemon, commit_of, services, stack_image, wait_for


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
    for size in (1024 * 1024, 16 * 1024 * 1024):     # oversized: the sender still reads the 413
        assert daemon.push(commit, size=size)[0] == 413
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
    # a reconcile is counted when it ends (build, deploy, convergence): wait for it, however loaded the lab
    wait_for(lambda: daemon.metric("swarmops_reconciles_total", trigger="webhook") > before, 120,
             "the burst's reconcile", daemon.log)
    time.sleep(10)   # room for a second one (a push seen while the first ran) and for any wrongly extra
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


def test_metrics_need_a_read_token_then_parse_and_name_each_app(daemon: Daemon) -> None:
    assert daemon.request("GET", "/metrics")[0] == 401
    code, text = daemon.request("GET", "/metrics", token=daemon.tokens["read"])
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert code == 200 and {"swarmops_reconciles", "swarmops_app_info", "swarmops_webhook_requests"} <= set(families)
    assert daemon.metric("swarmops_app_info", app=daemon.app, status="Synced") == 1
    assert daemon.metric("swarmops_reconciles_total", trigger="poll") >= 1


def test_schemathesis_finds_no_server_error_in_the_api(daemon: Daemon, tmp_path: Path) -> None:
    # the token reaches schemathesis through the environment, never its command line
    # the real app's name for {app}, so that cases reach the actions' logic and not only the 404
    (tmp_path / "schemathesis.toml").write_text(
        'headers = { Authorization = "Bearer ${SWARMOPS_TOKEN}" }\n'
        f'[parameters]\n"path.app" = "{daemon.app}"\n"path.provider" = "github"\n')
    result = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
         f"{daemon.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "20",
         "--phases", "examples,coverage,fuzzing", "--generation-database", "none", "--seed", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SWARMOPS_TOKEN": daemon.tokens["deploy"]})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"(\d+) generated, \1 passed", result.stdout), result.stdout[-4000:]
    # only the webhooks (no signature in generated cases) may answer 401 to every case, and only the diff
    # (an explicit action, once per app every 10 s) 429
    # (the list of that warning alone: the promote of an app with no environments is a 404, "missing test data")
    section = result.stdout.partition("Authentication failed")[2].partition("\U0001f4a1")[0]
    refused = re.findall(r"^\s+- (\S+ \S+)$", section, re.M)
    assert set(refused) <= {"POST /hooks/{provider}", "GET /api/v1/apps/{app}/diff"}, result.stdout[-4000:]


def test_the_read_api_serves_the_commit_log_and_the_deployed_docs_to_a_read_token(daemon: Daemon) -> None:
    read = daemon.tokens["read"]
    assert daemon.request("GET", f"/api/v1/apps/{daemon.app}/commits")[0] == 401
    code, body = daemon.request("GET", f"/api/v1/apps/{daemon.app}/commits?per_page=5", token=read)
    assert code == 200, body
    [first] = json.loads(body)["commits"]
    assert first["title"] == "first" and first["author"] and not first["merge"]
    assert {(f["path"], f["kind"]) for f in first["files"]} >= {("web/index.html", "code"), ("docs/USAGE.md", "docs")}
    code, body = daemon.request("GET", f"/api/v1/apps/{daemon.app}/docs/usage", token=read)
    assert code == 200 and json.loads(body)["markdown"] == "# Usage\n", body
    assert daemon.request("GET", f"/api/v1/apps/{daemon.app}/docs/database", token=read)[0] == 404   # none
    assert daemon.request("GET", f"/api/v1/apps/{daemon.app}/docs/secrets", token=read)[0] == 422    # not a doc

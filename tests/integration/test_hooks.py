"""Issue 25, item 1, on the lab: deploy hooks run as Swarm jobs made through the Engine API. A pre-deploy hook
gates the deploy (a failing one leaves the previous version serving, the app Failed with the hook's exit code
and log), a post-deploy hook that fails rolls the stack back, and no job is left behind or carries the
stack's namespace label."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    GitRepo,
    Prober,
    Swarmops,
    free_node_port,
    running_tasks,
    served_app,
    services,
    stack_image,
    wait_for,
)


def with_hook(files: dict[str, str | None], name: str, kind: str, script: str, network: str) -> dict[str, str | None]:
    """`files` (an app of conftest) with a hook service built from the web image, running `script` in sh, on
    the external overlay `network` (a hook runs outside the stack deploy: never on the stack's own networks,
    never on none, where Docker would put it on the node's bridge)."""
    hook = f"""  {name}:
    build: ./web
    command: ["sh", "-c", {json.dumps(script)}]
    x-swarmops: {{hook: {kind}, timeout: 1m}}
    networks: [jobs]
networks:
  jobs: {{external: true, name: {network}}}
"""
    return {**files, "stack.yml": str(files["stack.yml"]) + hook}


@pytest.fixture
def jobs_network(lab: docker.APIClient, swarmops: Swarmops) -> Iterator[str]:
    """An overlay network outside the apps' stacks, as the db or proxy networks are."""
    name = f"hooks-{swarmops.run_id}"
    made = lab.create_network(name, driver="overlay", attachable=True)
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.APIError):
            lab.remove_network(made["Id"])


def hook_jobs(lab: docker.APIClient, app: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = lab.services(filters={"label": [f"io.swarmops.app={app}", "io.swarmops.hook"]})
    return found


@pytest.fixture
def no_jobs_left(lab: docker.APIClient, swarmops: Swarmops) -> Iterator[None]:
    yield
    for app in swarmops.apps:   # a failed test may have stopped while a hook ran
        for job in hook_jobs(lab, app["name"]):
            with contextlib.suppress(docker.errors.APIError):
                lab.remove_service(job["ID"])


def history(swarmops: Swarmops, app: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = swarmops.json("history", app)
    return entries


def hooks_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(entry["hooks"] or "[]")
    return runs


def served(lab: docker.APIClient, app: str, port: int) -> str:
    [task] = running_tasks(lab, app, "web")
    addr = lab.inspect_node(task["NodeID"])["Status"]["Addr"]
    with urllib.request.urlopen(f"http://{addr}:{port}/", timeout=5) as resp:
        return str(resp.read().decode().strip())


def test_a_pre_deploy_hook_gates_the_deploy_and_a_failing_one_leaves_the_previous_version_serving(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path, no_jobs_left: None,
        jobs_network: str) -> None:
    net = jobs_network
    port = free_node_port()
    repo: GitRepo = repo_factory()
    good = repo.commit("v1 with its migration", with_hook(served_app("v1", port), "migrate", "pre-deploy",
                                                        "sleep 3; echo migrating v1; echo schema at 1", net))
    app = swarmops.add_app(swarmops.name("hookpre"), repo.url, policy={"allowed_external": [net]})

    # the job while it runs: a replicated job with swarmops' labels and no stack namespace
    seen: list[dict[str, Any]] = []
    log = tmp_path / "sync.log"
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "sync", app],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        def job_seen() -> bool:
            seen.extend(hook_jobs(lab, app))
            return bool(seen)
        wait_for(job_seen, 120, "the hook's job to appear", log)
        assert "web" not in services(lab, app)   # nothing of the commit is deployed while the hook runs
    finally:
        assert proc.wait(timeout=180) == 0, log.read_text()
    job = seen[0]["Spec"]
    assert job["Name"] == f"{app}_hook-migrate" and "ReplicatedJob" in job["Mode"]
    assert job["Labels"]["io.swarmops.commit"] == good and job["Labels"]["io.swarmops.hook"] == "migrate"
    assert "com.docker.stack.namespace" not in job["Labels"]
    assert job["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    assert hook_jobs(lab, app) == [] and set(services(lab, app)) == {"web"}   # removed once ended, never deployed
    [run] = hooks_of(history(swarmops, app)[0])
    assert (run["name"], run["kind"], run["exit_code"], run["state"]) == ("migrate", "pre-deploy", 0, "complete")
    assert run["log_tail"][-2:] == ["migrating v1", "schema at 1"]
    assert served(lab, app, port) == "v1"

    with Prober(lab, app, port) as prober:
        bad = repo.commit("v2 with a migration that fails", with_hook(
            served_app("v2", port), "migrate", "pre-deploy", "echo migrating v2; echo 'ERROR: column email exists'; "
                                                             "exit 3", net))
        res = swarmops.run("sync", app, check=False)
        assert res.returncode != 0 and "exit code 3" in res.stdout
    assert prober.failed == 0, prober.failures[:5]
    assert stack_image(services(lab, app)["web"]).endswith(f":{good[:12]}") and served(lab, app, port) == "v1"
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Failed"
    assert "pre-deploy hook migrate failed with exit code 3" in status["message"]
    assert "ERROR: column email exists" in status["message"]
    last = history(swarmops, app)[0]
    assert (last["commit_sha"], last["result"], last["rollback_to"]) == (bad, "failed", "")
    [run] = hooks_of(last)
    assert (run["exit_code"], run["log_tail"][-1]) == (3, "ERROR: column email exists")
    assert hook_jobs(lab, app) == []

    fixed = repo.commit("v3 with the fixed migration", with_hook(served_app("v3", port), "migrate", "pre-deploy",
                                                                 "echo migrating v3", net))
    swarmops.run("sync", app)
    assert stack_image(services(lab, app)["web"]).endswith(f":{fixed[:12]}") and served(lab, app, port) == "v3"
    assert hooks_of(history(swarmops, app)[0])[0]["exit_code"] == 0
    assert hook_jobs(lab, app) == []


def test_a_failing_post_deploy_hook_rolls_the_stack_back_and_a_relabel_runs_no_hook(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, no_jobs_left: None,
        jobs_network: str) -> None:
    net = jobs_network
    port = free_node_port()
    repo: GitRepo = repo_factory()
    good = repo.commit("v1 with a smoke test", with_hook(served_app("v1", port), "smoke", "post-deploy",
                                                       "echo smoke ok", net))
    app = swarmops.add_app(swarmops.name("hookpost"), repo.url, policy={"allowed_external": [net]})
    swarmops.run("sync", app)
    assert [r["name"] for r in hooks_of(history(swarmops, app)[0])] == ["smoke"]

    docs = repo.commit("docs only", {"docs/USAGE.md": "# Usage\n\nMore.\n"})
    out = swarmops.run("sync", app).stdout
    assert hooks_of(history(swarmops, app)[0]) == [] and history(swarmops, app)[0]["commit_sha"] == docs
    assert "relabel" in out

    bad = repo.commit("v2 whose smoke test fails", with_hook(served_app("v2", port), "smoke", "post-deploy",
                                                            "echo 'smoke: GET / gave 500'; exit 1", net))
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0
    last = history(swarmops, app)[0]
    assert (last["commit_sha"], last["result"], last["rollback_to"]) == (bad, "failed", docs)
    assert "post-deploy hook smoke failed with exit code 1" in last["error"] and "rolled back to" in last["error"]
    assert hooks_of(last)[0]["log_tail"][-1] == "smoke: GET / gave 500"
    assert stack_image(services(lab, app)["web"]).endswith(f":{good[:12]}")   # docs reused v1's image
    wait_for(lambda: served(lab, app, port) == "v1", 30, "v1 to be served again")
    assert hook_jobs(lab, app) == []
    labelled = [s["Spec"]["Labels"] for s in lab.services(filters={"label": "io.swarmops.hook"})]
    assert not [labels for labels in labelled if "com.docker.stack.namespace" in labels]


@pytest.mark.parametrize(("asks", "rule"), [
    ("    deploy: {placement: {constraints: [node.labels.role == db]}}\n", "SO111"),   # a role not the app's
    ("    volumes: [\"/srv/billing:/data\"]\n", "SO109"),                              # a bind of the host
], ids=["foreign-role", "bind"])
def test_a_hook_asking_for_what_the_app_may_not_is_refused_like_a_service_and_nothing_runs(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, no_jobs_left: None, jobs_network: str,
        asks: str, rule: str) -> None:
    repo: GitRepo = repo_factory()
    files = with_hook(served_app("v1", free_node_port()), "migrate", "pre-deploy", "echo migrating", jobs_network)
    files["stack.yml"] = str(files["stack.yml"]).replace("    x-swarmops: {hook: pre-deploy, timeout: 1m}\n",
                                                         "    x-swarmops: {hook: pre-deploy, timeout: 1m}\n" + asks)
    repo.commit("a hook that asks for too much", files)
    app = swarmops.add_app(swarmops.name(f"hookpol{rule[-1]}"), repo.url, policy={"allowed_external": [jobs_network]})
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0 and rule in res.stdout + res.stderr and "migrate" in res.stdout + res.stderr, res
    assert services(lab, app) == {} and hook_jobs(lab, app) == []   # no job ran, nothing was deployed
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "PolicyViolation" and rule in status["message"], status

"""Issue 12, drill 10: swarmops as a Swarm service (stacks/swarmops) on a lab of three managers. The
engine of the manager that runs it is stopped; Swarm starts it on another manager, which carries on from
the services' labels and the history copy in the Swarm: no synced app is redeployed, no history entry is
lost, and the next commit is deployed there. A prober requests an app throughout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    MANAGER,
    MANAGER_IP,
    REGISTRY,
    ROOT,
    Prober,
    Swarmops,
    commit_of,
    free_node_port,
    lab_images,
    meshed_app,
    run_lab_script,
    services,
    wait_for,
    web_app,
)
from tests.integration.test_drills import lab_cmd

pytestmark = pytest.mark.exclusive
PROMOTED = ("app2", "minio")
SOCKETS = {"manager": MANAGER, **{n: f"unix:///run/swarm-lab/{n}.sock" for n in PROMOTED}}
CONFIG_PATH = "/etc/swarmops/swarmops.yml"


@pytest.fixture(scope="module")
def swarmops_image() -> str:
    """The swarmops image, built FROM the locally made Python base and pushed to the lab registry."""
    lab_images("python")
    return run_lab_script(ROOT / "stacks" / "swarmops" / "build", "drill").strip().splitlines()[-1]


@pytest.fixture
def three_managers(lab: docker.APIClient) -> Iterator[None]:
    lab_cmd("promote", *PROMOTED)
    try:
        yield
    finally:
        lab_cmd("up")   # the stopped engine comes back
        wait_for(lambda: all(n["Status"]["State"] == "ready" for n in lab.nodes()), 120, "every node to be ready")
        lab_cmd("demote", *PROMOTED)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[str]:
    """`git daemon` on the lab bridge, so that a swarmops task on any node reaches it."""
    with socket.socket() as s:
        s.bind((MANAGER_IP, 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--listen={MANAGER_IP}",
                             f"--port={port}", f"--base-path={tmp_path}", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(MANAGER_IP, port), 15, "git daemon")
        yield f"git://{MANAGER_IP}:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def node_names() -> dict[str, str]:
    """Swarm node ID -> lab node name, for the nodes that can run swarmops."""
    out = {}
    for name, sock in SOCKETS.items():
        out[docker.APIClient(base_url=sock, timeout=10).info()["Swarm"]["NodeID"]] = name
    return out


class Service:
    """The swarmops service: where its task runs, and its CLI inside that task."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes = node_names()   # read while every engine is up

    def task(self, api: docker.APIClient) -> tuple[str, str] | None:
        """(lab node name, container id) of its running task; None while the managers elect a new leader
        (the Engine answers 500, "context deadline exceeded", to the drill's own reads then)."""
        try:
            tasks = api.tasks(filters={"service": self.name, "desired-state": "running"})
        except docker.errors.APIError as e:
            if e.status_code is not None and e.status_code >= 500:
                return None
            raise
        for t in tasks:
            if t["Status"]["State"] == "running":
                return self.nodes.get(t["NodeID"], "?"), t["Status"]["ContainerStatus"]["ContainerID"]
        return None

    def cli(self, api: docker.APIClient, *args: str) -> Any:
        found = self.task(api)
        assert found, f"{self.name} has no running task"
        node = docker.APIClient(base_url=SOCKETS[found[0]], timeout=60)
        run = node.exec_create(found[1], ["python3", "-m", "swarmops", "--config", CONFIG_PATH, *args, "--json"])
        return json.loads(node.exec_start(run["Id"]))

    def logs(self, api: docker.APIClient) -> str:
        found = self.task(api)
        if not found:
            tasks = api.tasks(filters={"service": self.name})
            states = [(t["Status"]["State"], t["Status"].get("Err", "")) for t in tasks]
            return f"no running task of {self.name}: {states}"
        return str(docker.APIClient(base_url=SOCKETS[found[0]], timeout=30).logs(found[1]).decode(errors="replace"))


def spec_versions(api: docker.APIClient, apps: list[str]) -> dict[str, Any]:
    """Each service's spec and previous spec: any `stack deploy` changes the second. Not its version or
    UpdatedAt: a new Swarm leader re-writes every service with a network endpoint (checked on the lab)."""
    return {f"{app}/{name}": (svc["Spec"], svc.get("PreviousSpec"))
            for app in apps for name, svc in services(api, app).items()}


def test_stopping_the_manager_that_runs_swarmops_moves_it_to_another_manager_with_no_redeploy_and_no_lost_history(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path, swarmops_image: str,
        three_managers: None, git_server: str) -> None:
    port = free_node_port()
    served, plain = repo_factory(), repo_factory()
    served.commit("first", meshed_app("v1", port))
    plain.commit("first", web_app("p1"))
    apps = [swarmops.name("fo-served"), swarmops.name("fo-plain")]
    swarmops.apps += [{"name": a} for a in apps]   # the fixture removes their stacks afterwards
    config = {"registry": REGISTRY, "registry_insecure": True, "poll_interval": "3s", "settle": "2s",
              "deploy_timeout": "90s", "lock": {"name": f"swarmops-lock-fo-{swarmops.run_id}", "ttl": "10s"},
              "apps": [{"name": apps[0], "repo": f"{git_server}/{served.bare.relative_to(tmp_path)}"},
                       {"name": apps[1], "repo": f"{git_server}/{plain.bare.relative_to(tmp_path)}"}]}
    (tmp_path / "service.yml").write_text(json.dumps(config))
    (tmp_path / "webhook.secret").write_text("unused-in-this-drill\n")
    stack = f"swarmops-{swarmops.run_id}"
    env = {**os.environ, "DOCKER_HOST": MANAGER, "SWARMOPS_REGISTRY": REGISTRY, "SWARMOPS_VERSION": "drill",
           "SWARMOPS_CONFIG_FILE": str(tmp_path / "service.yml"), "SWARMOPS_CONFIG_VERSION": swarmops.run_id,
           "SWARMOPS_WEBHOOK_SECRET_FILE": str(tmp_path / "webhook.secret"),
           "SWARMOPS_REGISTRY_AUTH_FILE": str(Path.home() / ".docker" / "config.json")}   # the lab's login
    # --with-registry-auth: the manager that takes the service over pulls the image with the lab's login
    res = subprocess.run(["docker", "stack", "deploy", "--with-registry-auth", "-c",
                          str(ROOT / "stacks" / "swarmops" / "stack.yml"), stack],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    svc = Service(f"{stack}_daemon")
    alive, alive_sock = lab, MANAGER
    try:
        wait_for(lambda: all(commit_of(lab, a) for a in apps), 240, "the service's first deploys",
                 lambda: svc.logs(lab))
        wait_for(lambda: all(svc.cli(lab, "history", a)[0]["result"] == "succeeded" for a in apps), 120,
                 "both deploys to end")
        before = {a: svc.cli(lab, "history", a) for a in apps}
        versions = spec_versions(lab, apps)
        first = svc.task(lab)
        assert first is not None
        with Prober(lab, apps[0], port) as probe:
            print(f"stopping {first[0]}, which runs swarmops")
            lab_cmd("node-stop", first[0])          # the manager that runs swarmops goes away
            alive_sock = SOCKETS[next(n for n in SOCKETS if n != first[0])]
            alive = docker.APIClient(base_url=alive_sock, timeout=30)
            wait_for(lambda: (svc.task(alive) or (first[0],))[0] != first[0], 240,
                     "Swarm to start swarmops on another manager")
            wait_for(lambda: "holding the deploy lock" in svc.logs(alive), 120, "the new task to take the lock")
            time.sleep(12)                           # four polls on the new manager
            assert spec_versions(alive, apps) == versions, svc.logs(alive)[-6000:]   # no synced app redeployed
            after = {a: svc.cli(alive, "history", a) for a in apps}
            for a in apps:                          # the history written on the lost manager is there
                assert [(d["commit_sha"], d["result"], d["started"]) for d in after[a]] == \
                       [(d["commit_sha"], d["result"], d["started"]) for d in before[a]]
            second = plain.commit("second", {"web/index.html": "p2\n"})
            wait_for(lambda: commit_of(alive, apps[1]) == second, 120, "the new manager to deploy the next commit")
            wait_for(lambda: svc.cli(alive, "history", apps[1])[0]["result"] == "succeeded", 120, "it to end")
        assert probe.failed == 0, probe.failures     # the replica on the other app node served throughout
        history = svc.cli(alive, "history", apps[1])
        assert [d["commit_sha"] for d in history] == [second] + [d["commit_sha"] for d in before[apps[1]]]
        assert "read back" in svc.logs(alive)        # it said where the history came from
    finally:
        subprocess.run(["docker", "-H", alive_sock, "stack", "rm", stack], capture_output=True)

"""Issue 4 on the lab: a hostile commit changes nothing in the Swarm; secrets go from an age file in
the repo to /run/secrets in a container without touching a disk or a log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import MANAGER, GitRepo, Swarmops, running_tasks, services, web_app

HOSTILE = {   # kind -> (lines added to the service, the rule that refuses them)
    "privileged": ("    privileged: true\n", "SO101"),
    "docker-socket": ("    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n", "SO110"),
    "interpolated-root": ("    volumes: [\"${NOPE:-/}:/host\"]\n", "SO110"),
    "other-role": ("", "SO111"),
    "volume-bind-device": ("    volumes: [\"data:/data\"]\n", "SO119"),
    "router-priority": ("    labels: {traefik.http.routers.APP.priority: \"100000\"}\n", "SO122"),
    "host-network": ("    networks: [h]\n", "SO127"),
    "replicas": ("", "SO125"),
}
TOP = {"volume-bind-device": "volumes:\n  data: {driver_opts: {type: none, o: bind, device: /}}\n",
       "host-network": "networks:\n  h: {external: {name: host}}\n"}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_commit_is_refused_and_nothing_in_the_swarm_changes(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, kind: str) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("good", web_app("v1"))
    app = swarmops.add_app(swarmops.name(f"hostile-{kind}"), repo.url)
    swarmops.run("sync", app)
    before = {n: (s["Version"]["Index"], s["Spec"]) for n, s in services(lab, app).items()}
    tasks_before = {t["ID"] for t in running_tasks(lab, app, "web")}
    stack = web_app()["stack.yml"] or ""
    if kind == "other-role":
        stack = stack.replace("      replicas: 1\n", "      replicas: 1\n"
                              "      placement: {constraints: [NODE.LABELS.role == db]}\n")
    elif kind == "replicas":
        stack = stack.replace("      replicas: 1\n", "      replicas: 5000\n")
    else:
        stack = stack.replace("    build: ./web\n", "    build: ./web\n" + HOSTILE[kind][0].replace("APP", app))
    stack += TOP.get(kind, "")
    repo.commit(f"hostile: {kind}", {"stack.yml": stack, "web/index.html": "v2\n"})
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0 and "policy restricted refuses" in res.stdout + res.stderr
    assert {n: (s["Version"]["Index"], s["Spec"]) for n, s in services(lab, app).items()} == before
    assert {t["ID"] for t in running_tasks(lab, app, "web")} == tasks_before
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "PolicyViolation"
    assert HOSTILE[kind][1] in status["message"]


def encrypt(swarmops: Swarmops, repo: GitRepo, app: str, name: str, value: str) -> None:
    res = subprocess.run([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "secret", "encrypt",
                          app, name], input=value.encode(), cwd=repo.work, capture_output=True, check=True)
    assert res.stdout.decode().strip() == f"secrets/{name}.age"


def read_secret(lab: docker.APIClient, app: str, name: str) -> str:
    [task] = running_tasks(lab, app, "web")
    hostname = lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
    sock = MANAGER if task["NodeID"] == lab.info()["Swarm"]["NodeID"] else f"unix:///run/swarm-lab/{hostname}.sock"
    node = docker.APIClient(base_url=sock, timeout=30)
    exec_id = node.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], ["cat", f"/run/secrets/{name}"])
    return str(node.exec_start(exec_id).decode())


def grep_tree(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_secrets_reach_the_container_rotate_and_never_touch_disk_or_logs(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo: GitRepo = repo_factory()
    swarmops.write()
    swarmops.run("keygen")
    app = swarmops.name("secret")
    swarmops.add_app(app, repo.url)
    files = web_app("v1")
    files["stack.yml"] = (files["stack.yml"] or "").replace("    build: ./web\n", "    build: ./web\n"
                                                            "    secrets: [dbpass]\n")
    files["stack.yml"] = (files["stack.yml"] or "") + "secrets:\n  dbpass:\n    file: secrets/dbpass.age\n"
    repo.write(files)
    first_value, second_value = "first-Pl41nText-value", "second-Pl41nText-value"
    encrypt(swarmops, repo, app, "dbpass", first_value)
    repo.commit("with a secret", {})
    log1 = swarmops.run("daemon", "--once")
    assert read_secret(lab, app, "dbpass") == first_value
    [first_name] = [s["Spec"]["Name"] for s in lab.secrets(filters={"label": f"io.swarmops.app={app}"})]

    encrypt(swarmops, repo, app, "dbpass", second_value)
    repo.commit("rotate", {})
    log2 = swarmops.run("sync", app)
    assert read_secret(lab, app, "dbpass") == second_value
    names = [s["Spec"]["Name"] for s in lab.secrets(filters={"label": f"io.swarmops.app={app}"})]
    assert len(names) == 1 and names[0] != first_name and names[0].startswith(f"{app}_dbpass_")

    for value in (first_value, second_value):
        assert grep_tree(swarmops.state_dir, value.encode()) == []
        for res in (log1, log2):
            assert value not in res.stdout and value not in res.stderr


def test_a_secret_that_does_not_decrypt_is_refused_and_names_the_file(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("good", web_app("v1"))
    swarmops.write()
    swarmops.run("keygen")
    app = swarmops.add_app(swarmops.name("badsecret"), repo.url)
    swarmops.run("sync", app)
    files = {"stack.yml": (web_app()["stack.yml"] or "") + "secrets:\n  token:\n    file: secrets/token.age\n",
             "secrets/token.age": "this is not age\n"}
    repo.commit("broken secret", files)
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0 and "secrets/token.age: cannot be decrypted" in res.stdout
    assert len(running_tasks(lab, app, "web")) == 1

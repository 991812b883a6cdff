"""Issue 19 on the lab: one app cannot reach swarmops' files, another app's secrets or the deploy lock."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import docker

from tests.integration.conftest import BASE_IMAGE, MANAGER, REGISTRY, SERVE, GitRepo, Swarmops, services, web_app


def test_a_service_name_that_is_a_path_writes_nothing_outside_the_build_and_runs_no_hook(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    victim_repo: GitRepo = repo_factory()
    victim_repo.commit("init", web_app("victim"))
    victim = swarmops.add_app(swarmops.name("victim"), victim_repo.url)
    swarmops.run("sync", victim)
    cache = swarmops.state_dir / "repos" / f"{victim}.git"
    marker = swarmops.dir / "hook-ran"
    hook = f"#!/bin/sh\ntouch {marker}\n"
    hostile: GitRepo = repo_factory()
    hostile.commit("a service named like another app's bare cache", {
        "stack.yml": f'version: "3.8"\nservices:\n  "{cache}":\n    build: ctx\n',
        "ctx/Dockerfile": "FROM scratch\n",
        **{f"ctx/hooks/{name}": hook for name in ("reference-transaction", "post-checkout", "post-merge")},
        "ctx/config": "[core]\n\tbare = true\n\tfsmonitor = touch-marker\n"})
    app = swarmops.add_app(swarmops.name("traversal"), hostile.url)
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0 and "is not allowed: use letters, digits" in res.stdout + res.stderr
    assert not (cache / "hooks" / "reference-transaction").exists()
    assert "fsmonitor" not in (cache / "config").read_text()
    victim_repo.commit("next", {"web/index.html": "victim 2\n"})
    swarmops.run("sync", victim)   # a fetch into the victim's cache: no hook of the hostile repo runs
    assert not marker.exists()
    assert services(lab, app) == {}


def run(swarmops: Swarmops, *args: str, stdin: bytes = b"", cwd: Any = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), *args], input=stdin,
                          cwd=cwd, capture_output=True, timeout=300)


def test_another_apps_secret_copied_into_a_repo_is_refused_with_the_rule_and_the_fix(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    swarmops.write()
    assert run(swarmops, "keygen").returncode == 0
    stack = (web_app()["stack.yml"] or "").replace("    build: ./web\n", "    build: ./web\n    secrets: [dbpass]\n")
    stack += "secrets:\n  dbpass: {file: secrets/dbpass.age}\n"
    owner_repo: GitRepo = repo_factory()
    owner = swarmops.add_app(swarmops.name("owner"), owner_repo.url)
    assert run(swarmops, "secret", "encrypt", owner, "dbpass", stdin=b"owner-only", cwd=owner_repo.work).returncode == 0
    owner_repo.commit("init", {**web_app(), "stack.yml": stack})
    swarmops.run("sync", owner)

    thief_repo: GitRepo = repo_factory()
    copied = (owner_repo.work / "secrets" / "dbpass.age").read_bytes()
    (thief_repo.work / "secrets").mkdir()
    (thief_repo.work / "secrets" / "dbpass.age").write_bytes(copied)
    thief_repo.commit("the owner's secret", {**web_app(), "stack.yml": stack})
    thief = swarmops.add_app(swarmops.name("thief"), thief_repo.url)
    res = swarmops.run("sync", thief, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "[SO129]" in out and f"swarmops secret encrypt {thief} dbpass" in out
    assert "owner-only" not in out
    assert services(lab, thief) == {}
    assert not [s for s in lab.secrets() if s["Spec"]["Name"].startswith(f"{thief}_")]


def test_a_lock_config_made_by_a_stack_stops_the_daemon_with_a_clear_error(
        lab: docker.APIClient, swarmops: Swarmops) -> None:
    swarmops.write()
    name = json.loads(swarmops.config.read_text())["lock"]["name"]
    config = lab.create_config(name, b"not a lock", labels={"com.docker.stack.namespace": "evil"})
    try:
        res = subprocess.run([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                             capture_output=True, text=True, timeout=120)
    finally:
        lab.remove_config(config["ID"])
    assert res.returncode == 2 and "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    assert f"the Swarm config {name!r} is not swarmops' deploy lock: stack 'evil' made it" in res.stderr


def test_an_image_replaced_in_the_registry_is_rebuilt_reported_and_never_runs(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("v1", web_app("v1"))
    app = swarmops.add_app(swarmops.name("replaced"), repo.url)
    swarmops.run("sync", app)
    fingerprint = services(lab, app)["web"]["Spec"]["Labels"]["io.swarmops.fingerprint"]
    repo.commit("v2", {"web/index.html": "v2\n"})
    swarmops.run("sync", app)
    # a push past swarmops (by anyone holding the registry's credentials) under v1's tag and fingerprint alias
    evil = (f"FROM {BASE_IMAGE}\nRUN echo evil > /evil\n{SERVE}\n"   # with the labels swarmops' own images carry
            f"LABEL io.swarmops.source-tag={first[:12]} io.swarmops.fingerprint={fingerprint}\n").encode()
    for tag in (first[:12], f"fp-{fingerprint}"):
        list(lab.build(fileobj=io.BytesIO(evil), tag=f"{REGISTRY}/{app}/web:{tag}", rm=True, decode=True))
        list(lab.push(f"{REGISTRY}/{app}/web", tag=tag, stream=True, decode=True))
    replaced = lab.inspect_distribution(f"{REGISTRY}/{app}/web:{first[:12]}")["Descriptor"]["digest"]
    repo.commit("back to v1", {"web/index.html": "v1\n"})   # the first commit's build inputs again
    res = swarmops.run("sync", app)
    assert "is not the image swarmops pushed" in res.stdout + res.stderr
    running = services(lab, app)["web"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert replaced not in running
    entry = swarmops.json("history", app)[0]
    assert entry["result"] == "succeeded" and f"the registry held {replaced}" in entry["builds"]


def test_the_registry_refuses_a_push_and_a_pull_without_credentials(lab: docker.APIClient, tmp_path: Any) -> None:
    anonymous = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}   # a Docker config with no credentials
    lab.tag(BASE_IMAGE, f"{REGISTRY}/anonymous/push", "1")
    push = subprocess.run(["docker", "-H", MANAGER, "push", f"{REGISTRY}/anonymous/push:1"], env=anonymous,
                          capture_output=True, text=True, timeout=120)
    assert push.returncode != 0 and "no basic auth credentials" in push.stderr
    worker = "unix:///run/swarm-lab/awdi.sock"   # a node's engine, never logged in
    pull = subprocess.run(["docker", "-H", worker, "pull", BASE_IMAGE], env=anonymous,
                          capture_output=True, text=True, timeout=120)
    assert pull.returncode != 0 and "no basic auth credentials" in pull.stderr


def test_a_node_without_credentials_runs_the_image_with_those_the_deploy_hands_it(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("init", web_app("on awdi"))
    app = swarmops.add_app(swarmops.name("regauth"), repo.url, role="awdi")
    swarmops.run("sync", app)
    node = docker.APIClient(base_url="unix:///run/swarm-lab/awdi.sock")
    image = services(lab, app)["web"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    running = [c for c in node.containers() if c["Labels"].get("com.docker.swarm.service.name") == f"{app}_web"]
    assert running and running[0]["Image"] == image

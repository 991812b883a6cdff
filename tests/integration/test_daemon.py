"""The daemon itself: polls pick up commits, SIGTERM lets the running deploy finish and exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from tests.integration.conftest import GitRepo, Swarmops, services, stack_image, wait_for, web_app


def start_daemon(swarmops: Swarmops, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def image_of(lab: docker.APIClient, app: str) -> str:
    found = services(lab, app)
    return stack_image(found["web"]) if "web" in found else ""


def test_daemon_deploys_new_commits_and_finishes_a_deploy_on_sigterm(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1"))
    app = swarmops.add_app(swarmops.name("daemon"), repo.url, settle="4s")
    log = tmp_path / "daemon.log"
    proc = start_daemon(swarmops, log)
    try:
        wait_for(lambda: image_of(lab, app).endswith(first[:12]), 90, "the first commit to be deployed", log)
        wait_for(lambda: '"result": "deployed"' in log.read_text(), 120, "the first deploy to converge", log)
        second = repo.commit("second", {"web/index.html": "v2\n"})
        wait_for(lambda: second[:12] in image_of(lab, app), 60, "the second deploy to start", log)
        proc.send_signal(signal.SIGTERM)   # the deploy is now in its convergence watch (settle 4s)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    history = swarmops.json("history", app)
    assert [(d["commit_sha"], d["result"]) for d in history] == [(second, "succeeded"), (first, "succeeded")]
    assert "daemon stopped" in log.read_text()


def test_sigterm_past_the_grace_period_records_the_deploy_as_interrupted(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1"))
    swarmops.extra["shutdown_grace"] = "1s"
    app = swarmops.add_app(swarmops.name("grace"), repo.url, settle="30s")
    log = tmp_path / "daemon.log"
    proc = start_daemon(swarmops, log)
    try:
        wait_for(lambda: first[:12] in image_of(lab, app), 90, "the deploy to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    [deploy] = swarmops.json("history", app)
    assert deploy["result"] == "interrupted" and deploy["commit_sha"] == first
    # the next run resolves it from the live state: it watches the services converge, in the same entry
    out = swarmops.run("daemon", "--once").stdout
    assert f"{app}: noop" in out
    [deploy] = swarmops.json("history", app)
    assert deploy["result"] == "interrupted" and "after the restart the services had converged" in deploy["error"]

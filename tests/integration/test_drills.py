"""Issue 12 drills with a prober: the app is requested every 100 ms while the fault happens. Two replicas,
one per app node, updated one at a time, keep it answering through deploys, so a failed probe is the
fault's doing. Every drill ends with the history check: each commit deployed at most once,
the last commit synced, no service removed."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    LAB,
    GitRepo,
    Prober,
    Swarmops,
    commit_of,
    free_node_port,
    meshed_app,
    services,
    wait_for,
    web_app,
)


def check_history(swarmops: Swarmops, app: str, last: str) -> list[dict[str, Any]]:
    history = swarmops.json("history", app)
    succeeded = [d["commit_sha"] for d in history if d["result"] == "succeeded"]
    assert len(succeeded) == len(set(succeeded)), history        # no commit deployed twice
    assert history[0]["commit_sha"] == last, history             # the last commit is what ran last
    return list(history)


def image_commit(lab: docker.APIClient, app: str) -> str:
    """The deployed commit, short, from the services' labels (an image may be reused from an earlier
    commit with the same build inputs)."""
    return commit_of(lab, app)[:12]


@pytest.fixture
def meshed(lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> Iterator[tuple[GitRepo, str, int, str]]:
    port = free_node_port()
    repo: GitRepo = repo_factory()
    first = repo.commit("first", meshed_app("v1", port))
    app = swarmops.add_app(swarmops.name("drill"), repo.url, settle="1s")
    swarmops.run("sync", app)
    yield repo, app, port, first


def lab_cmd(*args: str) -> None:
    subprocess.run(["bash", str(LAB), *args], check=True, capture_output=True, timeout=180)


def test_a_git_server_that_never_answers_or_is_down_prunes_nothing_and_status_says_why(
        lab: docker.APIClient, swarmops: Swarmops, meshed: tuple[GitRepo, str, int, str]) -> None:
    repo, app, port, first = meshed
    before = services(lab, app)
    hanging = socket.create_server(("127.0.0.1", 0))   # accepts, never answers
    held: list[socket.socket] = []
    def accept() -> None:
        for _ in range(100):
            held.append(hanging.accept()[0])
    threading.Thread(target=accept, daemon=True).start()
    swarmops.extra["git"] = {"timeout": "3s"}
    with Prober(lab, app, port) as probe:
        swarmops.apps[-1]["repo"] = f"git://127.0.0.1:{hanging.getsockname()[1]}/app.git"
        swarmops.write()
        started = time.monotonic()
        assert swarmops.run("daemon", "--once", check=False).returncode != 0
        assert time.monotonic() - started < 30 and held                     # it gave up on its own
        status = {s["app"]: s for s in swarmops.json("status")}[app]
        assert status["status"] == "Failed" and "no answer within 3s" in status["message"], status
        assert services(lab, app).keys() == before.keys()                   # nothing pruned
        with socket.socket() as closed:                                     # the git server is down
            closed.bind(("127.0.0.1", 0))
            swarmops.apps[-1]["repo"] = f"git://127.0.0.1:{closed.getsockname()[1]}/app.git"
        swarmops.write()
        assert swarmops.run("daemon", "--once", check=False).returncode != 0
        status = {s["app"]: s for s in swarmops.json("status")}[app]
        assert status["status"] == "Failed" and "refused" in status["message"], status
        assert services(lab, app).keys() == before.keys()
        swarmops.apps[-1]["repo"] = repo.url
        swarmops.write()
        assert f"{app}: noop" in swarmops.run("daemon", "--once").stdout
    assert probe.failed == 0, probe.failures
    check_history(swarmops, app, first)


@pytest.mark.exclusive   # disturbs the whole lab
def test_registry_down_during_the_push_deploys_nothing_and_retries_until_it_returns(
        lab: docker.APIClient, swarmops: Swarmops, meshed: tuple[GitRepo, str, int, str], tmp_path: Path) -> None:
    repo, app, port, first = meshed
    swarmops.extra.update(poll_interval="1h", retry={"backoff": "2s", "max_backoff": "4s", "limit": 50})
    swarmops.write()
    log = tmp_path / "daemon.log"
    with Prober(lab, app, port) as probe:
        lab_cmd("registry-stop")
        try:
            second = repo.commit("second", {"web/index.html": "v2\n"})
            proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                    stdout=log.open("wb"), stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: log.read_text().count("retrying") >= 2, 60, "two retries with the registry down", log)
                assert image_commit(lab, app) == first[:12], log.read_text()[-3000:]   # nothing deployed meanwhile
                status = {s["app"]: s for s in swarmops.json("status")}[app]
                assert "registry" in status["message"], status
            finally:
                lab_cmd("up")                                                   # the registry returns
            wait_for(lambda: image_commit(lab, app) == second[:12], 90, "the retry to deploy", log)
            wait_for(lambda: swarmops.json("history", app)[0]["result"] == "succeeded", 60, "the deploy to end", log)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert probe.failed == 0, probe.failures
    history = check_history(swarmops, app, second)
    assert [d["result"] for d in history if d["commit_sha"] == second] == ["succeeded"]
    status = {s["app"]: s for s in swarmops.json("status")}[app]       # the fault, and when it cleared
    assert "registry" in status["last_fault"] and status["fault_cleared_at"] > status["last_fault_at"], status


def test_a_full_disk_under_state_dir_is_a_clear_error_no_corruption_and_recovers(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        swarmops.extra["state_dir"] = str(small / "state")
        port = free_node_port()
        repo: GitRepo = repo_factory()
        repo.commit("first", meshed_app("v1", port))
        app = swarmops.add_app(swarmops.name("full"), repo.url, settle="1s")
        swarmops.run("sync", app)
        with Prober(lab, app, port) as probe:
            filler = small / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # fills it
            second = repo.commit("second", {"web/index.html": "v2\n"})
            res = swarmops.run("sync", app, check=False)
            said = res.stdout + res.stderr
            assert res.returncode != 0 and "no space left" in said.lower(), said
            assert "Traceback" not in said and len(said.strip().splitlines()) <= 3, said   # one clear line
            filler.unlink()                                                 # space returns
            with sqlite3.connect(small / "state" / "state.db") as db:       # and nothing was corrupted
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            swarmops.run("sync", app)
            assert image_commit(lab, app) == second[:12]
        assert probe.failed == 0, probe.failures
        check_history(swarmops, app, second)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_sigkill_during_build_stack_deploy_and_convergence_leaves_one_entry_each_and_finishes(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    port = free_node_port()
    repo: GitRepo = repo_factory()
    repo.commit("first", meshed_app("v1", port, slow_build=True))
    app = swarmops.add_app(swarmops.name("kill"), repo.url, settle="3s")
    swarmops.extra["poll_interval"] = "1h"
    swarmops.run("sync", app)

    def killed_when(marker: str, n: int) -> None:
        log = tmp_path / f"daemon-{n}.log"
        proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: marker in log.read_text(), 90, marker, log)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    with Prober(lab, app, port) as probe:
        during_build = repo.commit("during build", {"web/index.html": "v2\n"})
        killed_when(": building web", 1)
        [entry] = [d for d in swarmops.json("history", app) if d["commit_sha"] == during_build]
        assert entry["result"] == "running"                      # as the killed process left it
        swarmops.run("daemon", "--once")                         # restart: resolves, then deploys it
        assert image_commit(lab, app) == during_build[:12]
        entries = [d for d in swarmops.json("history", app) if d["commit_sha"] == during_build]
        assert [d["result"] for d in entries] == ["succeeded", "interrupted"]
        assert "had not been deployed" in entries[1]["error"]

        during_deploy = repo.commit("during stack deploy", {"web/index.html": "v3\n"})
        killed_when(": docker stack deploy", 2)
        swarmops.run("daemon", "--once")
        during_watch = repo.commit("during convergence", {"web/index.html": "v4\n"})
        killed_when(": watching", 3)
        assert image_commit(lab, app) == during_watch[:12]
        out = swarmops.run("daemon", "--once").stdout            # finishes the watch, deploys nothing new
        assert f"{app}: noop" in out, out
    assert probe.failed == 0, probe.failures
    history = check_history(swarmops, app, during_watch)
    watched = [d for d in history if d["commit_sha"] == during_watch]
    assert len(watched) == 1 and watched[0]["result"] == "interrupted", watched   # one entry, marked
    assert "after the restart the services had converged" in watched[0]["error"]
    # killed a moment after `stack deploy` began: either the deploy reached the Swarm (one entry, its watch
    # finished after the restart) or it had not (that entry says so, and the restart deployed it once)
    deployed = [(d["result"], "converged" in d["error"]) for d in history if d["commit_sha"] == during_deploy]
    assert deployed in ([("interrupted", True)], [("succeeded", False), ("interrupted", False)]), deployed


def test_two_daemons_share_one_lock_in_the_swarm_one_deploys_and_the_other_takes_over_without_redeploying(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1"))
    app = swarmops.add_app(swarmops.name("lock"), repo.url)
    swarmops.extra["lock"] = {"name": f"swarmops-lock-two-{swarmops.run_id}", "ttl": "6s"}
    swarmops.write()
    # the second daemon as on another manager: the same apps and lock, its own state directory
    other = json.loads(swarmops.config.read_text())
    other["state_dir"] = str(tmp_path / "other-state")
    other_config = tmp_path / "other.yml"
    other_config.write_text(json.dumps(other))
    logs = {"a": tmp_path / "a.log", "b": tmp_path / "b.log"}
    procs = {"a": subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                   stdout=logs["a"].open("wb"), stderr=subprocess.STDOUT)}
    try:
        wait_for(lambda: "holding the deploy lock" in logs["a"].read_text(), 30, "daemon a to take the lock")
        procs["b"] = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(other_config), "daemon"],
                                      stdout=logs["b"].open("wb"), stderr=subprocess.STDOUT)
        wait_for(lambda: f":{procs['a'].pid} (since" in logs["b"].read_text(), 30, "daemon b to say who holds it")
        wait_for(lambda: image_commit(lab, app) == first[:12], 90, "the first deploy")
        second = repo.commit("second", {"web/index.html": "v2\n"})
        wait_for(lambda: image_commit(lab, app) == second[:12], 90, "the second deploy")
        wait_for(lambda: swarmops.json("history", app)[0]["result"] == "succeeded", 60, "it to end")
        assert [d["commit_sha"] for d in swarmops.json("history", app)] == [second, first]
        assert "reconcile" not in logs["b"].read_text()                 # the waiter did nothing
        procs["a"].send_signal(signal.SIGKILL)                           # its lease is not renewed any more
        procs["a"].wait(timeout=30)
        wait_for(lambda: "holding the deploy lock" in logs["b"].read_text(), 60, "daemon b to take over")
        time.sleep(3)                                                    # its first checks of the app
        third = repo.commit("third", {"web/index.html": "v3\n"})
        wait_for(lambda: image_commit(lab, app) == third[:12], 90, "daemon b to deploy the next commit")
        def b_history() -> Any:
            return json.loads(subprocess.run(
                [sys.executable, "-m", "swarmops", "--config", str(other_config), "history", app, "--json"],
                capture_output=True, text=True, check=True).stdout)

        wait_for(lambda: b_history()[0]["result"] == "succeeded", 60, "daemon b's deploy to end", logs["b"])
        other_history = json.dumps(b_history())
        # b's own entry, after a's two read back from the Swarm's copy before b recorded: no redeploy of `second`
        assert [d["commit_sha"] for d in json.loads(other_history)] == [third, second, first]
        assert [d["commit_sha"] for d in swarmops.json("history", app)] == [third, second, first]   # a's view too
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)


@pytest.mark.exclusive   # disturbs the whole lab
def test_a_lost_node_shows_degraded_with_dockers_reason_and_swarmops_does_not_redeploy(
        lab: docker.APIClient, swarmops: Swarmops, meshed: tuple[GitRepo, str, int, str], tmp_path: Path) -> None:
    _, app, port, first = meshed
    deploys = len(swarmops.json("history", app))
    log = tmp_path / "daemon.log"

    def status_of() -> dict[str, Any]:
        return dict({s["app"]: s for s in swarmops.json("status")}[app])

    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        with Prober(lab, app, port) as probe:
            lab_cmd("node-stop", "app2")                       # one replica per app node: one is lost
            try:
                wait_for(lambda: status_of()["status"] == "Degraded", 90, "the app to show Degraded", log)
                web = status_of()["services"][0]
                assert web["running"] == 1 and web["desired"] == 2 and web["last_error"], web   # Docker's words
                time.sleep(10)                                   # five polls while the node is gone
                assert len(swarmops.json("history", app)) == deploys   # no redeploy, no loop
            finally:
                lab_cmd("up")                                    # the node returns
            wait_for(lambda: status_of()["status"] == "Synced", 120, "the app to be Synced once the node is back", log)
        assert probe.failed == 0, probe.failures                 # the other replica served throughout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert len(swarmops.json("history", app)) == deploys
    assert '"result": "deployed"' not in log.read_text()
    check_history(swarmops, app, first)


@pytest.mark.exclusive   # disturbs the whole lab
def test_the_engine_restarted_mid_reconcile_fails_that_reconcile_and_the_next_one_converges(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    port = free_node_port()
    repo: GitRepo = repo_factory()
    repo.commit("first", meshed_app("v1", port, slow_build=True))
    app = swarmops.add_app(swarmops.name("engine"), repo.url, settle="1s")
    swarmops.extra.update(retry={"backoff": "2s", "max_backoff": "4s", "limit": 50})
    swarmops.write()
    swarmops.run("sync", app)
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        with Prober(lab, app, port) as probe:
            second = repo.commit("second", {"web/index.html": "v2\n"})
            wait_for(lambda: ": building web" in log.read_text(), 60, "the build to start", log)
            lab_cmd("node-stop", "manager")                   # the manager's engine goes away mid-reconcile
            try:   # that reconcile fails in plain words (no crash), and is retried
                wait_for(lambda: '"result": "failed"' in log.read_text(), 60, "the reconcile to fail", log)
                failed = next(json.loads(line) for line in log.read_text().splitlines()
                              if '"result": "failed"' in line)
                assert not failed["message"].startswith("internal error"), failed
                assert ": docker stack deploy" not in log.read_text().split('"result": "failed"')[0], \
                    "the engine was meant to stop during the build, before anything was deployed"
            finally:
                lab_cmd("up")                                  # and comes back
            assert proc.poll() is None                         # the daemon kept running
            wait_for(lambda: commit_of(lab, app) == second, 120, "the next reconcile to deploy", log)
            wait_for(lambda: swarmops.json("history", app)[0]["result"] == "succeeded", 240, "it to end", log)
        assert probe.failed == 0, probe.failures              # app2's replica served throughout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    history = check_history(swarmops, app, second)
    results = [d["result"] for d in history if d["commit_sha"] == second]
    assert results[0] == "succeeded" and "failed" in results, history   # the failed one is recorded

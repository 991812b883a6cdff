"""Issue 12 drills that run quickly on the lab: broken renders, git source faults, a forced push, a corrupt
state database. A prober requests the app every 100 ms throughout (two replicas, one per app node, updated
one at a time); each drill ends by checking that nothing was pruned or deployed twice."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import docker

from tests.integration.conftest import (
    BASE_IMAGE,
    GitRepo,
    Prober,
    Swarmops,
    free_node_port,
    meshed_app,
    running_tasks,
    services,
    stack_image,
)


def deployed(swarmops: Swarmops, repo_factory: Any, base: str) -> tuple[GitRepo, str, str, int]:
    repo: GitRepo = repo_factory()
    port = free_node_port()
    good = repo.commit("good", meshed_app("v1", port))
    app = swarmops.add_app(swarmops.name(base), repo.url)
    swarmops.run("sync", app)
    return repo, app, good, port


def unchanged(lab: docker.APIClient, app: str, before: dict[str, Any]) -> None:
    now = services(lab, app)
    assert set(now) == set(before)
    assert {n: s["Version"]["Index"] for n, s in now.items()} == {n: s["Version"]["Index"] for n, s in before.items()}


def test_a_commit_that_empties_breaks_or_deletes_the_stack_file_is_refused(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo, app, _, port = deployed(swarmops, repo_factory, "broken")
    before = services(lab, app)
    cases: list[tuple[dict[str, str | None], str]] = [({"stack.yml": 'version: "3.8"\nservices: {}\n'}, "allow_empty"),
             ({"stack.yml": 'version: "3.8"\nservices:\n  web: [unclosed\n'}, "stack.yml:"),
             ({"stack.yml": None}, "stack.yml: not found in commit")]
    with Prober(lab, app, port) as probe:
        for files, words in cases:
            repo.commit("break it", files)
            res = swarmops.run("sync", app, check=False)
            assert res.returncode != 0 and words in res.stdout, res.stdout
            unchanged(lab, app, before)
            repo.commit("restore", {"stack.yml": meshed_app("v1", port)["stack.yml"]})
    assert probe.failed == 0, probe.failures
    assert len(running_tasks(lab, app, "web")) == 2


def test_git_source_faults_prune_nothing_and_status_says_why(lab: docker.APIClient, swarmops: Swarmops,
                                                             repo_factory: Any) -> None:
    repo, app, good, port = deployed(swarmops, repo_factory, "gitfault")
    before = services(lab, app)
    with Prober(lab, app, port) as probe:
        subprocess.run(["git", "--git-dir", str(repo.bare), "branch", "-m", "main", "renamed"], check=True)
        assert swarmops.run("daemon", "--once", check=False).returncode != 0
        unchanged(lab, app, before)
        status = {s["app"]: s for s in swarmops.json("status")}[app]
        assert status["status"] == "Failed" and "branch 'main' not found" in status["message"]
        subprocess.run(["git", "--git-dir", str(repo.bare), "branch", "-m", "renamed", "main"], check=True)
        moved = repo.bare.with_name("moved.git")
        shutil.move(repo.bare, moved)                                   # the repo is gone
        assert swarmops.run("daemon", "--once", check=False).returncode != 0
        unchanged(lab, app, before)
        message = {s["app"]: s for s in swarmops.json("status")}[app]["message"]
        assert "does not appear to be a git repository" in message
        shutil.move(moved, repo.bare)
        assert f"{app}: noop" in swarmops.run("daemon", "--once").stdout
    assert probe.failed == 0, probe.failures
    assert [d["commit_sha"] for d in swarmops.json("history", app)] == [good]   # nothing deployed twice


def test_a_force_push_to_an_older_commit_deploys_that_commit(lab: docker.APIClient, swarmops: Swarmops,
                                                              repo_factory: Any) -> None:
    repo, app, first, port = deployed(swarmops, repo_factory, "force")
    with Prober(lab, app, port) as probe:
        second = repo.commit("second", {"web/index.html": "v2\n"})
        swarmops.run("sync", app)
        subprocess.run(["git", "push", "-q", "--force", str(repo.bare), f"{first}:refs/heads/main"], cwd=repo.work,
                       check=True)
        swarmops.run("daemon", "--once")
    assert probe.failed == 0, probe.failures   # both deploys went one replica at a time
    assert stack_image(services(lab, app)["web"]).endswith(f":{first[:12]}")
    history = swarmops.json("history", app)
    assert [(d["commit_sha"], d["result"]) for d in history] == [(first, "succeeded"), (second, "succeeded"),
                                                                 (first, "succeeded")]


def test_a_corrupt_state_database_is_moved_aside_and_nothing_is_redeployed(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    apps, port = [], free_node_port()
    for i in range(50):   # 49 prebuilt-image apps (replicas 0, quick) and one that builds and serves
        repo: GitRepo = repo_factory()
        repo.commit("init", meshed_app("v1", port) if i == 0 else {"stack.yml": idle_stack(i)})
        apps.append(swarmops.add_app(swarmops.name(f"corrupt{i}"), repo.url))
    swarmops.run("daemon", "--once")
    versions = {app: services(lab, app)["web"]["Version"]["Index"] for app in apps}
    for f in swarmops.state_dir.glob("state.db*"):
        f.unlink()
    (swarmops.state_dir / "state.db").write_bytes(b"this is not a database" * 100)
    with Prober(lab, apps[0], port) as probe:
        out = swarmops.run("daemon", "--once").stdout
    assert probe.failed == 0, probe.failures
    assert "is corrupt" in out and "moved it to" in out
    assert list(swarmops.state_dir.glob("state.db.corrupt-*"))
    assert "read back 50 history entries of 50 apps from the Swarm" in out   # the history copy in the Swarm
    assert [d["result"] for d in swarmops.json("history", apps[0])] == ["succeeded"]
    assert sum(f"{app}: noop" in out for app in apps) == 50, out           # zero deploys
    assert {app: services(lab, app)["web"]["Version"]["Index"] for app in apps} == versions


def idle_stack(i: int) -> str:
    return f"""version: "3.8"
services:
  web:
    image: {BASE_IMAGE}
    command: ["sleep", "{100000 + i}"]
    deploy:
      replicas: 0
"""

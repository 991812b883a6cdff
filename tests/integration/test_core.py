"""Issue 2: a commit becomes running services on the lab, and nothing else happens when nothing
changed. Every test runs the real CLI against the real Swarm, registry and git repos."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    BASE_IMAGE,
    REGISTRY,
    GitRepo,
    Swarmops,
    node_labels,
    running_tasks,
    services,
    stack_image,
    web_app,
)


def test_commit_is_deployed_on_an_app_node_and_the_next_commit_rolls_forward(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1", replicas=2))
    app = swarmops.add_app(swarmops.name("core"), repo.url)
    swarmops.run("sync", app)
    web = services(lab, app)["web"]
    assert stack_image(web) == f"{REGISTRY}/{app}/web:{first[:12]}"
    tasks = running_tasks(lab, app, "web")
    assert len(tasks) == 2
    assert {node_labels(lab, t["NodeID"]).get("role") for t in tasks} == {"app"}

    second = repo.commit("second", {"web/index.html": "v2\n"})
    swarmops.run("sync", app)
    assert stack_image(services(lab, app)["web"]) == f"{REGISTRY}/{app}/web:{second[:12]}"
    history = swarmops.json("history", app)
    assert [(d["commit_sha"], d["result"]) for d in history] == [(second, "succeeded"), (first, "succeeded")]
    assert history[0]["author"] == "Dev Eloper" and history[0]["message"] == "second"


@pytest.mark.parametrize("role", ["db", "awdi", "minio"])
def test_app_lands_only_on_the_node_with_its_role(lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any,
                                                   role: str) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("init", {"stack.yml": f"""version: "3.8"
services:
  worker:
    image: {BASE_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
"""})
    app = swarmops.add_app(swarmops.name(f"role-{role}"), repo.url, role=role)
    swarmops.run("sync", app)
    tasks = running_tasks(lab, app, "worker")
    assert len(tasks) == 2
    assert {node_labels(lab, t["NodeID"]).get("role") for t in tasks} == {role}


def test_second_sync_without_change_runs_no_deploy(lab: docker.APIClient, swarmops: Swarmops,
                                                   repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("init", web_app())
    app = swarmops.add_app(swarmops.name("idem"), repo.url)
    swarmops.run("daemon", "--once")
    version = services(lab, app)["web"]["Version"]["Index"]
    out = swarmops.run("daemon", "--once").stdout
    assert f"{app}: noop" in out
    assert services(lab, app)["web"]["Version"]["Index"] == version
    assert len(swarmops.json("history", app)) == 1


def test_failures_are_recorded_while_the_previous_version_and_other_apps_keep_going(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    broken_repo: GitRepo = repo_factory()
    good_commit = broken_repo.commit("good", web_app("v1"))
    broken = swarmops.add_app(swarmops.name("broken"), broken_repo.url)
    swarmops.run("sync", broken)
    bad_commit = broken_repo.commit("bad build", {"web/Dockerfile": f"FROM {BASE_IMAGE}\nRUN exit 3\n"})
    unreachable = swarmops.add_app(swarmops.name("gone"), "file:///nonexistent/repo.git")
    other_repo: GitRepo = repo_factory()
    other_repo.commit("init", web_app("other"))
    other = swarmops.add_app(swarmops.name("other"), other_repo.url)

    res = swarmops.run("daemon", "--once", check=False)
    assert res.returncode != 0
    assert f"{other}: deployed" in res.stdout
    assert stack_image(services(lab, other)["web"]).endswith(":" + other_repo._git("rev-parse", "HEAD")[:12])
    # the broken app still runs its good commit, and its history says why the new one failed
    assert stack_image(services(lab, broken)["web"]).endswith(f":{good_commit[:12]}")
    assert len(running_tasks(lab, broken, "web")) == 1
    last = swarmops.json("history", broken)[0]
    assert (last["commit_sha"], last["result"]) == (bad_commit, "failed")
    assert "returned a non-zero code: 3" in last["error"]
    status = {s["app"]: s for s in swarmops.json("status")}
    assert status[broken]["status"] == "Failed"
    assert status[unreachable]["status"] == "Failed"
    assert "nonexistent" in status[unreachable]["message"]
    assert status[other]["status"] == "Synced"


def test_failed_commit_is_not_rebuilt_on_every_poll(lab: docker.APIClient, swarmops: Swarmops,
                                                    repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("good", web_app("v1"))
    app = swarmops.add_app(swarmops.name("nofail"), repo.url)
    swarmops.run("sync", app)
    repo.commit("bad", {"web/Dockerfile": f"FROM {BASE_IMAGE}\nRUN exit 1\n"})
    swarmops.run("daemon", "--once", check=False)
    out = swarmops.run("daemon", "--once", check=False).stdout
    assert f"{app}: skipped" in out and "failed before" in out
    assert len(swarmops.json("history", app)) == 2
    fixed = repo.commit("fix", {"web/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\n"
                                                  "CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; "
                                                  "do sleep 1; done\"]\n"})
    swarmops.run("daemon", "--once")
    assert stack_image(services(lab, app)["web"]).endswith(f":{fixed[:12]}")


def test_a_commit_whose_container_crashes_is_rolled_back(lab: docker.APIClient, swarmops: Swarmops,
                                                        repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    good = repo.commit("good", web_app("v1"))
    app = swarmops.add_app(swarmops.name("crash"), repo.url, failure_threshold=2, deploy_timeout="60s")
    swarmops.run("sync", app)
    bad = repo.commit("crash", {"web/Dockerfile": f"FROM {BASE_IMAGE}\nCMD [\"sh\", \"-c\", \"exit 7\"]\n"})
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0
    last = swarmops.json("history", app)[0]
    assert (last["commit_sha"], last["result"], last["rollback_to"]) == (bad, "failed", good)
    assert "exit" in last["error"] and f"rolled back to {good[:12]}" in last["error"]
    assert stack_image(services(lab, app)["web"]).endswith(f":{good[:12]}")
    assert len(running_tasks(lab, app, "web")) == 1


def test_unknown_app_and_bad_config_are_one_line_errors(swarmops: Swarmops) -> None:
    swarmops.write()
    res = swarmops.run("sync", "nope", check=False)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no app named 'nope'" in res.stderr
    swarmops.config.write_text(swarmops.config.read_text().replace('"settle"', '"setle"'))
    res = swarmops.run("status", check=False)
    assert res.returncode == 2 and "unknown key 'setle'" in res.stderr and "Traceback" not in res.stderr

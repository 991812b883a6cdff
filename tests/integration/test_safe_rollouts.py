"""Issue 3: deploys that break undo themselves, hand-made changes do not survive, the operator has
rollback, pause, resume, dry-run and diff."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import docker

from tests.integration.conftest import (
    BASE_IMAGE,
    MANAGER,
    SERVE,
    GitRepo,
    Swarmops,
    running_tasks,
    services,
    stack_image,
    wait_for,
    web_app,
)

WORKER = f"""FROM {BASE_IMAGE}
CMD ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def docker_cli(*args: str) -> None:
    subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": MANAGER}, check=True, capture_output=True)


def deployed(swarmops: Swarmops, repo_factory: Any, base: str, **keys: Any) -> tuple[GitRepo, str, str]:
    repo: GitRepo = repo_factory()
    good = repo.commit("good", web_app("v1"))
    app = swarmops.add_app(swarmops.name(base), repo.url, **keys)
    swarmops.run("sync", app)
    return repo, app, good


def assert_rolled_back(lab: docker.APIClient, swarmops: Swarmops, app: str, bad: str, good: str) -> dict[str, Any]:
    last: dict[str, Any] = swarmops.json("history", app)[0]
    assert (last["commit_sha"], last["result"], last["rollback_to"]) == (bad, "failed", good)
    assert f"rolled back to {good[:12]}" in last["error"]
    assert stack_image(services(lab, app)["web"]).endswith(f":{good[:12]}")
    assert len(running_tasks(lab, app, "web")) == 1
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Failed" and bad[:12] not in (status["commit"] or "")
    return last


def test_a_commit_whose_healthcheck_never_passes_is_rolled_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo, app, good = deployed(swarmops, repo_factory, "unhealthy", failure_threshold=2)
    stack = web_app()["stack.yml"] or ""
    bad = repo.commit("healthcheck that fails", {"stack.yml": stack.replace(
        "    build: ./web\n", "    build: ./web\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n"
        "      interval: 1s\n      retries: 1\n      timeout: 1s\n")})
    assert swarmops.run("sync", app, check=False).returncode != 0
    last = assert_rolled_back(lab, swarmops, app, bad, good)
    assert "healthcheck failed" in last["error"]


def test_a_failed_commit_is_rolled_back_even_when_the_rendered_stacks_are_gone(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    """As after a failover: the rendered stacks stayed on the lost manager's disk."""
    repo, app, good = deployed(swarmops, repo_factory, "rerender", failure_threshold=2)
    shutil.rmtree(swarmops.state_dir / "deploys")
    stack = web_app()["stack.yml"] or ""
    bad = repo.commit("healthcheck that fails", {"stack.yml": stack.replace(
        "    build: ./web\n", "    build: ./web\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n"
        "      interval: 1s\n      retries: 1\n      timeout: 1s\n")})
    assert swarmops.run("sync", app, check=False).returncode != 0
    assert_rolled_back(lab, swarmops, app, bad, good)
    assert (swarmops.state_dir / "deploys" / app / good[:12] / "stack.yml").is_file()   # rendered again


def test_a_commit_asking_for_a_role_no_node_has_fails_with_dockers_words_and_is_rolled_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo, app, good = deployed(swarmops, repo_factory, "norole", allowed_roles=["nowhere"], deploy_timeout="12s")
    stack = web_app()["stack.yml"] or ""
    bad = repo.commit("nowhere", {"stack.yml": stack.replace(
        "      replicas: 1\n",
        "      replicas: 1\n      placement:\n        constraints: [node.labels.role == nowhere]\n")})
    assert swarmops.run("sync", app, check=False).returncode != 0
    last = assert_rolled_back(lab, swarmops, app, bad, good)
    assert "no suitable node" in last["error"]


def test_hand_scaling_is_healed_within_one_reconcile(lab: docker.APIClient, swarmops: Swarmops,
                                                     repo_factory: Any) -> None:
    _, app, good = deployed(swarmops, repo_factory, "heal")
    docker_cli("service", "scale", "--detach", f"{app}_web=3")
    out = swarmops.run("daemon", "--once").stdout
    assert f"{app}: healed" in out and "replicas 1 -> 3" in out
    assert services(lab, app)["web"]["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
    history = swarmops.json("history", app)
    assert (history[0]["trigger"], history[0]["result"], history[0]["commit_sha"]) == ("self-heal", "succeeded", good)


def test_without_self_heal_a_hand_change_is_only_reported(lab: docker.APIClient, swarmops: Swarmops,
                                                          repo_factory: Any) -> None:
    _, app, _ = deployed(swarmops, repo_factory, "noheal", self_heal=False)
    docker_cli("service", "update", "--detach", "--env-add", "HAND=made", f"{app}_web")
    out = swarmops.run("daemon", "--once").stdout
    assert f"{app}: drift" in out and "env.HAND" in out
    env = services(lab, app)["web"]["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
    assert "HAND=made" in env
    for _ in range(40):   # Degraded while Swarm replaces the task for the hand-made update
        status = {s["app"]: s for s in swarmops.json("status")}[app]
        if status["status"] != "Degraded":
            break
        time.sleep(0.5)
    assert status["status"] == "OutOfSync" and "env.HAND" in status["message"]


def test_a_service_deleted_from_the_stack_file_disappears(lab: docker.APIClient, swarmops: Swarmops,
                                                          repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    files = web_app()
    files["worker/Dockerfile"] = WORKER
    files["stack.yml"] = (files["stack.yml"] or "") + "  worker:\n    build: ./worker\n    stop_grace_period: 1s\n"
    repo.commit("two services", files)
    app = swarmops.add_app(swarmops.name("prune"), repo.url)
    swarmops.run("sync", app)
    assert set(services(lab, app)) == {"web", "worker"}
    repo.commit("drop the worker", {"stack.yml": web_app()["stack.yml"], "worker/Dockerfile": None})
    swarmops.run("sync", app)
    assert set(services(lab, app)) == {"web"}


def test_rollback_pause_resume_and_dry_run_do_what_they_say(lab: docker.APIClient, swarmops: Swarmops,
                                                            repo_factory: Any) -> None:
    repo, app, first = deployed(swarmops, repo_factory, "manual")
    second = repo.commit("v2", {"web/index.html": "v2\n"})
    swarmops.run("sync", app)
    out = swarmops.run("rollback", app, "--to", first[:8]).stdout
    assert "rolled_back" in out and "suspended" in out
    assert stack_image(services(lab, app)["web"]).endswith(f":{first[:12]}")
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Suspended"
    assert f"{app}: skipped" in swarmops.run("daemon", "--once").stdout   # paused: git is not applied
    assert stack_image(services(lab, app)["web"]).endswith(f":{first[:12]}")

    third = repo.commit("v3", {"web/index.html": "v3\n"})
    plan = swarmops.json("sync", app, "--dry-run")
    assert plan["result"] == "planned" and plan["plan"]["builds"][0]["service"] == "web"
    assert stack_image(services(lab, app)["web"]).endswith(f":{first[:12]}")   # dry run changed nothing

    swarmops.run("pause", app)
    swarmops.run("resume", app)
    swarmops.run("daemon", "--once")
    assert stack_image(services(lab, app)["web"]).endswith(f":{third[:12]}")
    triggers = [(d["commit_sha"], d["trigger"]) for d in swarmops.json("history", app)]
    assert triggers[:3] == [(third, "poll"), (first, "rollback"), (second, "manual")]


def test_diff_shows_a_changed_env_var_and_replica_count(lab: docker.APIClient, swarmops: Swarmops,
                                                        repo_factory: Any) -> None:
    repo, app, _ = deployed(swarmops, repo_factory, "diff")
    stack = web_app()["stack.yml"] or ""
    repo.commit("scale and configure", {"stack.yml": stack.replace("replicas: 1", "replicas: 2").replace(
        "    build: ./web\n", "    build: ./web\n    environment:\n      LEVEL: debug\n")})
    data = swarmops.json("diff", app)
    [web] = data["services"]
    assert web["action"] == "update"
    fields = {f["field"]: (f["git"], f["live"]) for f in web["fields"]}
    assert fields == {"env.LEVEL": ("debug", None), "replicas": (2, 1)}
    text = swarmops.run("diff", app).stdout
    assert "env.LEVEL: git 'debug'  live None" in text and "replicas: git 2  live 1" in text


# beside the other tests: its daemon prunes only what its own history deployed, never their stacks (it
# once removed them right after their stack deploy, "service not created yet", and had to run alone)
def test_an_app_removed_from_the_config_is_reported_and_pruned_only_when_asked(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    _, app, _ = deployed(swarmops, repo_factory, "removed")
    entry = swarmops.apps.pop()
    swarmops.write()
    res = swarmops.run("daemon", "--once")
    assert f"app {app} runs in the cluster but is no longer in the config" in res.stdout
    assert "web" in services(lab, app)
    status = {s["app"]: s for s in swarmops.json("status")}
    assert status[app]["status"] == "Removed"
    swarmops.extra["prune_removed_apps"] = True
    swarmops.write()
    swarmops.run("daemon", "--once")
    for _ in range(60):
        if not services(lab, app):
            break
        time.sleep(0.5)
    assert services(lab, app) == {}
    swarmops.apps.append(entry)   # so that the fixture cleans up anything left


def test_sync_heals_hand_scaling_as_a_manual_heal_and_its_dry_run_changes_nothing(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    _, app, good = deployed(swarmops, repo_factory, "syncheal")
    docker_cli("service", "scale", "--detach", f"{app}_web=3")
    version = services(lab, app)["web"]["Version"]["Index"]
    dry = swarmops.run("sync", app, "--dry-run").stdout
    assert "replicas 1 -> 3" in dry and services(lab, app)["web"]["Version"]["Index"] == version
    out = swarmops.run("sync", app).stdout
    assert f"{app}: healed" in out and "replicas 1 -> 3" in out
    assert services(lab, app)["web"]["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
    history = swarmops.json("history", app)
    assert (history[0]["trigger"], history[0]["result"], history[0]["commit_sha"]) == ("manual", "succeeded", good)


def test_a_dry_run_after_a_sigkill_mid_deploy_changes_nothing_and_names_the_pending_resolution(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo, app, good = deployed(swarmops, repo_factory, "orphan")
    version = services(lab, app)["web"]["Version"]["Index"]
    slow = f"FROM {BASE_IMAGE}\nRUN echo {uuid.uuid4()} && sleep 8\nCOPY index.html /www/index.html\n{SERVE}\n"
    second = repo.commit("slow build", {"web/Dockerfile": slow, "web/index.html": "v2\n"})
    log = tmp_path / "sync.log"
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "sync", app],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: ": building web" in log.read_text(), 90, "the build to start", log)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    [entry] = [d for d in swarmops.json("history", app) if d["commit_sha"] == second]
    assert entry["result"] == "running"                           # as the killed process left it
    dry = swarmops.run("sync", app, "--dry-run").stdout
    assert f"would resolve interrupted deploy {entry['id']} first" in dry
    assert services(lab, app)["web"]["Version"]["Index"] == version
    assert [d["result"] for d in swarmops.json("history", app) if d["commit_sha"] == second] == ["running"]
    swarmops.run("sync", app)                                     # resolves it, then deploys the commit
    assert stack_image(services(lab, app)["web"]).endswith(f":{second[:12]}")
    assert [d["result"] for d in swarmops.json("history", app) if d["commit_sha"] == second] == [
        "succeeded", "interrupted"]
    assert swarmops.json("history", app)[-1]["commit_sha"] == good

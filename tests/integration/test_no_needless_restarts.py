"""Issue 8: a commit touches only what it changed."""

from __future__ import annotations

from typing import Any

import docker

from tests.integration.conftest import BASE_IMAGE, SERVE, GitRepo, Swarmops, running_tasks, services, stack_image


def two_services() -> dict[str, str | None]:
    files: dict[str, str | None] = {"docs/USAGE.md": "# Usage\n", "docs/DATABASE.md": "# Tables\n"}
    for name in ("api", "ui"):
        files[f"{name}/Dockerfile"] = f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\n{SERVE}\n"
        files[f"{name}/index.html"] = f"{name} v1\n"
    files["stack.yml"] = """version: "3.8"
services:
  api:
    build: ./api
    stop_grace_period: 1s
    deploy: {update_config: {monitor: 1s}}
  ui:
    build: ./ui
    stop_grace_period: 1s
    environment: [MODE=prod]
    deploy: {update_config: {monitor: 1s}}
"""
    return files


def task_ids(lab: docker.APIClient, app: str) -> dict[str, set[str]]:
    return {svc: {t["ID"] for t in running_tasks(lab, app, svc)} for svc in ("api", "ui")}


def images(lab: docker.APIClient, app: str) -> dict[str, str]:
    return {name: stack_image(svc) for name, svc in services(lab, app).items()}


def deploy_two(swarmops: Swarmops, repo_factory: Any, base: str) -> tuple[GitRepo, str, str]:
    repo: GitRepo = repo_factory()
    first = repo.commit("init", two_services())
    app = swarmops.add_app(swarmops.name(base), repo.url)
    swarmops.run("sync", app)
    return repo, app, first


def test_docs_only_commit_keeps_every_task_and_image(lab: docker.APIClient, swarmops: Swarmops,
                                                     repo_factory: Any) -> None:
    repo, app, _ = deploy_two(swarmops, repo_factory, "docs")
    before_tasks, before_images = task_ids(lab, app), images(lab, app)
    docs = repo.commit("typo in the usage docs", {"docs/USAGE.md": "# Usage\nFixed.\n"})
    swarmops.run("sync", app)
    assert task_ids(lab, app) == before_tasks
    assert images(lab, app) == before_images
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert (status["status"], status["commit"]) == ("Synced", docs)
    history = swarmops.json("history", app)
    assert history[0]["commit_sha"] == docs and history[0]["builds"] == "" and history[0]["restarted"] == ""


def test_commit_to_one_service_restarts_only_that_service(lab: docker.APIClient, swarmops: Swarmops,
                                                          repo_factory: Any) -> None:
    repo, app, first = deploy_two(swarmops, repo_factory, "onesvc")
    before = task_ids(lab, app)
    second = repo.commit("new api", {"api/index.html": "api v2\n"})
    swarmops.run("sync", app)
    after = task_ids(lab, app)
    assert after["ui"] == before["ui"]
    assert after["api"].isdisjoint(before["api"])
    imgs = images(lab, app)
    assert imgs["api"].endswith(f":{second[:12]}") and imgs["ui"].endswith(f":{first[:12]}")
    assert swarmops.json("history", app)[0]["restarted"] == "api"


def test_stack_only_change_updates_only_the_changed_service_and_dry_run_says_so(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo, app, _ = deploy_two(swarmops, repo_factory, "stackonly")
    before = task_ids(lab, app)
    repo.commit("ui env", {"stack.yml": two_services()["stack.yml"].replace("MODE=prod", "MODE=debug")})  # type: ignore[union-attr]
    plan = swarmops.json("sync", app, "--dry-run")["plan"]
    assert {c["service"]: c["action"] for c in plan["changes"]} == {"api": "relabel", "ui": "update"}
    assert plan["builds"] == []
    assert task_ids(lab, app) == before   # dry run deployed nothing
    swarmops.run("sync", app)
    after = task_ids(lab, app)
    assert after["api"] == before["api"] and after["ui"].isdisjoint(before["ui"])


def test_fingerprints_survive_a_lost_state_database(lab: docker.APIClient, swarmops: Swarmops,
                                                    repo_factory: Any) -> None:
    repo, app, _ = deploy_two(swarmops, repo_factory, "lostdb")
    before_tasks, before_images = task_ids(lab, app), images(lab, app)
    for f in swarmops.state_dir.glob("state.db*"):
        f.unlink()
    out = swarmops.run("daemon", "--once").stdout
    assert f"{app}: noop" in out
    docs = repo.commit("docs", {"docs/DATABASE.md": "# Tables\nusers\n"})
    for f in swarmops.state_dir.glob("state.db*"):
        f.unlink()
    for image in before_images.values():   # "already in the registry" is asked of the registry, not the cache
        lab.remove_image(image, force=True)
    swarmops.run("sync", app)
    assert task_ids(lab, app) == before_tasks and images(lab, app) == before_images
    assert swarmops.json("history", app)[0]["builds"] == ""
    assert {s["app"]: s for s in swarmops.json("status")}[app]["commit"] == docs

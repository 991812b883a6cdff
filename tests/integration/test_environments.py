"""Issue 27, items 1 and 2, on the lab: one apps.d entry with two environments, staging following `main` and
production following tags `v*` with require_staging, each its own stack. A commit to main deploys staging
only; `swarmops promote` tags what staging runs and production deploys it; a commit that failed on staging
is not deployed to production even when tagged straight away; status and history name each environment."""

from __future__ import annotations

from typing import Any

import docker

from tests.integration.conftest import GitRepo, Swarmops, commit_of, web_app


def test_a_commit_to_main_deploys_staging_only_promote_moves_production_and_a_failed_commit_stays_out(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("v1", web_app("v1"))
    repo.tag(first, "v1.0.0")
    app = swarmops.name("env")
    staging = f"{app}-staging"
    swarmops.add_app(app, repo.url, deploy_timeout="60s", environments={
        "staging": {"branch": "main", "variables": {"TIER": "staging"}},
        "production": {"name": app, "tags": "v*", "require_staging": True}})
    swarmops.run("sync", f"{app}/staging")
    swarmops.run("sync", f"{app}/production")
    assert commit_of(lab, staging) == first and commit_of(lab, app) == first

    second = repo.commit("v2 on main", {"web/index.html": "v2\n"})
    swarmops.run("daemon", "--once")
    assert commit_of(lab, staging) == second and commit_of(lab, app) == first   # staging only

    status = {s["app"]: s for s in swarmops.json("status")}
    assert (status[staging]["group"], status[staging]["environment"]) == (app, "staging")
    assert (status[app]["group"], status[app]["environment"]) == (app, "production")
    assert status[staging]["commit"] == second and status[app]["commit"] == first
    table = swarmops.run("status").stdout
    assert f"{app}/staging" in table and f"{app}/production" in table, table

    promoted = swarmops.run("promote", app, "--from", "staging", "--to", "production")
    assert f"tag v1.0.1 made at {second[:12]}" in promoted.stderr, promoted
    assert repo._git("ls-remote", str(repo.bare), "refs/tags/v1.0.1").split()[0] == second
    assert commit_of(lab, app) == second
    assert [e["commit_sha"] for e in swarmops.json("history", f"{app}/production")][:2] == [second, first]

    # a commit that fails on staging (its tasks exit at once): rolled back there, never run by production
    broken = repo.commit("v3 that does not start", {"stack.yml": str(web_app()["stack.yml"]).replace(
        "    build: ./web\n", "    build: ./web\n    command: [\"sh\", \"-c\", \"exit 1\"]\n")})
    assert swarmops.run("sync", f"{app}/staging", check=False).returncode != 0
    assert commit_of(lab, staging) == second
    again = swarmops.run("promote", app, check=False)   # what staging runs is still v2: nothing new
    assert again.returncode == 0 and commit_of(lab, app) == second, again
    repo.tag(broken, "v9.0.0")   # tagged straight away, past promote
    refused = swarmops.run("sync", f"{app}/production", check=False)
    assert refused.returncode != 0 and f"{app} deploys only commits {staging} has run successfully" in refused.stdout
    assert commit_of(lab, app) == second
    assert {s["app"]: s for s in swarmops.json("status")}[app]["status"] == "Failed"

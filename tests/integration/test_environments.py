"""Issue 27, item 1 (first slice), on the lab: one apps.d entry with two environments, staging following
`main` and production following `production`, each its own stack. A commit to main deploys staging only;
production moves when its branch does; status and history name each environment."""

from __future__ import annotations

from typing import Any

import docker

from tests.integration.conftest import GitRepo, Swarmops, commit_of, web_app


def test_a_commit_to_main_deploys_staging_only_and_production_moves_with_its_own_branch(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    first = repo.commit("v1", web_app("v1"))
    repo.push(first, "production")
    app = swarmops.name("env")
    staging = f"{app}-staging"
    swarmops.add_app(app, repo.url, environments={"staging": {"branch": "main", "variables": {"TIER": "staging"}},
                                                  "production": {"name": app, "branch": "production"}})
    out = swarmops.run("daemon", "--once").stdout
    assert f"{staging}: deployed" in out and f"{app}: deployed" in out, out
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

    repo.push(second, "production")   # the release: production's branch moves to what staging ran
    swarmops.run("sync", f"{app}/production")
    assert commit_of(lab, app) == second
    assert [e["commit_sha"] for e in swarmops.json("history", f"{app}/production")][:2] == [second, first]
    assert [e["commit_sha"] for e in swarmops.json("history", f"{app}/staging")][:2] == [second, first]

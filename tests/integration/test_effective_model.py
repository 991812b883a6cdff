"""Issue 18 on the lab: variables come from the app entry and the repo's .env (never the daemon's
environment), reach the live service spec as the model resolved them, and a missing one leaves the
running version with the variable's name in the status."""

from __future__ import annotations

from typing import Any

import docker

from tests.integration.conftest import GitRepo, Swarmops, services, stack_image, web_app

EXTRA = """    environment:
      GREETING: "${GREETING}"
      LEVEL: "${LEVEL:-1}"
      LITERAL: "cost: $$5"
      HOME_OF_DAEMON: "${HOME:-unset}"
    labels:
      host: "web.${SWARMOPS_DOMAIN}"
"""


def env_of(svc: dict[str, Any]) -> set[str]:
    return set(svc["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or [])


def test_declared_variables_reach_the_live_spec_and_a_missing_one_keeps_the_running_version(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    repo: GitRepo = repo_factory()
    files = web_app("v1", extra=EXTRA)
    files[".env"] = "GREETING=from-dotenv\nLEVEL=2\n"
    first = repo.commit("init", files)
    swarmops.extra["domain"] = "example.go.id"
    app = swarmops.add_app(swarmops.name("vars"), repo.url, variables={"LEVEL": "3"})

    rendered = swarmops.run("render", app).stdout
    assert 'LITERAL: "cost: $$5"' in rendered and 'LEVEL: "3"' in rendered and "${" not in rendered

    swarmops.run("sync", app)
    web = services(lab, app)["web"]
    assert {"GREETING=from-dotenv", "LEVEL=3", "LITERAL=cost: $5", "HOME_OF_DAEMON=unset"} <= env_of(web)
    assert web["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]["host"] == "web.example.go.id"

    stack = files["stack.yml"] or ""
    repo.commit("needs a variable nobody set", {"stack.yml": stack.replace("${GREETING}", "${MISSING_VAR}")})
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Failed" and "variable MISSING_VAR is not set" in status["message"]
    assert "stack.yml:" in status["message"]
    web = services(lab, app)["web"]
    assert stack_image(web).endswith(f":{first[:12]}") and "GREETING=from-dotenv" in env_of(web)

"""Issue 18 on the lab: variables come from the app entry and the repo's .env (never the daemon's
environment), reach the live service spec as the model resolved them, and a missing one leaves the
running version with the variable's name in the status."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docker
import yaml
from ruamel.yaml import YAML

from tests.integration.conftest import BASE_IMAGE, GitRepo, Swarmops, services, stack_image, web_app

CORPUS = Path(__file__).resolve().parents[1] / "unit" / "data" / "public-stacks"

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


# Public stack files whose render is deployed here: their images and commands stood in by the lab's busybox
# (nothing can be pulled), ports, binds, healthchecks and placement of their own taken out (the lab has no
# such nodes and other tests use the ports); versions 3.0, 3.1, "3", 3.3 and 3.9, secrets and configs from files.
DEPLOYED = ["voter-aws-v30", "udemy-secrets-sample", "voting-app-v3", "docker-elk", "voting-app"]
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def stood_in(text: str) -> str:
    """The stack with every service's image the lab's base image; anchors and merge keys kept as written."""
    rt = YAML(typ="rt")
    doc = rt.load(text)
    for svc in doc["services"].values():
        svc["image"] = BASE_IMAGE
        svc["command"] = SLEEP
        for key in ("entrypoint", "healthcheck", "ports", "build", "depends_on"):
            svc.pop(key, None)
        svc["volumes"] = [v for v in svc.get("volumes") or [] if not str(v.get("source") if isinstance(v, dict)
                                                                             else v).startswith("/")]
        svc["stop_grace_period"] = "1s"
        deploy = svc.setdefault("deploy", {})
        deploy.pop("placement", None)
        deploy.pop("resources", None)
        if deploy.get("mode") != "global":
            deploy["replicas"] = 1
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def test_renders_of_public_stacks_deploy_and_their_files_reach_the_tasks(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any) -> None:
    apps = {}
    for name in DEPLOYED:
        fixture = CORPUS / name
        repo: GitRepo = repo_factory()
        files: dict[str, str | None] = {str(p.relative_to(fixture)): p.read_text() for p in fixture.rglob("*")
                                        if p.is_file() and p.name not in ("vars.env", "expect.txt")}
        files["stack.yml"] = stood_in(files["stack.yml"] or "")
        repo.commit("public stack", files)
        variables = dict(line.split("=", 1) for line in (fixture / "vars.env").read_text().splitlines() if line)
        apps[name] = swarmops.add_app(swarmops.name(f"pub-{name}"[:40]), repo.url, variables=variables,
                                      policy={"profile": "privileged"})
    swarmops.run("daemon", "--once")
    for name, app in apps.items():
        live = services(lab, app)
        assert set(live) == set(yaml_services(CORPUS / name)), name
        for svc in live.values():
            spec = svc["Spec"]["TaskTemplate"]["ContainerSpec"]
            for ref in spec.get("Secrets") or []:
                assert ref["SecretName"].startswith(f"{app}_") and ref["File"]["Name"], (name, ref)
            for ref in spec.get("Configs") or []:
                assert ref["ConfigName"].startswith(f"{app}_") and ref["File"]["Name"].startswith("/"), (name, ref)
    elk = services(lab, apps["docker-elk"])["logstash"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert {c["File"]["Name"] for c in elk["Configs"]} == {"/usr/share/logstash/config/logstash.yml",
                                                           "/usr/share/logstash/pipeline/logstash.conf"}
    udemy = services(lab, apps["udemy-secrets-sample"])["psql"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert {s["File"]["Name"] for s in udemy["Secrets"]} == {"psql_user", "psql_password"}


def yaml_services(fixture: Path) -> list[str]:
    return list(yaml.safe_load((fixture / "stack.yml").read_text())["services"])

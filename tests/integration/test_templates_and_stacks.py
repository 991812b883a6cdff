"""Issue 5 on the lab: infrastructure stacks land on their nodes; `swarmops new` makes a repo the daemon
deploys; the static template answers HTTP through the proxy stack. No image can be pulled here: PostgreSQL
is built for real from Debian's packages (lab/base-images postgres); the other infrastructure images are
stand-ins pushed under the real names (lab/stand-ins says what each is)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    ROOT,
    GitRepo,
    Swarmops,
    lab_images,
    ops_stacks,
    remove_stack,
    run_lab_script,
    running_tasks,
)

ROLES = {"proxy": "app", "registry": "registry", "minio": "minio", "mysql": "db", "postgres": "db", "awdi": "awdi"}


@pytest.fixture(scope="module")
def stand_ins(lab: docker.APIClient) -> None:
    run_lab_script(ROOT / "lab" / "stand-ins")
    lab_images("postgres")   # the postgres stack is built for real from Debian's packages


def ops_repo(repo: GitRepo, state_dir: Path) -> GitRepo:
    """This project's stacks/ as the ops team's repo, with stand-in secrets encrypted for the lab daemon."""
    ops_stacks(repo, state_dir, sorted(ROLES), {
        "minio": {"minio_root_user": b"stand-in-user", "minio_root_password": b"stand-in-value"},
        "mysql": {"mysql_root_password": b"stand-in-value"},
        "registry": {"registry_htpasswd": b"stand-in:$2y$05$stand.in.hash"},
        "postgres": {"postgres_password": b"stand-in-value", "polise_db_password": b"stand-in-value"}})
    registry = repo.work / "stacks" / "registry" / "stack.yml"   # the lab's own registry holds 5000 there
    registry.write_text(registry.read_text().replace("published: 5000", "published: 5002"))
    repo.commit("infrastructure stacks", {})
    return repo


def infra_app(swarmops: Swarmops, repo: GitRepo, stack: str, name: str | None = None) -> str:
    return swarmops.add_app(name or swarmops.name(stack), repo.url, stack=f"stacks/{stack}/stack.yml",
                            role=ROLES[stack], policy={"profile": "privileged"}, deploy_timeout="60s")


def role_of(lab: docker.APIClient, node_id: str) -> str:
    return str((lab.inspect_node(node_id)["Spec"].get("Labels") or {}).get("role"))


def test_every_infrastructure_stack_lands_on_the_node_of_its_role(
        lab: docker.APIClient, stand_ins: None, swarmops: Swarmops, repo_factory: Any) -> None:
    swarmops.write()
    swarmops.run("keygen")
    repo = ops_repo(repo_factory(), swarmops.state_dir)
    apps = {stack: infra_app(swarmops, repo, stack) for stack in ROLES}
    swarmops.run("sync", apps["proxy"])   # awdi joins the proxy's network
    out = swarmops.run("daemon", "--once").stdout
    for stack, app in apps.items():
        assert f"{app}: {'noop' if stack == 'proxy' else 'deployed'}" in out
        found = lab.services(filters={"label": f"com.docker.stack.namespace={app}"})
        assert found, stack
        for svc in found:
            short = svc["Spec"]["Name"].removeprefix(f"{app}_")
            tasks = running_tasks(lab, app, short)
            assert tasks and {role_of(lab, t["NodeID"]) for t in tasks} == {ROLES[stack]}, (stack, short)
    app_nodes = [n for n in lab.nodes() if (n["Spec"].get("Labels") or {}).get("role") == "app"]
    assert len(running_tasks(lab, apps["proxy"], "traefik")) == len(app_nodes)   # global on every app node


def http_get(url: str, host: str) -> str:
    req = urllib.request.Request(url, headers={"Host": host})
    with urllib.request.urlopen(req, timeout=3) as resp:
        return str(resp.read().decode())


def test_new_static_app_is_deployed_and_answers_through_the_proxy(
        lab: docker.APIClient, stand_ins: None, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    swarmops.extra["apps_dir"] = str(tmp_path / "apps.d")
    swarmops.write()
    swarmops.run("keygen")
    proxy = infra_app(swarmops, ops_repo(repo_factory(), swarmops.state_dir), "proxy")
    remote = tmp_path / "portal.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    app = swarmops.name("portal")
    out = swarmops.run("new", app, "--template", "static", "--remote", f"file://{remote}",
                       "--set", "domain=apps.example.go.id", "--set", "replicas=1").stdout
    assert f"{app}: first commit" in out and (tmp_path / "apps.d" / f"{app}.yml").is_file()
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=remote, capture_output=True, text=True).stdout
    assert log.strip() == f"New static app {app} from the swarmops template"
    refused = swarmops.run("new", swarmops.name("again"), "--template", "static", "--remote", f"file://{remote}",
                           check=False)
    assert refused.returncode != 0 and "not empty" in refused.stderr
    try:
        swarmops.run("sync", proxy)   # its network must exist before an app joins it
        daemon = swarmops.run("daemon", "--once").stdout
        assert f"{proxy}: noop" in daemon and f"{app}: deployed" in daemon
        app2 = next(n for n in lab.nodes() if n["Description"]["Hostname"] == "app2")["Status"]["Addr"]
        body = ""
        for _ in range(40):
            try:
                body = http_get(f"http://{app2}:80/", f"{app}.apps.example.go.id")
                break
            except OSError:
                time.sleep(0.5)
        assert f"<title>{app}</title>" in body
    finally:
        remove_stack(lab, app)

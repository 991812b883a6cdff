"""Issue 22 on the lab: each template made with a database, and the python one with a bucket, reaches the
real servers from its own code, through the real Traefik: PostgreSQL 15 (stacks/postgres), MariaDB 10.11
(stacks/mysql) and the S3 server of stacks/minio, which on the lab is SeaweedFS started from MinIO's
settings (a stand-in for MinIO, named as one in stacks/minio/README.md). The stacks get names, networks and
ports of this run's own, as in test_polise, so that other tests' stacks do not clash with them."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
from ruamel.yaml import YAML

from swarmops.adapters import age as age_secrets
from tests.integration.conftest import (
    MANAGER,
    GitRepo,
    Swarmops,
    free_node_port,
    lab_images,
    lab_tls,
    ops_stacks,
    running_tasks,
    wait_for,
)
from tests.integration.test_templates_and_stacks import http_get, status_of


@pytest.fixture(scope="module")
def images(lab: docker.APIClient) -> None:
    lab_images("traefik", "haproxy", "postgres", "mariadb", "s3", "python", "php", "node", "golang")


def app_secrets(swarmops: Swarmops, app: str, work: Path) -> dict[str, bytes]:
    """What `swarmops new` put in the app's secrets/, read with the daemon's key as the ops team does on the
    manager to give the same values to the database and S3 stacks."""
    identity = age_secrets.load_identity(swarmops.state_dir)
    found = {}
    for path in sorted((work / "secrets").glob("*.age")):
        plain = age_secrets.decrypt(identity, path.read_bytes(), path.name)
        value, bound = age_secrets.unseal(plain, app, path.stem, path.name)
        assert bound, f"{path.name} is bound to {app}"
        found[path.stem] = value
    return found


def service_log(lab: docker.APIClient, service: str) -> str:
    return b"".join(lab.service_logs(service, stdout=True, stderr=True, tail=40)).decode(errors="replace")


def in_container(lab: docker.APIClient, app: str, command: list[str]) -> str:
    """A command in the app's own task, on its node, with its own secrets."""
    task = running_tasks(lab, app, "web")[0]
    host = lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
    sock = MANAGER if task["NodeID"] == lab.info()["Swarm"]["NodeID"] else f"unix:///run/swarm-lab/{host}.sock"
    node = docker.APIClient(base_url=sock, timeout=60)
    exec_id = node.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], command, stderr=True)
    return str(node.exec_start(exec_id).decode(errors="replace"))


def secret_entries(names: list[str]) -> tuple[str, str]:
    """The `secrets: [...]` items and the top-level definitions of these secrets, as stack text."""
    return (", ".join(names), "".join(f"  {n}:\n    file: secrets/{n}.age\n" for n in names))


# app (under this run's id): template and answers; between them, every template and both databases
APPS = {"py-pg": ("python", ["database=postgres"]), "py-my": ("python", ["database=mysql", "bucket=uploads"]),
        "php-pg": ("php", ["database=postgres"]), "node-my": ("node", ["database=mysql"]),
        "go-pg": ("go", ["database=postgres"]), "go-my": ("go", ["database=mysql"])}


def test_each_template_with_postgres_with_mysql_and_with_a_bucket_reaches_them_from_its_own_code(
        lab: docker.APIClient, images: None, swarmops: Swarmops, tmp_path: Path) -> None:
    rid = swarmops.run_id
    swarmops.extra["apps_dir"] = str(tmp_path / "apps.d")
    swarmops.write()
    swarmops.run("keygen")
    proxy, postgres, mysql, minio = (swarmops.name(n) for n in ("proxy", "postgres", "mysql", "minio"))
    apps = {swarmops.name(short): spec for short, spec in APPS.items()}
    my_app, bucket = swarmops.name("py-my"), "uploads"
    web_port, tls_port = free_node_port(), free_node_port()
    nets = {"proxy": f"proxy-{rid}", "db-postgres": f"db-postgres-{rid}", "db-mysql": f"db-mysql-{rid}",
            "minio": f"minio-{rid}"}
    # this run's names in every stack, the apps' as the ops team's
    names = {**{f"name: {n}\n": f"name: {m}\n" for n, m in nets.items()},
             "--providers.swarm.network=proxy\n": f"--providers.swarm.network={nets['proxy']}\n",
             "traefik.swarm.network=proxy\n": f"traefik.swarm.network={nets['proxy']}\n",
             "traefik.swarm.network: proxy\n": f"traefik.swarm.network: {nets['proxy']}\n",
             "postgres_postgres": f"{postgres}_postgres", "mysql_mysql": f"{mysql}_mysql"}

    values, databases = {}, {"postgres": list[str](), "mysql": list[str]()}
    for app, (template, answers) in apps.items():
        remote = tmp_path / f"{app}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        sets = [a for answer in ["domain=apps.example.go.id", "replicas=1", *answers] for a in ("--set", answer)]
        made = swarmops.run("new", app, "--template", template, "--remote", f"file://{remote}", *sets)
        db = app.replace("-", "_")
        assert f"give the same value to the database stack as {db}_db_password" in made.stderr
        databases[answers[0].removeprefix("database=")].append(db)
        work = tmp_path / app
        subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
        values[app] = app_secrets(swarmops, app, work)
        stack = work / "stack.yml"
        text = stack.read_text()
        for old, new in names.items():
            text = text.replace(old, new)
        stack.write_text(text)
        git = ["git", "-C", str(work), "-c", "user.name=Ops", "-c", "user.email=ops@example.go.id"]
        subprocess.run([*git, "commit", "-qam", "this run's servers"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        entry = Path(swarmops.extra["apps_dir"]) / f"{app}.yml"
        spec = YAML(typ="safe").load(entry.read_text())
        spec["policy"] = {"allowed_external": list(nets.values())}
        entry.write_text(json.dumps(spec))
    assert set(values[my_app]) == {"db_password", "s3_access_key", "s3_secret_key"}

    pg_secrets = secret_entries([f"{db}_db_password" for db in databases["postgres"]])
    my_secrets = secret_entries([f"{db}_db_password" for db in databases["mysql"]])
    s3_secrets = secret_entries([f"{my_app}_s3_access_key", f"{my_app}_s3_secret_key"])
    (tmp_path / "ops").mkdir()
    ops = GitRepo(tmp_path / "ops")
    app_passwords = {f"{a.replace('-', '_')}_db_password": v["db_password"] for a, v in values.items()}
    ops_stacks(ops, swarmops.state_dir, ["proxy", "postgres", "mysql", "minio"], {
        "proxy": lab_tls().secrets,
        "postgres": {"postgres_password": b"pg-root-" + rid.encode(), "polise_db_password": b"unused-here",
                     **{n: v for n, v in app_passwords.items() if n.removesuffix("_db_password") in
                        databases["postgres"]}},
        "mysql": {"mysql_root_password": b"my-root-" + rid.encode(),
                  **{n: v for n, v in app_passwords.items() if n.removesuffix("_db_password") in databases["mysql"]}},
        "minio": {"minio_root_user": b"admin", "minio_root_password": b"s3-root-" + rid.encode(),
                  f"{my_app}_s3_access_key": values[my_app]["s3_access_key"],
                  f"{my_app}_s3_secret_key": values[my_app]["s3_secret_key"]}},
        replace={**names, "published: 80,": f"published: {web_port},", "published: 443,": f"published: {tls_port},",
                 # each server learns the apps' accounts, as the ops team adds them
                 "POSTGRES_APP_DATABASES: polise":
                     f'POSTGRES_APP_DATABASES: "polise {" ".join(databases["postgres"])}"',
                 "secrets: [postgres_password, polise_db_password]":
                     f"secrets: [postgres_password, polise_db_password, {pg_secrets[0]}]",
                 "    file: secrets/polise_db_password.age\n": "    file: secrets/polise_db_password.age\n"
                     + pg_secrets[1],
                 'MYSQL_APP_DATABASES: ""': f'MYSQL_APP_DATABASES: "{" ".join(databases["mysql"])}"',
                 "secrets: [mysql_root_password]": f"secrets: [mysql_root_password, {my_secrets[0]}]",
                 "    file: secrets/mysql_root_password.age\n": "    file: secrets/mysql_root_password.age\n"
                     + my_secrets[1],
                 'S3_APP_ACCOUNTS: ""': f'S3_APP_ACCOUNTS: "{my_app}:{bucket}"',
                 "secrets: [minio_root_user, minio_root_password]":
                     f"secrets: [minio_root_user, minio_root_password, {s3_secrets[0]}]",
                 "    file: secrets/minio_root_password.age\n": "    file: secrets/minio_root_password.age\n"
                     + s3_secrets[1]})
    ops.commit("proxy, databases and S3 for this run", {})
    for name, folder, role in ((proxy, "proxy", "app"), (postgres, "postgres", "db"), (mysql, "mysql", "db"),
                               (minio, "minio", "minio")):
        swarmops.add_app(name, ops.url, stack=f"stacks/{folder}/stack.yml", role=role,
                         policy={"profile": "privileged"}, deploy_timeout="120s")
    with ThreadPoolExecutor(max_workers=4) as pool:   # their networks exist before an app joins them
        list(pool.map(lambda infra: swarmops.run("sync", infra), (proxy, postgres, mysql, minio)))
    out = swarmops.run("daemon", "--once").stdout
    for app in apps:
        assert f"{app}: deployed" in out, (app, out)
        # the template's migration hook made the sample schema, after a snapshot of the empty database
        [entry] = [e for e in swarmops.json("history", app) if e["result"] == "succeeded"]
        assert [(h["name"], h["exit_code"]) for h in json.loads(entry["hooks"])] == [("migrate", 0)], (app, entry)
        assert [s["migrated"] for s in json.loads(entry["snapshots"])] == [True], (app, entry)

    app2 = next(n for n in lab.nodes() if n["Description"]["Hostname"] == "app2")["Status"]["Addr"]
    url = f"http://{app2}:{web_port}/"
    pages = {}
    for app in apps:
        host = f"{app}.apps.example.go.id"
        wait_for(lambda host=host: status_of(url, host) == 200, 60, f"{app} through Traefik",
                 functools.partial(service_log, lab, f"{app}_web"))
        pages[app] = http_get(url, host)
        assert pages[app].startswith(f"Hello from {app}\n"), pages[app]   # the page its own code renders
        kind = "PostgreSQL 15." if "database=postgres" in apps[app][1] else "MySQL-compatible 10.11."
        assert f"database: {kind}" in pages[app], (app, pages[app], service_log(lab, f"{app}_web"))
        for value in values[app].values():
            assert value.decode() not in pages[app]
        health = lab.inspect_service(f"{app}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
        assert health["Test"], app
    py_pg = swarmops.name("py-pg")
    seen = re.search(r"database: PostgreSQL 15\.\d+, (\d+) visit\(s\) recorded", pages[py_pg])
    assert seen, pages[py_pg]
    again = http_get(url, f"{py_pg}.apps.example.go.id")   # each visit is a row kept in the database
    assert f"{int(seen[1]) + 1} visit(s) recorded" in again, again
    assert "MariaDB" in pages[my_app], pages[my_app]
    assert f"bucket: {bucket}: wrote and read back hello.txt" in pages[my_app], (
        pages[my_app], service_log(lab, f"{my_app}_web"), service_log(lab, f"{minio}_minio"))

    # the object is on the S3 server, and the app's keys reach its own bucket only
    s3_task = running_tasks(lab, minio, "minio")[0]
    s3_node = docker.APIClient(base_url="unix:///run/swarm-lab/minio.sock", timeout=60)
    exec_id = s3_node.exec_create(s3_task["Status"]["ContainerStatus"]["ContainerID"],
                                  ["wget", "-q", "-O", "-", f"http://127.0.0.1:8888/buckets/{bucket}/hello.txt"])
    assert s3_node.exec_start(exec_id).decode().startswith("written at ")
    probe = f"""
import boto3, botocore.exceptions, os
key = lambda v: open(os.environ[v]).read().strip()
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id=key("S3_ACCESS_KEY_FILE"), aws_secret_access_key=key("S3_SECRET_KEY_FILE"))
print("buckets", [b["Name"] for b in s3.list_buckets()["Buckets"]])
import socket
for port in (19000, 18333, 8333, 8181, 9101, 9333, 8888, 8080):   # SeaweedFS's own ports: none on the network
    try:
        socket.create_connection(("minio", port), timeout=3).close(); print("port", port, "open")
    except OSError:
        print("port", port, "closed")
for name, call in (("create", lambda: s3.create_bucket(Bucket="other-{rid}")),
                   ("write-elsewhere", lambda: s3.put_object(Bucket="other-{rid}", Key="x", Body=b"x"))):
    try:
        call(); print(name, "allowed")
    except botocore.exceptions.ClientError as e:
        print(name, e.response["Error"]["Code"])
"""
    probed = in_container(lab, my_app, ["python3", "-c", probe])
    assert f"buckets ['{bucket}']" in probed and "create AccessDenied" in probed, probed
    assert "write-elsewhere allowed" not in probed, probed
    assert " open" not in probed, probed   # only the S3 API faces the network (its gRPC port takes identities)

"""Issue 25, item 2, on the lab with the real PostgreSQL (stacks/postgres): a migration hook is preceded by a
snapshot job on the db node, a failing one leaves the previous version serving and the schema unchanged,
and a smoke test failing after a migration stops the rollback with the restore sentence; `swarmops backup
restore` then brings the old rows back."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from swarmops.adapters import age as age_secrets
from tests.integration.conftest import (
    MANAGER,
    REGISTRY,
    GitRepo,
    Prober,
    Swarmops,
    free_node_port,
    lab_images,
    ops_stacks,
    running_tasks,
    served_app,
    services,
    stack_image,
    wait_for,
)

IMAGES = {"postgres": f"{REGISTRY}/base/postgres:15", "mysql": f"{REGISTRY}/base/mariadb:10.11"}
CLIENTS = {   # the database's own client in a hook or service, the password read from the secret's file
    "postgres": 'PGPASSWORD="$$(cat /run/secrets/db_password)" psql -v ON_ERROR_STOP=1 -h "$$DB_HOST" '
                '-U "$$DB_USER" -d "$$DB_NAME"',
    "mysql": 'MYSQL_PWD="$$(cat /run/secrets/db_password)" mariadb -N -B -h "$$DB_HOST" -u "$$DB_USER" "$$DB_NAME"'}


@dataclass(frozen=True)
class Database:
    engine: str     # postgres or mysql: the folder of stacks/ and its service
    stack: str      # the database stack's app name
    name: str       # the app's database, role and DB_NAME
    network: str
    password: bytes
    root: bytes

    @property
    def client(self) -> str:
        return CLIENTS[self.engine]


def _ops_edits(engine: str, db: str, network: str) -> dict[str, str]:
    """The database stack's text under this run's names, with the app's database added as the ops team adds it."""
    if engine == "postgres":
        return {"name: db-postgres\n": f"name: {network}\n",
                "POSTGRES_APP_DATABASES: polise": f'POSTGRES_APP_DATABASES: "polise {db}"',
                "secrets: [postgres_password, polise_db_password]":
                    f"secrets: [postgres_password, polise_db_password, {db}_db_password]",
                "    file: secrets/polise_db_password.age\n":
                    f"    file: secrets/polise_db_password.age\n  {db}_db_password:\n"
                    f"    file: secrets/{db}_db_password.age\n"}
    return {"name: db-mysql\n": f"name: {network}\n",
            'MYSQL_APP_DATABASES: ""': f'MYSQL_APP_DATABASES: "{db}"',
            "secrets: [mysql_root_password]": f"secrets: [mysql_root_password, {db}_db_password]",
            "    file: secrets/mysql_root_password.age\n":
                f"    file: secrets/mysql_root_password.age\n  {db}_db_password:\n"
                f"    file: secrets/{db}_db_password.age\n"}


def deploy_database(lab: docker.APIClient, swarmops: Swarmops, tmp_path: Path, engine: str) -> Database:
    """stacks/postgres or stacks/mysql on the db node under this test's names, with one app database."""
    lab_images("postgres" if engine == "postgres" else "mariadb")
    rid = uuid.uuid4().hex[:6]   # the run id is the session's: a second test would find the first one's data
    swarmops.write()
    swarmops.run("keygen")
    db = Database(engine, swarmops.name(f"{engine[:2]}{rid}"), f"mig_{rid}", f"db-{engine}-{rid}",
                  f"pw-{rid}-x9".encode(), f"root-{rid}".encode())
    root_secret = "postgres_password" if engine == "postgres" else "mysql_root_password"
    (tmp_path / "ops").mkdir()
    ops = GitRepo(tmp_path / "ops")
    ops_stacks(ops, swarmops.state_dir, [engine], {engine: {
        root_secret: db.root, "polise_db_password": b"unused-here", f"{db.name}_db_password": db.password}},
        replace=_ops_edits(engine, db.name, db.network))
    ops.commit(f"{engine} for this run", {})
    swarmops.add_app(db.stack, ops.url, stack=f"stacks/{engine}/stack.yml", role="db",
                     policy={"profile": "privileged"}, deploy_timeout="150s")
    swarmops.run("sync", db.stack)
    return db


def remove_jobs(lab: docker.APIClient, swarmops: Swarmops) -> None:
    for job in lab.services(filters={"label": "io.swarmops.hook"}):   # a failed test may leave a job
        if job["Spec"]["Labels"].get("io.swarmops.app", "") in {a["name"] for a in swarmops.apps}:
            with contextlib.suppress(docker.errors.APIError):
                lab.remove_service(job["ID"])


@pytest.fixture
def postgres(lab: docker.APIClient, swarmops: Swarmops, tmp_path: Path) -> Iterator[Database]:
    yield deploy_database(lab, swarmops, tmp_path, "postgres")
    remove_jobs(lab, swarmops)


@pytest.fixture
def mariadb(lab: docker.APIClient, swarmops: Swarmops, tmp_path: Path) -> Iterator[Database]:
    yield deploy_database(lab, swarmops, tmp_path, "mysql")
    remove_jobs(lab, swarmops)


def in_database_task(lab: docker.APIClient, db: Database, command: list[str]) -> tuple[int, str]:
    """A command run in the database's task itself, on its node: its exit code and output."""
    [task] = running_tasks(lab, db.stack, db.engine)
    host = lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
    sock = MANAGER if task["NodeID"] == lab.info()["Swarm"]["NodeID"] else f"unix:///run/swarm-lab/{host}.sock"
    node = docker.APIClient(base_url=sock, timeout=60)
    exec_id = node.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], command, stderr=True)
    out = str(node.exec_start(exec_id).decode(errors="replace")).strip()
    return int(node.exec_inspect(exec_id)["ExitCode"]), out


def sql(lab: docker.APIClient, db: Database, query: str) -> str:
    """A query run by the database's task itself (postgres: as the superuser)."""
    command = (["psql", "-d", db.name, "-v", "ON_ERROR_STOP=1", "-tAc", query] if db.engine == "postgres" else
               # the app's account: root@localhost is the socket's, for the OS user root only
               ["mariadb", "-h", "127.0.0.1", f"-u{db.name}", f"--password={db.password.decode()}", "-N", "-B",
                db.name, "-e", query])
    return in_database_task(lab, db, command)[1]


def app_files(db: Database, version: str, port: int, migration: str, reads: str,
              smoke: str | None = None) -> dict[str, str | None]:
    """served_app (the prober's web) with a `reader` service that reads `reads` from the database every 2 s
    once it reaches it (and crashes when a read fails), and a migration hook running `migration` in one transaction."""
    wiring = f"""    environment:
      DB_DRIVER: {db.engine}
      DB_HOST: {db.stack}_{db.engine}
      DB_PORT: "{5432 if db.engine == "postgres" else 3306}"
      DB_NAME: {db.name}
      DB_USER: {db.name}
      DB_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    networks: [db]
"""
    pg = db.engine == "postgres"
    flag = "-tAc" if pg else "-e"
    # the database's name may not resolve in the first moments of a task on a node new to its network
    tries = " ".join(map(str, range(30)))   # no `$(seq 30)`: swarmops interpolates a stack's $ (write $$)
    reach = f'for i in {tries}; do {db.client} {flag} "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done'
    read = f'{reach}; while true; do {db.client} {flag} "{reads}" || exit 1; sleep 2; done'
    migrate = f"echo migrating {version}; {db.client} {'--single-transaction -c' if pg else '-e'} \"{migration}\""
    text = str(served_app(version, port)["stack.yml"]) + f"""    networks: [default]
  reader:
    image: {IMAGES[db.engine]}
    command: ["sh", "-c", {json.dumps(read)}]
    stop_grace_period: 1s
{wiring}    deploy:
      update_config: {{monitor: 3s}}
  migrate:
    image: {IMAGES[db.engine]}
    command: ["sh", "-c", {json.dumps(migrate)}]
{wiring}    x-swarmops: {{hook: pre-deploy, migrates: {db.name}, timeout: 2m}}
"""
    if smoke is not None:
        text += f"""  smoke:
    image: {IMAGES[db.engine]}
    command: ["sh", "-c", {json.dumps(smoke)}]
    networks: [db]
    x-swarmops: {{hook: post-deploy, timeout: 1m}}
"""
    text += f"""networks:
  default: {{}}
  db: {{external: true, name: {db.network}}}
secrets:
  db_password: {{file: secrets/db_password.age}}
"""
    return {**served_app(version, port), "stack.yml": text}


def seal_password(swarmops: Swarmops, repo: GitRepo, app: str, db: Database) -> None:
    """The app's db_password, the value the database stack holds, as `swarmops secret encrypt` writes it."""
    public = age_secrets.parse_recipient((swarmops.state_dir / age_secrets.PUB_FILE).read_text(), "lab key")
    (repo.work / "secrets").mkdir()
    (repo.work / "secrets" / "db_password.age").write_bytes(
        age_secrets.encrypt(public, age_secrets.seal(app, "db_password", db.password)))


def history(swarmops: Swarmops, app: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = swarmops.json("history", app)
    return entries


def reader_log(lab: docker.APIClient, app: str) -> str:
    return b"".join(lab.service_logs(f"{app}_reader", stdout=True, stderr=True, tail=20)).decode(errors="replace")


def test_a_migration_is_snapshotted_first_and_a_failing_one_leaves_the_previous_version_and_schema(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, postgres: Database) -> None:
    db, port = postgres, free_node_port()
    repo: GitRepo = repo_factory()
    app = swarmops.name("migr")
    seal_password(swarmops, repo, app, db)
    repo.commit("v1: people", app_files(db, "v1", port, "CREATE TABLE people (name text); "
                                        "INSERT INTO people VALUES ('ana')", "SELECT name FROM people"))
    swarmops.add_app(app, repo.url, policy={"allowed_external": [db.network]})
    swarmops.run("sync", app)

    # (a) the migration adds a column; the new reader reads it
    v2 = repo.commit("v2: people get an email", app_files(
        db, "v2", port, "ALTER TABLE people ADD COLUMN email text; UPDATE people SET email = name || '@example.go.id'",
        "SELECT name || ':' || email FROM people"))
    swarmops.run("sync", app)
    entry = history(swarmops, app)[0]
    [snap] = json.loads(entry["snapshots"])
    assert (entry["commit_sha"], entry["result"]) == (v2, "succeeded")
    assert snap["migrated"] and snap["hook"] == "migrate" and snap["id"].endswith(v2[:12])
    [hook] = json.loads(entry["hooks"])
    assert (hook["name"], hook["exit_code"], hook["log_tail"][0]) == ("migrate", 0, "migrating v2")
    wait_for(lambda: "ana:ana@example.go.id" in reader_log(lab, app), 60, "the new reader to read the column")
    assert stack_image(services(lab, app)["reader"]).startswith(IMAGES["postgres"])
    listed = swarmops.json("backup", "list", app)
    assert snap["id"] in [s["id"] for s in listed] and all(s["bytes"] > 0 for s in listed)

    # (b) a migration that fails: nothing of the commit changes, the schema neither
    columns = "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns " \
              "WHERE table_name = 'people'"
    with Prober(lab, app, port) as prober:
        bad = repo.commit("v3: a phone, and a typo", app_files(
            db, "v3", port, "ALTER TABLE people ADD COLUMN phone text; UPDATE people SET phone = no_such_column",
            "SELECT name || ':' || phone FROM people"))
        res = swarmops.run("sync", app, check=False)
        assert res.returncode != 0
    assert prober.failed == 0, prober.failures[:5]
    assert sql(lab, db, columns) == "email,name"
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Failed" and "pre-deploy hook migrate failed with exit code" in status["message"]
    assert 'column "no_such_column" does not exist' in status["message"]
    assert stack_image(services(lab, app)["web"]).endswith(f":{v2[:12]}")
    assert history(swarmops, app)[0]["commit_sha"] == bad

    fixed = repo.commit("v4: a phone", app_files(
        db, "v4", port, "ALTER TABLE people ADD COLUMN phone text; UPDATE people SET phone = '555'",
        "SELECT name || ':' || phone FROM people"))
    swarmops.run("sync", app)
    assert history(swarmops, app)[0]["commit_sha"] == fixed and sql(lab, db, columns) == "email,name,phone"
    wait_for(lambda: "ana:555" in reader_log(lab, app), 60, "the reader of v4")


def check_the_rollback_stops_and_a_restore_brings_the_old_rows_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, db: Database) -> None:
    port = free_node_port()
    repo: GitRepo = repo_factory()
    app = swarmops.name(f"migr{db.engine[:2]}")
    names = ("SELECT string_agg(name, ',' ORDER BY name) FROM people" if db.engine == "postgres" else
             "SELECT group_concat(name ORDER BY name SEPARATOR ',') FROM people")
    schema = "current_schema()" if db.engine == "postgres" else "database()"
    seal_password(swarmops, repo, app, db)
    repo.commit("v1: people", app_files(db, "v1", port, "CREATE TABLE people (name text); "
                                        "INSERT INTO people VALUES ('ana'), ('ben')", "SELECT name FROM people"))
    swarmops.add_app(app, repo.url, policy={"allowed_external": [db.network]})
    swarmops.run("sync", app)

    new = repo.commit("v2: people become one", app_files(
        db, "v2", port, "DELETE FROM people; ALTER TABLE people ADD COLUMN email text; "
                        "INSERT INTO people VALUES ('cem', 'cem@example.go.id')",
        "SELECT name, email FROM people", smoke="echo 'smoke: GET / gave 500'; exit 1"))
    res = swarmops.run("sync", app, check=False)
    assert res.returncode != 0
    entry = history(swarmops, app)[0]
    [snap] = json.loads(entry["snapshots"])
    sentence = (f"rolling back would cross migration {new[:12]}; restore snapshot {snap['id']} with swarmops "
                "backup restore")
    assert (entry["commit_sha"], entry["result"], entry["rollback_to"]) == (new, "failed", "")
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["status"] == "Failed" and status["message"].startswith(sentence), status["message"]
    assert "post-deploy hook smoke failed with exit code 1" in status["message"]
    assert stack_image(services(lab, app)["web"]).endswith(f":{new[:12]}")   # the new version keeps running
    assert sql(lab, db, names) == "cem"

    refused = swarmops.run("backup", "restore", app, snap["id"], check=False)   # no terminal, no --yes
    assert refused.returncode != 0 and "pass --yes" in refused.stderr
    out = swarmops.run("backup", "restore", app, snap["id"], "--yes").stdout
    assert f"restored snapshot {snap['id']}" in out
    assert sql(lab, db, names) == "ana,ben"
    assert sql(lab, db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'people' "
                        f"AND column_name = 'email' AND table_schema = {schema}") == "0"
    # resumed (not Suspended); still Failed: the operator now rolls back or pushes a fix
    assert {s["app"]: s for s in swarmops.json("status")}[app]["status"] == "Failed"


def test_a_smoke_test_failing_after_a_postgres_migration_stops_the_rollback_and_a_restore_brings_the_old_rows_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, postgres: Database) -> None:
    check_the_rollback_stops_and_a_restore_brings_the_old_rows_back(lab, swarmops, repo_factory, postgres)


def test_a_smoke_test_failing_after_a_mariadb_migration_stops_the_rollback_and_a_restore_brings_the_old_rows_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, mariadb: Database) -> None:
    check_the_rollback_stops_and_a_restore_brings_the_old_rows_back(lab, swarmops, repo_factory, mariadb)

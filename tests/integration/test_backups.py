"""Issue 25, item 3, on the lab with the real PostgreSQL (stacks/postgres) and the real MariaDB (stacks/mysql):
a backup time missed while the daemon was down runs once when it starts (`daemon --once` makes the daemon's
first tick), `keep` bounds the backups of the database and never removes a migration's snapshot, a backup
restores the rows it was taken with, and into a database made again empty (the one lost) too."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

from swarmops.adapters.store import StateStore
from tests.integration.conftest import GitRepo, Swarmops, free_node_port, lab_images
from tests.integration.test_migrations import (
    Database,
    app_files,
    in_database_task,
    mariadb,
    postgres,
    seal_password,
    sql,
)

__all__ = ["mariadb", "postgres"]   # the fixtures, used by name


def kinds(swarmops: Swarmops, app: str) -> dict[str, list[str]]:
    listed = swarmops.json("backup", "list", app)
    found: dict[str, list[str]] = {"backup": [], "migration": []}
    for s in listed:
        found[s["kind"]].append(s["id"])
    return found


def names(lab: docker.APIClient, db: Database) -> str:
    agg = ("string_agg(name, ',' ORDER BY name)" if db.engine == "postgres" else
           "GROUP_CONCAT(name ORDER BY name SEPARATOR ',')")
    return sql(lab, db, f"SELECT {agg} FROM people")


def made_again_empty(lab: docker.APIClient, db: Database) -> None:
    """The app's database dropped and made again empty, for its own account, as after losing it."""
    if db.engine == "postgres":   # as the superuser, from its maintenance database
        psql = ["psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
        commands = [[*psql, f'DROP DATABASE "{db.name}" WITH (FORCE)'],
                    [*psql, f'CREATE DATABASE "{db.name}" OWNER "{db.name}"']]
    else:   # the app's account holds every right on its own database, dropping and making it included
        commands = [["mariadb", "-h", "127.0.0.1", f"-u{db.name}", f"--password={db.password.decode()}", "-e",
                     f"DROP DATABASE `{db.name}`; CREATE DATABASE `{db.name}`"]]
    for command in commands:
        code, out = in_database_task(lab, db, command)
        assert code == 0, out


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_a_missed_backup_runs_once_at_start_keep_bounds_the_copies_and_a_backup_restores_its_rows(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, engine: str,
        request: pytest.FixtureRequest) -> None:
    db: Database = request.getfixturevalue(engine)
    lab_images("postgres")   # the store's listing job runs on the postgres base, whichever the app's engine
    repo: GitRepo = repo_factory()
    app = swarmops.name(f"bkp{engine[:2]}")   # the store volume outlives the app: one name per engine
    # the schedule's time six hours back: no scheduled time falls between the test's daemon runs, whenever
    # the suite runs (a fixed 00:00 would make a run just before midnight due again just after it)
    six_hours_ago = time.strftime("%H:%M", time.gmtime(time.time() - 6 * 3600))
    seal_password(swarmops, repo, app, db)
    repo.commit("v1: people", app_files(db, "v1", free_node_port(), "CREATE TABLE people (name text); "
                                        "INSERT INTO people VALUES ('ana')", "SELECT name FROM people"))
    swarmops.add_app(app, repo.url, policy={"allowed_external": [db.network]},
                     backup={"databases": [db.name], "schedule": six_hours_ago, "keep": 2})
    swarmops.run("sync", app)   # its migration's snapshot: a copy retention must never remove
    # the last backup two days ago: the daemon was down at today's time (and yesterday's)
    store = StateStore(swarmops.state_dir / "state.db")
    store.record_backup(app, "schedule", time.time() - 2 * 86400, "succeeded", "", "")
    store.close()

    swarmops.run("daemon", "--once")
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["backup_result"] == "succeeded", status["backup_message"]
    assert status["backup_at"] > time.time() - 120
    first = kinds(swarmops, app)
    assert len(first["backup"]) == 1 and len(first["migration"]) == 1
    swarmops.run("daemon", "--once")   # once: the run at start is newer than the time it made up for
    assert kinds(swarmops, app) == first

    sql(lab, db, "INSERT INTO people VALUES ('budi')")
    for _ in range(2):
        time.sleep(1)   # ids are to the second
        swarmops.run("backup", "run", app)
    after = kinds(swarmops, app)
    assert len(after["backup"]) == 2 and first["backup"][0] not in after["backup"]   # keep: 2, the oldest gone
    assert after["migration"] == first["migration"]

    sql(lab, db, "DELETE FROM people")
    swarmops.run("backup", "restore", app, after["backup"][0], "--yes")
    assert names(lab, db) == "ana,budi"

    # the database lost and made again empty: the backup gives the same rows
    made_again_empty(lab, db)
    assert "people" not in sql(lab, db, "SELECT table_name FROM information_schema.tables WHERE table_name = 'people'")
    swarmops.run("backup", "restore", app, after["backup"][1], "--yes")
    assert names(lab, db) == "ana,budi"

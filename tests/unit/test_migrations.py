"""Migrations that gate a deploy (issue 25, item 2): a pre-deploy hook that declares `migrates: DATABASE` is
preceded by a snapshot of that database, and an automatic rollback across a migration that succeeded runs
the migration's down hook first or stops with the operator's sentence, the new version running."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest

from swarmops.adapters import age as age_secrets
from swarmops.adapters.swarm.backups import VolumeBackups
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain.backups import SECRET_FILE, Action, VolumeAction, parse_listing, store_job
from swarmops.domain.compose.hooks import RESERVED_SERVICES
from swarmops.domain.decide import to_dict
from swarmops.domain.hooks import HookStep, JobResult, RenderedHook
from swarmops.domain.migrations import (
    Database,
    Migrated,
    RollbackGuard,
    before_rollback,
    crossing,
    guard_rollback,
    snapshots_from_json,
)
from swarmops.errors import BackupError, ConfigError, StackError
from swarmops.ops import backups
from tests.fakes import HookWorld
from tests.unit.fakes import stack_of

LIMITS = '{limits: {cpus: "0.5", memory: 64M}}'
WIRING = """    environment:
      DB_DRIVER: postgres
      DB_HOST: postgres_postgres
      DB_PORT: "5432"
      DB_NAME: shop
      DB_USER: shop
      DB_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    networks: [db]
"""
STACK = f"""services:
  web:
    build: ./web
    deploy: {{replicas: 1, resources: {LIMITS}}}
  migrate:
    build: ./web
    command: ["./migrate", "up"]
{WIRING}    deploy: {{resources: {LIMITS}}}
    x-swarmops: {{hook: pre-deploy, migrates: shop}}
  smoke:
    image: reg:5000/base/busybox:1
    command: ["wget", "-q", "-O-", "http://web:8080/"]
    deploy: {{resources: {LIMITS}}}
    x-swarmops: {{hook: post-deploy}}
    networks: [db]
networks:
  db: {{external: true, name: db-postgres}}
secrets:
  db_password: {{file: secrets/db_password.age}}
"""
DOWN = f"""  migrate-down:
    build: ./web
    command: ["./migrate", "down"]
{WIRING}    deploy: {{resources: {LIMITS}}}
    x-swarmops: {{hook: down}}
"""
WITH_DOWN = STACK.replace("migrates: shop}", "migrates: shop, down: migrate-down}").replace(
    "networks:\n  db:", DOWN + "networks:\n  db:")
SMOKE_FAILS = JobResult("failed", 1, 0.2, ("smoke: GET / gave 500",))


def world(tmp_path: Path, text: str = STACK) -> HookWorld:
    w = HookWorld(tmp_path, app={"policy": {"allowed_external": ["db-postgres"]}})
    recipient = age_secrets.parse_recipient(age_secrets.keygen(w.config.state_dir), "age.pub")
    sealed = age_secrets.encrypt(recipient, age_secrets.seal("shop", "db_password", b"hunter2-db"))
    w.source.commit("first", {"stack.yml": text, "web/Dockerfile": "FROM reg:5000/base/busybox:1\n",
                              "web/index.html": "v1\n", "secrets/db_password.age": sealed})
    return w


def ran(w: HookWorld) -> list[str]:
    return [hook for hook, _, _ in w.jobs.runs]


# ---- the model

@pytest.mark.parametrize(("old", "new", "where", "words"), [
    ("{hook: pre-deploy, migrates: shop}", "{hook: post-deploy, migrates: shop}", "x-swarmops",
     "migrates applies to a pre-deploy hook"),
    ("{hook: pre-deploy, migrates: shop}", "{hook: pre-deploy, migrates: other}", "x-swarmops.migrates",
     "but the hook's DB_NAME is 'shop'"),
    ("{hook: pre-deploy, migrates: shop}", "{hook: pre-deploy, migrates: 'shop; drop'}", "x-swarmops.migrates",
     "must be the name of the database"),
    ("{hook: pre-deploy, migrates: shop}", "{hook: pre-deploy, down: undo}", "x-swarmops",
     "add migrates: DATABASE"),
    ("{hook: pre-deploy, migrates: shop}", "{hook: pre-deploy, migrates: shop, down: smoke}",
     "x-swarmops.down", "is not a service of this stack marked x-swarmops: {hook: down}"),
    ("      DB_DRIVER: postgres\n", "      DB_DRIVER: oracle\n", "environment.DB_DRIVER", "postgres or mysql"),
    ("      DB_USER: shop\n", "", "environment", "has no DB_USER"),
    ('      DB_PORT: "5432"\n', '      DB_PORT: "²"\n', "environment.DB_PORT", "not a port number"),
    ("      DB_PASSWORD_FILE: /run/secrets/db_password\n", "      DB_PASSWORD_FILE: /etc/pw\n",
     "environment.DB_PASSWORD_FILE", "not /run/secrets/NAME of one of the hook's secrets"),
])
def test_a_migration_hook_is_refused_unless_it_names_its_wired_database(old: str, new: str, where: str,
                                                                        words: str) -> None:
    text = STACK.replace(old, new, 1)
    with pytest.raises(StackError, match=r"stack\.yml:") as err:
        stack_of(text, files={"secrets/db_password.age": b"x"})
    assert f"services.migrate.{where}" in str(err.value) and words in str(err.value)


def test_a_down_hook_no_migration_names_is_refused() -> None:
    text = STACK.replace("networks:\n  db:", DOWN + "networks:\n  db:")
    with pytest.raises(StackError, match=r"services\.migrate-down\.x-swarmops\.hook") as err:
        stack_of(text, files={"secrets/db_password.age": b"x"})
    assert "add down: migrate-down to that migration hook" in str(err.value)


# ---- the store's jobs

DB = Database("postgres", "shop", "postgres_postgres", 5432, "shop", "shop_db_password_0123abcd", ("db-postgres",))


def test_a_snapshot_job_runs_on_the_db_node_with_the_password_as_a_secret_file_only() -> None:
    spec = store_job("snapshot", "shop", "reg:5000/base/postgres:15", "swarmops-backups", "node.labels.role == db",
                     DB, "20260101T000000Z-aaaaaaaaaaaa")
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    assert template["Placement"]["Constraints"] == ["node.labels.role == db"]
    assert "ReplicatedJob" in spec["Mode"] and template["RestartPolicy"]["Condition"] == "none"
    assert container["Secrets"] == [{"SecretName": DB.secret, "File": {"Name": SECRET_FILE, "UID": "0", "GID": "0",
                                                                       "Mode": 0o400}}]
    assert container["Mounts"][0] == {"Type": "volume", "Source": "swarmops-backups", "Target": "/backups",
                                      "ReadOnly": False}
    assert "pg_dump" in container["Args"][0] and '"$d/$ID.sql.gz"' in container["Args"][0]
    assert "ID=20260101T000000Z-aaaaaaaaaaaa" in container["Env"] and template["Networks"] == [
        {"Target": "db-postgres"}]
    assert not [e for e in container["Env"] if "PASSWORD" in e]   # the password is read from the secret's file
    mysql = store_job("restore", "shop", "reg:5000/base/mariadb:10.11", "swarmops-backups", "node.labels.role == db",
                      Database("mysql", "shop", "mysql_mysql", 3306, "shop", "s", ()), "x")
    assert "--defaults-extra-file" in mysql["TaskTemplate"]["ContainerSpec"]["Args"][0]


def test_a_listing_reads_the_snapshots_the_job_printed_and_nothing_else() -> None:
    lines = ("snapshot 2048 1767225600 20260101T000000Z-aaaaaaaaaaaa", "ls: oops", "snapshot x 1 y")
    [found] = parse_listing(lines)
    assert (found.id, found.size, found.modified) == ("20260101T000000Z-aaaaaaaaaaaa", 2048, 1767225600.0)


# ---- the pure rollback guard

def hook(name: str, migrates: str | None = None, down: str | None = None) -> RenderedHook:
    return RenderedHook(name, "down" if name.endswith("down") else "pre-deploy", 60.0, "img", "h", {}, {},
                        migrates=migrates, down=down)


def test_a_rollback_crosses_the_oldest_earlier_migration_newer_than_its_target() -> None:
    history = (Migrated("c3", "migrate", "s3", 7), Migrated("c2", "migrate", "s2", 5), Migrated("c1", "m", "s1", 2))
    guard = guard_rollback(4, history, (), {})
    assert guard.crossed == Migrated("c2", "migrate", "s2", 5)
    assert before_rollback(guard, []).stop == crossing("c2", "s2")
    assert guard_rollback(7, history, (), {}).crossed is None   # the target ran that migration itself
    assert guard_rollback(0, history, (), {}).crossed == history[2]   # a target the history lacks
    assert guard_rollback(None, history, (), {}) == RollbackGuard()


def test_a_migration_of_this_deploy_runs_its_down_hook_or_stops_without_one() -> None:
    up, down = hook("migrate", "shop", "migrate-down"), hook("migrate-down")
    steps = (HookStep(up, True, "changed"),)
    guard = guard_rollback(3, (), steps, {"migrate": up, "migrate-down": down})
    done = [Migrated("c9", "migrate", "s9")]
    assert before_rollback(guard, done).down == (down,)
    assert before_rollback(guard, done).if_down_fails == crossing("c9", "s9")
    assert before_rollback(guard, []).down == () and not before_rollback(guard, []).stop   # it did not migrate
    bare = guard_rollback(3, (), (HookStep(hook("migrate", "shop"), True, "changed"),), {})
    assert before_rollback(bare, done).stop == "rolling back would cross migration c9; restore snapshot s9 with " \
                                               "swarmops backup restore"


# ---- the deploy

def test_a_migration_takes_a_snapshot_before_it_runs_and_the_history_records_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.backups.rows["shop"] = ["row 1"]
    out = w.sync()
    assert out.result == "deployed" and ran(w) == ["migrate", "smoke"]
    [(sid, db, hooks_before, deploys_before)] = w.backups.taken
    assert (hooks_before, deploys_before) == (0, 0)   # before the migration and before the stack deploy
    assert (db.engine, db.name, db.host, db.user, db.networks) == ("postgres", "shop", "postgres_postgres", "shop",
                                                                  ("db-postgres",))
    assert db.secret.startswith("shop_db_password_") and sid.endswith(w.source.heads[-1][:12])
    [snap] = snapshots_from_json(w.store.history("shop")[0].snapshots)
    assert (snap.id, snap.hook, snap.migrated, snap.database) == (sid, "migrate", True, db)
    assert "hunter2-db" not in w.store.history("shop")[0].snapshots + json.dumps(w.jobs.runs[0][1])


def test_a_failing_snapshot_stops_the_deploy_before_the_migration(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.backups.fail["snapshot"] = JobResult("failed", 1, 0.3, ("pg_dump: error: connection refused",))
    out = w.sync()
    assert (out.result, out.error_kind) == ("failed", "BackupError")
    assert w.jobs.runs == [] and w.swarm.deploys == []
    assert "the snapshot of database shop before migration migrate failed" in out.message
    assert "pg_dump: error: connection refused" in out.message
    status = status_from_store(w.store, "shop", w.live())
    assert status.status == "Failed" and "snapshot" in status.message


def test_a_failed_smoke_test_after_a_migration_without_a_down_hook_stops_and_the_new_version_keeps_running(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    new = w.source.commit("v2", {"web/index.html": "v2\n"})
    w.jobs.results["smoke"] = SMOKE_FAILS
    out = w.poll()
    sid = w.backups.taken[-1][0]
    assert (out.result, out.rolled_back_to) == ("failed", "")
    assert out.message.startswith(f"rolling back would cross migration {new[:12]}; restore snapshot {sid} with "
                                  "swarmops backup restore; post-deploy hook smoke failed")
    assert w.live().deployed_commit() == new and len(w.swarm.deploys) == 2
    status = status_from_store(w.store, "shop", w.live())
    assert status.status == "Failed" and status.message.startswith("rolling back would cross migration")
    assert w.poll().result == "noop"   # what runs is that commit: in sync, and still Failed
    assert status_from_store(w.store, "shop", w.live()).status == "Failed"


def test_a_failed_convergence_after_a_migration_does_not_roll_back_across_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    new = w.source.commit("v2 crashes", {"web/index.html": "v2\n"})
    w.swarm.failing.add(f"reg:5000/shop/web:{new[:12]}")
    out = w.poll()
    assert out.result == "failed" and out.rolled_back_to == "" and "rolling back would cross migration" in out.message
    assert w.live().deployed_commit() == new


def test_a_down_hook_undoes_the_migration_before_the_rollback(tmp_path: Path) -> None:
    w = world(tmp_path, WITH_DOWN)
    first = w.sync()
    good = w.source.heads[-1]
    assert first.result == "deployed" and ran(w) == ["migrate", "smoke"]   # a down hook does not run on a deploy
    w.source.commit("v2", {"web/index.html": "v2\n"})
    w.jobs.results["smoke"] = SMOKE_FAILS
    out = w.poll()
    assert (out.result, out.rolled_back_to) == ("failed", good) and w.live().deployed_commit() == good
    assert ran(w)[2:] == ["migrate", "smoke", "migrate-down"]
    assert [r.name for r in out.hooks] == ["migrate", "smoke", "migrate-down"]


def test_a_failing_down_hook_stops_the_rollback_with_the_restore_sentence(tmp_path: Path) -> None:
    w = world(tmp_path, WITH_DOWN)
    w.sync()
    new = w.source.commit("v2", {"web/index.html": "v2\n"})
    w.jobs.results["smoke"] = SMOKE_FAILS
    w.jobs.results["migrate-down"] = JobResult("failed", 4, 0.2, ("cannot drop column email",))
    out = w.poll()
    assert out.rolled_back_to == "" and w.live().deployed_commit() == new
    assert out.message.startswith(f"rolling back would cross migration {new[:12]}")
    assert "down hook migrate-down failed with exit code 4" in out.message and "cannot drop column" in out.message


# ---- swarmops backup list | restore

def test_a_restore_brings_the_snapshots_rows_back_pausing_the_app_meanwhile(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.backups.rows["shop"] = ["old row"]
    w.sync()
    w.backups.rows["shop"] = ["old row", "row with an email"]   # what the migrated version wrote
    [listed] = backups.list_snapshots(w.store, w.backups, w.app, threading.Event())
    assert listed.record is not None and (listed.record.hook, listed.record.database.name) == ("migrate", "shop")
    paused_during: list[bool] = []
    restore = w.backups.restore

    def noting(app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        paused_during.append(w.store.app_state(app).paused)
        return restore(app, db, snapshot, cancel)
    w.backups.restore = noting  # type: ignore[method-assign]
    said = backups.restore(w.store, w.backups, w.app, listed.file.id, threading.Event())
    assert w.backups.rows["shop"] == ["old row"] and paused_during == [True]
    assert not w.store.app_state("shop").paused and "restored snapshot" in said and "auto-sync resumed" in said


def test_a_restore_of_an_unknown_or_malformed_snapshot_changes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    with pytest.raises(BackupError, match="is not in the history of shop"):
        backups.restore(w.store, w.backups, w.app, "20990101T000000Z-aaaaaaaaaaaa", threading.Event())
    with pytest.raises(ConfigError, match="is not a snapshot id"):
        backups.restore(w.store, w.backups, w.app, "../../etc/passwd", threading.Event())
    assert not w.store.app_state("shop").paused


def test_a_failed_restore_leaves_the_app_paused_and_says_so(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    sid = w.backups.taken[0][0]
    w.backups.kept.clear()   # the file is gone from the store
    with pytest.raises(BackupError, match="stays paused") as err:
        backups.restore(w.store, w.backups, w.app, sid, threading.Event())
    assert "no snapshot" in str(err.value) and w.store.app_state("shop").paused



def run_store_script(action: Action, tmp_path: Path, snapshot: str = "") -> subprocess.CompletedProcess[str]:
    """The job's script run by this machine's sh, with the store under tmp_path and a pg_dump that prints
    the password it was given: the scripts' own logic, without the Swarm."""
    spec = store_job(action, "shop", "img", "swarmops-backups", "node.labels.role == db",
                     DB if action != "list" else None, snapshot)
    container = spec["TaskTemplate"]["ContainerSpec"]
    script = container["Args"][0].replace("/backups", str(tmp_path / "store")).replace(
        "/run/secrets/", str(tmp_path / "secrets") + "/").replace("/usr/lib/postgresql/15/bin", str(tmp_path / "bin"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pg_dump").write_text('#!/bin/sh\nwhile [ "$1" != -f ]; do shift; done; '
                                     'echo "-- dump made with $PGPASSWORD" > "$2"\n')
    (bin_dir / "pg_dump").chmod(0o755)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / SECRET_FILE).write_text("hunter2\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **dict(e.partition("=")[::2] for e in container["Env"])}
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)


def test_the_snapshot_script_dumps_with_the_secrets_password_and_the_listing_finds_it(tmp_path: Path) -> None:
    for sid in ("20260101T000000Z-aaaaaaaaaaaa", "20260102T000000Z-bbbbbbbbbbbb"):
        made = run_store_script("snapshot", tmp_path, sid)
        assert made.returncode == 0, made.stderr
    dump = gzip.decompress((tmp_path / "store" / "shop" / "20260102T000000Z-bbbbbbbbbbbb.sql.gz").read_bytes())
    assert dump == b"-- dump made with hunter2\n"
    assert sorted(p.name for p in (tmp_path / "store" / "shop").iterdir()) == [
        "20260101T000000Z-aaaaaaaaaaaa.sql.gz", "20260102T000000Z-bbbbbbbbbbbb.sql.gz"]   # no partial file left
    listed = run_store_script("list", tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [f.id for f in parse_listing(tuple(listed.stdout.splitlines()))] == [
        "20260102T000000Z-bbbbbbbbbbbb", "20260101T000000Z-aaaaaaaaaaaa"]


def test_an_interrupted_deploy_that_migrated_is_not_rolled_back_across_its_migration_after_the_restart(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    new = w.source.commit("v2", {"web/index.html": "v2\n"})
    w.swarm.failing.add(f"reg:5000/shop/web:{new[:12]}")   # v2 never converges
    deploy = w.swarm.deploy

    def stopping(app: str, compose_file: Path) -> str:   # the daemon stops right after the stack deploy
        out = deploy(app, compose_file)
        w.reconciler.cancel.set()
        return out
    w.swarm.deploy = stopping  # type: ignore[method-assign]
    assert w.poll().error_kind == "Interrupted"
    w.swarm.deploy = deploy  # type: ignore[method-assign]
    w.reconciler.cancel.clear()
    w.poll()   # the next start resumes the watch: v2 fails, and its migration stands before the rollback
    [(sid, *_)] = w.backups.taken[1:]
    interrupted = next(d for d in w.store.history("shop") if d.result == "interrupted")
    assert interrupted.error.startswith(crossing(new, sid)) and interrupted.rollback_to == ""
    assert w.live().deployed_commit() == new and w.store.app_state("shop").last_error.startswith(crossing(new, sid))


def test_a_dry_run_says_a_snapshot_comes_first_and_which_migration_a_rollback_would_cross(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("v2", {"web/index.html": "v2\n"})
    w.jobs.results["smoke"] = SMOKE_FAILS
    w.poll()   # stopped at its migration: v2 runs, Failed
    w.source.commit("v3", {"web/index.html": "v3\n"})
    plan = w.sync(dry_run=True)
    assert plan.result == "planned" and "pre-deploy migrate runs (snapshot of shop first)" in plan.message
    data = to_dict(plan.decision)
    assert [(h["name"], h["migrates"]) for h in data["hooks"]] == [("migrate", "shop"), ("smoke", None)]
    assert data["rollback_crosses"] == w.source.heads[-2]   # v2's migration stands between v3 and v1
    assert len(w.backups.taken) == 2   # a dry run takes no snapshot


def test_a_store_job_of_an_app_with_a_long_name_still_has_a_name_swarm_takes() -> None:
    long_app = "a" * 60
    spec = store_job("snapshot", long_app, "img", "swarmops-backups", "node.labels.role == db", DB, "x")
    other = store_job("snapshot", "a" * 59 + "b", "img", "swarmops-backups", "node.labels.role == db", DB, "x")
    assert len(spec["Name"]) <= 63 and spec["Name"].endswith("_swarmops-snapshot") and spec["Name"] != other["Name"]
    assert store_job("list", "shop", "img", "v", "c")["Name"] == "shop_swarmops-list"


def test_a_restore_whose_password_secret_is_gone_leaves_the_app_paused_and_says_so(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    sid = w.backups.taken[0][0]
    w.swarm.secrets["shop"].clear()   # pruned by a later commit that changed the password
    with pytest.raises(BackupError, match="does not exist in the Swarm; shop stays paused"):
        backups.restore(w.store, w.backups, w.app, sid, threading.Event())
    assert w.store.app_state("shop").paused


class RecordingJobs:
    """The jobs port: every job ends with exit 0 and is kept for the test to read."""

    def __init__(self) -> None:
        self.specs: list[Mapping[str, Any]] = []

    def run(self, app: str, spec: Mapping[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
        self.specs.append(spec)
        return JobResult("complete", 0, 0.1)

    def check(self, app: str, spec: Mapping[str, Any]) -> None:
        return None


def test_each_apps_store_jobs_mount_only_that_apps_volume() -> None:
    """A dump talks to whatever server the app's stack names (maybe one of its own, which may ask the client
    for local files), and a restore replays what it said: the job must hold nothing of another app's."""
    jobs = RecordingJobs()
    store = VolumeBackups(jobs, "reg:5000")
    store.snapshot("shop", DB, "20261201T000000Z-abc", threading.Event())
    store.restore("blog", DB, "20261201T000000Z-abc", threading.Event())
    store.list("shop", threading.Event())
    mounts = [[m["Source"] for m in s["TaskTemplate"]["ContainerSpec"]["Mounts"]] for s in jobs.specs]
    assert mounts == [["swarmops-backups-shop"], ["swarmops-backups-blog"], ["swarmops-backups-shop"]]
    assert store.where("shop", "x") == "volume swarmops-backups-shop on the db node, shop/x.sql.gz"


def test_a_mysql_dump_refuses_local_files_and_its_restore_runs_sandboxed() -> None:
    mysql = Database("mysql", "shop", "mysql_mysql", 3306, "shop", "shop_db_password_0123abcd", ("db-mysql",))
    dump = store_job("snapshot", "shop", "img", "v", "node.labels.role == db", mysql, "x")
    load = store_job("restore", "shop", "img", "v", "node.labels.role == db", mysql, "x")
    assert "loose-local-infile=0" in dump["TaskTemplate"]["ContainerSpec"]["Args"][0]
    assert "mariadb --defaults-extra-file=/tmp/my.cnf --sandbox " in load["TaskTemplate"]["ContainerSpec"]["Args"][0]


@pytest.mark.parametrize("name", ["swarmops-snapshot", "Swarmops-Restore", "swarmops-list", "SWARMOPS-PRUNE"])
def test_a_service_named_like_swarmops_own_backup_job_is_refused(name: str) -> None:
    """Its Swarm service would be `<app>_<name>`, the name of the app's snapshot, restore or listing job."""
    text = f"services:\n  {name}:\n    image: busybox\n"
    with pytest.raises(StackError, match=rf"services\.{name}") as err:
        stack_of(text)
    assert "swarmops' own backup jobs" in str(err.value)


def test_the_reserved_service_names_are_the_backup_jobs_names() -> None:
    actions = get_args(Action) + get_args(VolumeAction)
    assert {f"swarmops-{action}" for action in actions} == set(RESERVED_SERVICES)


def test_an_operators_rollback_across_a_migration_is_refused_unless_asked_for(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    new = w.source.commit("v2", {"web/index.html": "v2\n"})
    assert w.poll().result == "deployed"
    sid = w.backups.taken[-1][0]
    refused = w.reconciler.roll_back_to(w.app, None)
    assert refused.result == "failed" and refused.message.startswith(
        f"rolling back would cross migration {new[:12]}; restore snapshot {sid} with swarmops backup restore, "
        f"or roll shop back to {good[:12]} with --across-migrations")
    assert w.live().deployed_commit() == new
    asked = w.reconciler.roll_back_to(w.app, None, across_migrations=True)
    assert asked.result != "failed" and w.live().deployed_commit() == good

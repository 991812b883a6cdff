"""Scheduled backups (issue 25, item 3, first slice): an apps.d `backup` entry, the pure schedule, a backup
of each database the deployed stack wires, retention that never touches a migration's snapshot, the daemon's
tick under the app's lock, `swarmops backup run`, status, /metrics and notifications, all on the fakes."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from swarmops import cli_backups
from swarmops.adapters import age as age_secrets
from swarmops.adapters.notify import Notifier
from swarmops.adapters.store import StateStore
from swarmops.cli import main
from swarmops.config.loader import load_config
from swarmops.config.models import AppConfig
from swarmops.daemon.backups import BackupSchedule
from swarmops.daemon.metrics import Metrics
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain.backups import SNAPSHOT_ID, Action, BackupRun, backup_due, backup_id, missed_slot, store_job
from swarmops.domain.hooks import JobResult
from swarmops.domain.migrations import Database, database_in, wired_database
from swarmops.errors import BusyError
from swarmops.ops import backups
from tests.fakes import HookWorld

LIMITS = '{limits: {cpus: "0.5", memory: 64M}}'
STACK = f"""services:
  web:
    build: ./web
    environment:
      DB_DRIVER: postgres
      DB_HOST: postgres_postgres
      DB_PORT: "5432"
      DB_NAME: shop
      DB_USER: shop
      DB_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    networks: [db]
    deploy: {{replicas: 1, resources: {LIMITS}}}
networks:
  db: {{external: true, name: db-postgres}}
secrets:
  db_password: {{file: secrets/db_password.age}}
"""
DAY = datetime(2026, 3, 10, tzinfo=UTC)


def at(hhmm: str, days: int = 0) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return DAY + timedelta(days=days, hours=hour, minutes=minute)


def world(tmp_path: Path, databases: tuple[str, ...] = ("shop",), keep: int = 2, text: str = STACK) -> HookWorld:
    w = HookWorld(tmp_path, app={"policy": {"allowed_external": ["db-postgres"]},
                                 "backup": {"databases": list(databases), "schedule": "02:00", "keep": keep}})
    recipient = age_secrets.parse_recipient(age_secrets.keygen(w.config.state_dir), "age.pub")
    sealed = age_secrets.encrypt(recipient, age_secrets.seal("shop", "db_password", b"hunter2-db"))
    w.source.commit("first", {"stack.yml": text, "web/Dockerfile": "FROM reg:5000/base/busybox:1\n",
                              "web/index.html": "v1\n", "secrets/db_password.age": sealed})
    assert w.sync().result == "deployed"
    return w


def clock(start: datetime) -> Iterator[datetime]:
    """A clock a minute on at each reading: each backup gets its own id."""
    t = start
    while True:
        yield t
        t += timedelta(minutes=1)


def schedule_of(w: HookWorld, start: datetime, store: StateStore | None = None) -> BackupSchedule:
    ticks = clock(start)
    return BackupSchedule(w.config, store or w.store, w.backups, w.reconciler, threading.Event(),
                          now=lambda: next(ticks))


# ---- the schedule (pure)

@pytest.mark.parametrize(("now", "last_run", "due"), [
    (at("02:00"), None, True),                        # never backed up: at once
    (at("01:59"), at("02:00", -1), False),            # yesterday's ran, today's time not yet come
    (at("02:00"), at("02:00", -1), True),             # today's time has come
    (at("02:30"), at("02:00"), False),                # today's ran
    (at("01:00"), at("03:00", -1), False),            # ran (by hand) after yesterday's time
    (at("10:00"), at("02:00", -1), True),             # today's missed (the daemon was down): runs at start
    (at("10:00"), at("02:00", -3), True),             # three missed: runs once
    (at("10:01"), at("10:00"), False),                # ... and not again after that run
], ids=["never-ran", "before-its-time", "at-its-time", "ran-today", "ran-by-hand-since", "missed-today",
        "missed-three-days", "after-the-catch-up"])
def test_a_backup_is_due_when_its_last_run_is_older_than_the_schedules_latest_time(
        now: datetime, last_run: datetime | None, due: bool) -> None:
    assert backup_due(now, "02:00", last_run) is due


def test_a_backup_id_sorts_by_time_names_its_database_and_restore_takes_it_beside_a_migrations() -> None:
    sid = backup_id(at("02:00"), "shop")
    assert sid == "20260310T020000Z-backup-shop"
    assert SNAPSHOT_ID.match(sid) and SNAPSHOT_ID.match("20260310T020000Z-0123456789ab")
    assert backup_id(at("02:00"), "shop") < backup_id(at("02:00", 1), "shop")


# ---- the apps.d entry

@pytest.mark.parametrize(("entry", "key", "words"), [
    ("{databases: [shop], schedule: '25:00'}", "backup.schedule", "HH:MM in UTC"),
    ("{databases: [shop], schedule: '2am'}", "backup.schedule", "HH:MM in UTC"),
    ("{databases: [], schedule: '02:00'}", "backup", "name what to back up"),
    ("{databases: ['shop; drop'], schedule: '02:00'}", "backup.databases", "not a database name"),
    ("{databases: [shop, shop], schedule: '02:00'}", "backup.databases", "listed twice"),
    ("{databases: [shop], schedule: '02:00', keep: 0}", "backup.keep", "greater than or equal to 1"),
    ("{databases: [shop], schedule: '02:00', volumes: [data]}", "backup", "add s3: {bucket: NAME"),
    ("{databases: [shop]}", "backup.schedule", "add it"),
], ids=["hour-25", "not-a-time", "no-database", "bad-name", "twice", "keep-0", "volumes-without-a-bucket",
                                                                        "no-schedule"])
def test_a_bad_backup_entry_is_refused_naming_its_file_line_and_key(tmp_path: Path, entry: str, key: str,
                                                                    words: str) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    bad = apps_d / "shop.yml"
    bad.write_text(f"name: shop\nrepo: file:///srv/shop.git\nbackup: {entry}\n")
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {tmp_path}/state\napps_dir: {apps_d}\n")
    [error] = [str(e) for e in load_config(config).app_errors]
    assert error.startswith(f"{bad}:3: ") and f"key '{key}" in error and words in error, error


def test_a_backup_entry_keeps_14_by_default() -> None:
    app = AppConfig.model_validate({"name": "shop", "repo": "x", "backup": {"databases": ["shop"],
                                                                            "schedule": "02:00"}})
    assert app.backup is not None and app.backup.keep == 14


# ---- finding the database in the deployed stack

def test_the_database_is_found_in_the_live_spec_of_the_service_wired_to_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    specs = {short: svc.spec for short, svc in w.live().services.items()}
    db = database_in(specs, "shop")
    assert db is not None and (db.engine, db.host, db.port, db.user) == ("postgres", "postgres_postgres", 5432, "shop")
    assert db.secret.startswith("shop_db_password") and db.networks == ("db-postgres",)
    assert database_in(specs, "orders") is None


def test_a_database_the_stack_does_not_wire_fails_the_backup_saying_what_to_add(tmp_path: Path) -> None:
    w = world(tmp_path, databases=("shop", "orders"))
    run = backups.run_backup(w.store, w.backups, w.swarm.read_app, w.app, "manual", threading.Event())
    assert not run.ok and [s.id.rsplit("-", 1)[1] for s in run.snapshots] == ["shop"]
    assert "shop: no service of the deployed stack is wired to database orders" in run.message
    assert "DB_NAME: orders" in run.message and "remove orders from backup.databases" in run.message
    last = w.store.last_backup("shop")
    assert last is not None and last.result == "failed" and "orders" in last.message


# ---- a backup, and retention

def test_a_backup_keeps_the_newest_keep_backups_and_never_a_migrations_snapshot(tmp_path: Path) -> None:
    w = world(tmp_path, keep=2)
    db = Database("postgres", "shop", "h", 5432, "shop", "s", ())
    w.backups.kept[("shop", "20260101T000000Z-0123456789ab")] = (db, ["before a migration"])
    ticks = clock(at("02:00"))
    taken = []
    for _ in range(3):
        run = backups.run_backup(w.store, w.backups, w.swarm.read_app, w.app, "manual", threading.Event(),
                                 now=lambda: next(ticks))
        assert run.ok, run.message
        taken += [s.id for s in run.snapshots]
    assert len(set(taken)) == 3
    assert sorted(sid for (_, sid) in w.backups.kept) == ["20260101T000000Z-0123456789ab", *taken[1:]]


def run_prune(tmp_path: Path, keep: int) -> subprocess.CompletedProcess[str]:
    """The prune job's script run by this machine's sh, with the store under tmp_path."""
    db = Database("postgres", "shop", "h", 5432, "shop", "s", ())
    spec = store_job("prune", "shop", "img", "v", "node.labels.role == db", db, keep=keep)
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert "Secrets" not in container and "Networks" not in spec["TaskTemplate"]   # it only removes files
    script = container["Args"][0].replace("/backups", str(tmp_path / "store"))
    env = {"PATH": "/usr/bin:/bin", **dict(e.partition("=")[::2] for e in container["Env"])}
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)


def test_the_prune_script_keeps_the_newest_backups_of_its_database_only(tmp_path: Path) -> None:
    store = tmp_path / "store" / "shop"
    store.mkdir(parents=True)
    names = ["20260101T000000Z-0123456789ab", "20260102T000000Z-backup-shop", "20260103T000000Z-backup-shop",
             "20260104T000000Z-backup-shop", "20260101T000000Z-backup-x-backup-shop", "20260101T000000Z-backup-shop2"]
    for name in names:
        (store / f"{name}.sql.gz").write_bytes(b"x")
    done = run_prune(tmp_path, keep=2)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name.removesuffix(".sql.gz") for p in store.iterdir()) == sorted(
        set(names) - {"20260102T000000Z-backup-shop"})
    assert done.stdout.splitlines() == ["removed 20260102T000000Z-backup-shop", "kept 2 of 3 backups of shop"]
    assert run_prune(tmp_path / "empty", keep=2).returncode == 0   # no store yet: nothing to do


def test_the_prune_script_skips_a_directory_or_a_link_planted_in_the_volume(tmp_path: Path) -> None:
    """The app's own jobs write in its volume: a directory named like the newest backup, with a file named
    `*` in it, and a link, must neither count as backups nor make the prune remove the others."""
    store = tmp_path / "store" / "shop"
    store.mkdir(parents=True)
    names = ["20260101T000000Z-0123456789ab", "20260102T000000Z-backup-shop", "20260103T000000Z-backup-shop"]
    for name in names:
        (store / f"{name}.sql.gz").write_bytes(b"x")
    planted = store / "29991231T000000Z-backup-shop.sql.gz"
    planted.mkdir()
    (planted / "*").write_bytes(b"x")
    (store / "29991230T000000Z-backup-shop.sql.gz").symlink_to(store / f"{names[0]}.sql.gz")
    done = run_prune(tmp_path, keep=2)
    assert done.returncode == 0, done.stderr
    assert all((store / f"{name}.sql.gz").is_file() for name in names) and (planted / "*").is_file()
    assert done.stdout.splitlines() == ["kept 2 of 2 backups of shop"]


@pytest.mark.parametrize("action", ["snapshot", "restore"])
def test_a_mariadb_password_with_a_newline_and_a_hash_reaches_the_client_whole_and_adds_no_option(
        tmp_path: Path, action: Action) -> None:
    """The app's own secret: a newline in it must not become an option of the client's option file (an
    init-command, a plugin-dir), nor a `#` cut it short. The job's script, run by this machine's sh with a
    client that records what it was given."""
    password = "pw#1\ninit-command=DROP DATABASE shop\nplugin-dir=/backups"
    secret = tmp_path / "secret"
    secret.write_text(password)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for client in ("mariadb-dump", "mariadb"):
        (bin_dir / client).write_text(
            '#!/bin/sh\nprintf %s "$MYSQL_PWD" > "$SEEN/password"\n'
            'for a; do case $a in --defaults-extra-file=*) cp "${a#*=}" "$SEEN/cnf";; esac; done\n'
            'cat > /dev/null; echo "-- dump"\n')
        (bin_dir / client).chmod(0o755)
    store = tmp_path / "store"
    (store / "shop").mkdir(parents=True)
    with gzip.open(store / "shop" / "20260101T000000Z-backup-shop.sql.gz", "wt") as f:
        f.write("-- dump\n")
    db = Database("mysql", "shop", "h", 3306, "shop", "s", ())
    spec = store_job(action, "shop", "img", "v", "node.labels.role == db", db, "20260101T000000Z-backup-shop")
    container = spec["TaskTemplate"]["ContainerSpec"]
    script = (container["Args"][0].replace("/run/secrets/swarmops-db-password", str(secret))
              .replace("/tmp/my.cnf", str(tmp_path / "my.cnf")).replace("/backups", str(store)))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SEEN": str(tmp_path),
           **dict(e.partition("=")[::2] for e in container["Env"])}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "password").read_text() == password
    assert (tmp_path / "cnf").read_text() == "[client]\nloose-local-infile=0\n"
    assert password not in json.dumps(spec)


def test_a_restore_of_a_backup_finds_its_database_in_the_backup_runs(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.backups.rows["shop"] = ["row 1"]
    run = backups.run_backup(w.store, w.backups, w.swarm.read_app, w.app, "manual", threading.Event())
    w.backups.rows["shop"] = []
    said = backups.restore(w.store, w.backups, w.app, run.snapshots[0].id, threading.Event())
    assert w.backups.rows["shop"] == ["row 1"] and "backup of database shop" in said


def test_a_backup_is_refused_while_a_deploy_of_the_app_runs(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.store.start_deploy("shop", "c" * 40, "", "", "poll", "")
    with pytest.raises(BusyError, match="a deploy of shop is running"):
        backups.run_backup(w.store, w.backups, w.swarm.read_app, w.app, "manual", threading.Event())
    assert w.store.last_backup("shop") is None


@pytest.mark.parametrize(("now", "last_run", "missed"), [
    (at("02:00"), None, None),                         # never backed up: its first run misses nothing
    (at("02:00"), at("02:00", -1), None),              # on time
    (at("02:10"), at("02:00", -1), None),              # a tick or a deploy late: still on time
    (at("02:11"), at("02:00", -1), at("02:00")),       # past ten minutes: missed
    (at("10:00"), at("02:00", -3), at("02:00")),       # down for days: the latest time it missed
    (at("10:00"), at("02:00"), None),                  # not due
], ids=["never-ran", "on-time", "ten-minutes-late", "eleven-minutes-late", "down-for-days", "not-due"])
def test_a_run_more_than_ten_minutes_past_its_time_missed_that_time(
        now: datetime, last_run: datetime | None, missed: datetime | None) -> None:
    assert missed_slot(now, "02:00", last_run) == missed


# ---- the daemon's tick

def test_a_time_missed_while_the_daemon_was_down_runs_once_at_start_and_a_restart_keeps_the_last_run(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.store.record_backup("shop", "schedule", at("02:00", -1).timestamp(), "succeeded", "", "")
    first = schedule_of(w, at("10:00"))   # today's 02:00 passed while it was down
    assert [r.trigger for r in first.tick()] == ["schedule"]
    assert first.tick() == []
    again = schedule_of(w, at("10:05"), StateStore(w.store.path))   # a restart reads the last run back
    assert again.tick() == []
    assert schedule_of(w, at("02:00", 1)).tick() != []   # tomorrow's time


def test_a_backup_waits_while_the_apps_reconcile_runs(tmp_path: Path) -> None:
    w = world(tmp_path)
    schedule = schedule_of(w, at("03:00"))
    lock = w.reconciler._lock("shop")
    with lock:
        assert schedule.tick() == []
    assert len(schedule.tick()) == 1


def test_an_app_without_a_backup_entry_is_never_backed_up(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.config = w.config.model_copy(update={"apps": [w.app.model_copy(update={"backup": None})]})
    assert schedule_of(w, at("03:00")).tick() == []


# ---- what the operator sees

def test_status_and_metrics_show_the_last_backups_time_and_result(tmp_path: Path) -> None:
    w = world(tmp_path)
    before = generate_latest(Metrics(lambda: [status_from_store(w.store, "shop", w.live())]).registry).decode()
    assert 'swarmops_backup_age_seconds{' not in before and 'swarmops_backup_last_result{' not in before
    good = schedule_of(w, at("02:00")).tick()[0]
    w.backups.fail["snapshot"] = JobResult("failed", 1, 0.1, ("pg_dump: connection refused",))
    run = schedule_of(w, at("02:00", 1)).tick()[0]
    status = status_from_store(w.store, "shop", w.live())
    assert (status.backup_at, status.backup_result, status.backup_ok_at) == (run.started, "failed", good.started)
    assert "pg_dump: connection refused" in status.backup_message and status.to_dict()["backup_result"] == "failed"
    text = generate_latest(Metrics(lambda: [status], clock=lambda: good.started + 90).registry).decode()
    assert 'swarmops_backup_age_seconds{app="shop"} 90.0' in text
    assert 'swarmops_backup_last_result{app="shop"} 0.0' in text


def notifier_of(w: HookWorld) -> tuple[Notifier, list[tuple[str, str]]]:
    """A notifier with one URL whose deliveries (title, body) are kept in the list."""
    sent: list[tuple[str, str]] = []

    def send(urls: list[str], title: str, body: str) -> bool:
        sent.append((title, body))
        return True

    config = w.config.model_copy(update={"notify": w.config.notify.model_copy(update={"urls": ["json://x"]})})
    return Notifier(config, send=send), sent


def test_a_failed_backup_is_notified_once(tmp_path: Path) -> None:
    w = world(tmp_path)
    notifier, sent = notifier_of(w)
    failed = BackupRun("shop", "schedule", 1.0, False, "the backup of database shop failed", ())
    for run in (failed, failed, BackupRun("shop", "schedule", 2.0, True, "ok", ())):
        notifier.on_backup(run)
    notifier.flush()
    assert [title for title, _ in sent] == ["swarmops: shop backup failed"]
    assert "cause: the backup of database shop failed" in sent[0][1]


def test_a_missed_backup_is_notified_once_for_its_time_and_an_on_time_one_is_not(tmp_path: Path) -> None:
    w = world(tmp_path)
    notifier, sent = notifier_of(w)
    w.store.record_backup("shop", "schedule", at("02:00", -1).timestamp(), "succeeded", "", "")
    late = schedule_of(w, at("10:00"))    # today's 02:00 passed while the daemon was down
    late.listeners.append(notifier.on_backup)
    [run] = late.tick()
    assert run.ok and run.missed == at("02:00").isoformat()
    notifier.on_backup(run)               # told again (a second listener, a replay): still one message
    on_time = schedule_of(w, at("02:01", 1))
    on_time.listeners.append(notifier.on_backup)
    [next_run] = on_time.tick()
    assert next_run.ok and next_run.missed == ""
    notifier.flush()
    assert [title for title, _ in sent] == ["swarmops: shop backup missed"]
    assert "the backup scheduled for 2026-03-10T02:00:00+00:00 did not run at its time" in sent[0][1]
    assert "succeeded" in sent[0][1]


def test_a_missed_backup_that_fails_is_notified_as_missed_and_as_failed(tmp_path: Path) -> None:
    w = world(tmp_path)
    notifier, sent = notifier_of(w)
    w.store.record_backup("shop", "schedule", at("02:00", -1).timestamp(), "succeeded", "", "")
    w.backups.fail["snapshot"] = JobResult("failed", 1, 0.1, ("pg_dump: connection refused",))
    late = schedule_of(w, at("09:00"))
    late.listeners.append(notifier.on_backup)
    [run] = late.tick()
    notifier.flush()
    assert not run.ok
    assert [title for title, _ in sent] == ["swarmops: shop backup missed", "swarmops: shop backup failed"]


def test_a_failed_backups_notification_shows_the_servers_words_escaped_and_bounded(tmp_path: Path) -> None:
    """A dump's error is what the server said, and the server may be the app's own: its control characters
    (an OSC 52 clipboard write, a bidirectional override) reach the message escaped, and a flood is cut."""
    w = world(tmp_path)
    notifier, sent = notifier_of(w)
    said = ("pg_dump: \x1b]52;c;cm0gLXJmIH4=\x07 \u202egnp.exe\noutcome: succeeded\u2028link: https://evil.example/"
            + "x" * 10_000)
    notifier.on_backup(BackupRun("shop", "schedule", 1.0, False, said, ()))
    notifier.flush()
    [(_, body)] = sent
    assert [line.split(":")[0] for line in body.splitlines()] == ["app", "outcome", "cause"], body[:300]
    assert "\x1b" not in body and "\u202e" not in body and "\\x1b]52" in body and "\\u202e" in body
    assert len(body) < 2_500 and "more characters)" in body


def test_backup_run_on_the_command_line_backs_up_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    w = world(tmp_path)
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {w.config.state_dir}\napps:\n"
                      f"  - {w.app.model_dump_json(exclude_defaults=True)}\n")
    monkeypatch.setattr(cli_backups, "make_adapters", lambda _config, _store: w.adapters)
    assert main(["--config", str(config), "backup", "run", "shop"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("shop: backup succeeded: ") and "-backup-shop" in out
    w.backups.fail["snapshot"] = JobResult("failed", 1, 0.1, ("pg_dump: no",))
    assert main(["--config", str(config), "backup", "run", "shop"]) == 1
    assert "shop: backup failed: the backup of database shop failed" in capsys.readouterr().out


def test_a_port_in_digits_other_than_ascii_wires_no_database() -> None:
    """"²".isdigit() is true and int("²") raises: a live spec's DB_PORT must not crash the backups."""
    env = ["DB_DRIVER=postgres", "DB_HOST=h", "DB_NAME=shop", "DB_USER=u", "DB_PASSWORD_FILE=/run/secrets/pw"]
    secrets = [{"SecretName": "shop_pw", "File": {"Name": "pw"}}]
    for port, wired in (("5432", True), ("²", False), ("٥٤٣٢", False), ("0", False), ("70000", False)):
        template = {"ContainerSpec": {"Env": [*env, f"DB_PORT={port}"], "Secrets": secrets}}
        assert (wired_database(template) is not None) is wired, port


def test_one_apps_crashing_backup_never_stops_the_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path)
    schedule = schedule_of(w, at("03:00"))

    def crash(app: AppConfig, trigger: str = "schedule") -> BackupRun:
        raise ValueError("a bug")
    monkeypatch.setattr(schedule, "run", crash)
    assert schedule.tick() == []
    assert "backup of shop crashed" in caplog.text

"""`swarmops backup run|list|restore`: a backup of an app's databases now (the daemon's schedule runs the
same), the backup store's snapshots of an app with what its history says of each, and a restore that pauses
the app around the job. Shared by the CLI and the daemon (and, later, the HTTP API)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from swarmops.adapters.store import RUNNING
from swarmops.adapters.store.backups import BACKUP_FAILED, BACKUP_OK, BackupRecord
from swarmops.config.models import AppConfig
from swarmops.domain.backups import SNAPSHOT_ID, BackupRun, SnapshotFile, backup_id
from swarmops.domain.hooks import JobResult
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Snapshot, database_in, not_wired, snapshots_from_json, snapshots_to_json
from swarmops.errors import BackupError, BusyError, ConfigError, SwarmopsError
from swarmops.reconcile.ports import Backups, Store

HISTORY_READ = 500   # deploys (and backup runs) looked at for a snapshot's record


class BackupStore(Store, Protocol):
    """The state store's part a backup run uses: the history (is a deploy running?) and the backup runs."""

    def record_backup(self, app: str, trigger: str, started: float, result: str, message: str,
                      snapshots: str) -> int: ...

    def backups(self, app: str, limit: int = 50) -> list[BackupRecord]: ...


def _said(result: JobResult) -> str:
    return " | ".join(line for line in result.log_tail[-5:] if line.strip()) or result.message


def run_backup(store: BackupStore, backups: Backups, read_live: Callable[[str], LiveStack], app: AppConfig,
               trigger: str, cancel: threading.Event, now: Callable[[], datetime] = lambda: datetime.now(UTC)
               ) -> BackupRun:
    """Dump each database of the app's `backup` entry into the store as the deployed stack wires it (read
    from the live services' specs: no git), then keep its newest `keep` backups; record the run. Refused
    (BusyError, nothing recorded) while a deploy of the app runs."""
    settings = app.backup
    if settings is None:
        raise ConfigError(f"{app.name} has no backup entry in apps.d: add backup: {{databases: [NAME], schedule: "
                          "\"02:00\"}")
    last = store.history(app.name, 1)
    if last and last[0].result == RUNNING:
        raise BusyError(f"a deploy of {app.name} is running; its backup waits until it has ended", app=app.name)
    started = now().timestamp()
    taken: list[Snapshot] = []
    failures: list[str] = []
    kind = ""
    try:
        live = read_live(app.name)
        specs = {short: svc.spec for short, svc in live.services.items() if svc.managed and not svc.job}
        commit = live.deployed_commit() or ""
        for name in settings.databases:
            db = database_in(specs, name, live.networks)
            if db is None:
                failures.append(not_wired(app.name, name) if specs else
                                f"{app.name}: nothing of it is deployed, so database {name} cannot be found")
                continue
            sid = backup_id(now(), name)
            result = backups.snapshot(app.name, db, sid, cancel)
            if not result.ok:
                failures.append(f"the backup of database {name} failed ({result.state}, exit code "
                                f"{result.exit_code}): {_said(result)}")
                continue
            taken.append(Snapshot(sid, commit, "", db, backups.where(app.name, sid)))
            pruned = backups.prune(app.name, db, settings.keep, cancel)
            if not pruned.ok:
                failures.append(f"backup {sid} was taken, but removing the backups of {name} beyond the newest "
                                f"{settings.keep} failed ({pruned.state}): {_said(pruned)}")
        kind = "BackupError" if failures else ""
    except SwarmopsError as e:
        failures.append(f"{app.name}: {e}")
        kind = e.kind
    message = "; ".join(failures) or ", ".join(f"{s.id} ({s.where})" for s in taken)
    store.record_backup(app.name, trigger, started, BACKUP_FAILED if failures else BACKUP_OK, message,
                        snapshots_to_json(taken))
    return BackupRun(app.name, trigger, started, not failures, message, tuple(taken), kind)


@dataclass(frozen=True)
class Listed:
    file: SnapshotFile
    record: Snapshot | None   # what the deploy that took it recorded (None: not in this history)


def recorded(store: BackupStore, app: str) -> dict[str, Snapshot]:
    """Every snapshot the app's history and its backup runs record, by id (the newest record of an id wins)."""
    found: dict[str, Snapshot] = {}
    for deploy in store.history(app, HISTORY_READ):
        for snap in snapshots_from_json(deploy.snapshots):
            found.setdefault(snap.id, snap)
    for run in store.backups(app, HISTORY_READ):
        for snap in snapshots_from_json(run.snapshots):
            found.setdefault(snap.id, snap)
    return found


def list_snapshots(store: BackupStore, backups: Backups, app: AppConfig, cancel: threading.Event) -> list[Listed]:
    records = recorded(store, app.name)
    return [Listed(f, records.get(f.id)) for f in backups.list(app.name, cancel)]


def restore(store: BackupStore, backups: Backups, app: AppConfig, snapshot: str, cancel: threading.Event) -> str:
    """Pause the app, restore the snapshot into the database its record names, resume it (unless it was
    paused before). A failed restore leaves the app paused and says so."""
    if not SNAPSHOT_ID.match(snapshot):
        raise ConfigError(f"{snapshot!r} is not a snapshot id like 20260101T020000Z-0123456789ab "
                          "(a migration's) or 20260101T020000Z-backup-NAME (a backup of database NAME); "
                          f"`swarmops backup list {app.name}` lists them")
    record = recorded(store, app.name).get(snapshot)
    if record is None:
        raise BackupError(f"snapshot {snapshot} is not in the history of {app.name}, so swarmops does not know "
                          f"which database it belongs to; `swarmops backup list {app.name}` lists them")
    last = store.history(app.name, 1)
    if last and last[0].result == RUNNING:
        raise BusyError(f"a deploy of {app.name} is running; restore when it has ended", app=app.name)
    was_paused = store.app_state(app.name).paused
    store.set_app(app.name, paused=True)
    try:
        result = backups.restore(app.name, record.database, snapshot, cancel)
    except SwarmopsError as e:
        raise BackupError(f"{e}; {app.name} stays paused (`swarmops resume {app.name}`)", action="restore") from e
    if not result.ok:
        shown = " | ".join(line for line in result.log_tail[-5:] if line.strip()) or result.message
        raise BackupError(f"the restore of snapshot {snapshot} into database {record.database.name} failed "
                          f"({result.state}, exit code {result.exit_code}): {shown}; {app.name} stays paused "
                          f"(`swarmops resume {app.name}`)", action="restore", state=result.state,
                          exit_code=result.exit_code)
    if not was_paused:
        store.set_app(app.name, paused=False)
    return (f"{app.name}: restored snapshot {snapshot} ({record.about}) into database {record.database.name} in "
            f"{result.seconds:.1f}s"
            + ("" if was_paused else "; auto-sync resumed"))

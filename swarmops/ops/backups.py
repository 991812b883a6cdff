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
from swarmops.domain.backups import (
    SNAPSHOT_ID,
    VOLUME_ID,
    BackupRun,
    SnapshotFile,
    backup_id,
    volume_archive_id,
    volume_nodes,
)
from swarmops.domain.hooks import JobResult
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Snapshot, database_in, not_wired, snapshots_from_json, snapshots_to_json
from swarmops.errors import BackupError, BusyError, ConfigError, SwarmopsError
from swarmops.reconcile.ports import Backups, Store, SwarmReader, VolumeStore

HISTORY_READ = 500   # deploys (and backup runs) looked at for a snapshot's record


class BackupStore(Store, Protocol):
    """The state store's part a backup run uses: the history (is a deploy running?) and the backup runs."""

    def record_backup(self, app: str, trigger: str, started: float, result: str, message: str,
                      snapshots: str) -> int: ...

    def backups(self, app: str, limit: int = 50) -> list[BackupRecord]: ...


def _said(result: JobResult) -> str:
    return " | ".join(line for line in result.log_tail[-5:] if line.strip()) or result.message


def read_for_backup(reader: SwarmReader, app: AppConfig) -> LiveStack:
    """The services' specs (one call), and with volumes to back up their tasks and nodes too."""
    return reader.read_app(app.name, services_only=not (app.backup and app.backup.volumes))


def run_backup(store: BackupStore, backups: Backups, read_live: Callable[[str], LiveStack], app: AppConfig,
               trigger: str, cancel: threading.Event, now: Callable[[], datetime] = lambda: datetime.now(UTC),
               volumes: VolumeStore | None = None) -> BackupRun:
    """Dump each database of the app's `backup` entry into the store as the deployed stack wires it (read
    from the live services' specs: no git), archive each of its volumes into the app's bucket of the S3 store,
    then keep the newest `keep` of each; record the run. Refused (BusyError, nothing recorded) while a deploy
    of the app runs."""
    settings = app.backup
    if settings is None:
        raise ConfigError(f"{app.name} has no backup entry in apps.d: add backup: {{databases: [NAME], schedule: "
                          "\"02:00\"}")
    last = store.history(app.name, 1)
    if last and last[0].result == RUNNING:
        raise BusyError(f"a deploy of {app.name} is running; its backup waits until it has ended", app=app.name)
    started = now().timestamp()
    taken: list[Snapshot] = []
    archived: list[str] = []
    failures: list[str] = []
    kind = ""
    try:
        live = read_live(app.name)
        taken = _databases(backups, live, app, settings.databases, settings.keep, failures, cancel, now)
        archived = _volumes(volumes, live, app, failures, cancel, now)
        kind = "BackupError" if failures else ""
    except SwarmopsError as e:
        failures.append(f"{app.name}: {e}")
        kind = e.kind
    message = "; ".join(failures) or ", ".join([f"{s.id} ({s.where})" for s in taken] + archived)
    store.record_backup(app.name, trigger, started, BACKUP_FAILED if failures else BACKUP_OK, message,
                        snapshots_to_json(taken))
    return BackupRun(app.name, trigger, started, not failures, message, tuple(taken), kind)


def _databases(backups: Backups, live: LiveStack, app: AppConfig, names: list[str], keep: int, failures: list[str],
               cancel: threading.Event, now: Callable[[], datetime]) -> list[Snapshot]:
    specs = {short: svc.spec for short, svc in live.services.items() if svc.managed and not svc.job}
    commit = live.deployed_commit() or ""
    taken = []
    for name in names:
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
        pruned = backups.prune(app.name, db, keep, cancel)
        if not pruned.ok:
            failures.append(f"backup {sid} was taken, but removing the backups of {name} beyond the newest "
                            f"{keep} failed ({pruned.state}): {_said(pruned)}")
    return taken


def volume_node(live: LiveStack, app: str, volume: str) -> tuple[str, str]:
    """The Swarm volume of the stack file's key `volume` and the one node it is on (BackupError otherwise:
    a local volume is one per node its tasks ran on, so several nodes are several different volumes)."""
    source = f"{app}_{volume}"
    nodes = volume_nodes(live, source)
    if not nodes:
        raise BackupError(f"{app}: no running task mounts volume {volume} ({source}), so swarmops cannot tell which "
                          "node holds it: deploy the service that uses it, or remove it from backup.volumes",
                          action="volume")
    if len(nodes) > 1:
        names = sorted(live.nodes[n].hostname if n in live.nodes else n for n in nodes)
        raise BackupError(f"{app}: volume {volume} ({source}) is mounted by running tasks on {', '.join(names)}: a "
                          "local volume is a different one on each node; place the service that uses it on one node "
                          "(a constraint on node.hostname) to back it up", action="volume")
    return source, next(iter(nodes))


def _volumes(volumes: VolumeStore | None, live: LiveStack, app: AppConfig, failures: list[str],
             cancel: threading.Event, now: Callable[[], datetime]) -> list[str]:
    settings = app.backup
    if settings is None or not settings.volumes:
        return []
    if volumes is None or settings.s3 is None:
        failures.append(f"{app.name}: this swarmops has no S3 store (backup_s3 in its config), so volumes "
                        f"{', '.join(settings.volumes)} cannot be backed up")
        return []
    archived = []
    for volume in settings.volumes:
        try:
            source, node = volume_node(live, app.name, volume)
        except BackupError as e:
            failures.append(str(e))
            continue
        archive = volume_archive_id(now(), volume)
        result = volumes.backup(app.name, settings.s3, source, node, archive, cancel)
        if not result.ok:
            failures.append(f"the backup of volume {volume} failed ({result.state}, exit code {result.exit_code}): "
                            f"{_said(result)}")
            continue
        archived.append(f"{archive} ({volumes.where(app.name, settings.s3, archive)})")
        pruned = volumes.prune(app.name, settings.s3, volume, settings.keep, cancel)
        if not pruned.ok:
            failures.append(f"archive {archive} was taken, but removing the archives of volume {volume} beyond the "
                            f"newest {settings.keep} failed ({pruned.state}): {_said(pruned)}")
    return archived


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


def list_snapshots(store: BackupStore, backups: Backups, app: AppConfig, cancel: threading.Event,
                   volumes: VolumeStore | None = None) -> list[Listed]:
    """The db store's snapshots of the app, then its volume archives in the S3 store (when it backs any up)."""
    records = recorded(store, app.name)
    # the db store holds what migrations and database backups took: an app with neither has nothing there
    volumes_only = app.backup is not None and not app.backup.databases and not records
    found = [] if volumes_only else [Listed(f, records.get(f.id)) for f in backups.list(app.name, cancel)]
    if volumes is not None and app.backup is not None and app.backup.s3 is not None:
        found += [Listed(f, None) for f in volumes.list(app.name, app.backup.s3, cancel)]
    return found


def restore(store: BackupStore, backups: Backups, app: AppConfig, snapshot: str, cancel: threading.Event,
            volumes: VolumeStore | None = None, read_live: Callable[[str], LiveStack] | None = None) -> str:
    """Pause the app, restore the snapshot into the database its record names (a volume archive: into the
    volume it names, on the node that volume is on now), resume it (unless it was paused before). A failed
    restore leaves the app paused and says so."""
    if not SNAPSHOT_ID.match(snapshot):
        raise ConfigError(f"{snapshot!r} is not a snapshot id like 20260101T020000Z-0123456789ab "
                          "(a migration's), 20260101T020000Z-backup-NAME (a backup of database NAME) or "
                          "20260101T020000Z-volume-NAME (an archive of volume NAME); "
                          f"`swarmops backup list {app.name}` lists them")
    if VOLUME_ID.match(snapshot):
        return _restore_volume(store, volumes, read_live, app, snapshot, cancel)
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


def _restore_volume(store: BackupStore, volumes: VolumeStore | None, read_live: Callable[[str], LiveStack] | None,
                    app: AppConfig, archive: str, cancel: threading.Event) -> str:
    volume = archive.split("-volume-", 1)[1]
    if volumes is None or read_live is None or app.backup is None or app.backup.s3 is None:
        raise BackupError(f"{archive} is an archive of volume {volume} in the S3 store, and {app.name}'s entry names "
                          "no bucket there (backup.s3) or this swarmops no S3 store (backup_s3)", action="restore")
    last = store.history(app.name, 1)
    if last and last[0].result == RUNNING:
        raise BusyError(f"a deploy of {app.name} is running; restore when it has ended", app=app.name)
    source, node = volume_node(read_live(app.name), app.name, volume)
    was_paused = store.app_state(app.name).paused
    store.set_app(app.name, paused=True)
    try:
        result = volumes.restore(app.name, app.backup.s3, source, node, archive, volume, cancel)
    except SwarmopsError as e:
        raise BackupError(f"{e}; {app.name} stays paused (`swarmops resume {app.name}`)", action="restore") from e
    if not result.ok:
        raise BackupError(f"the restore of archive {archive} into volume {volume} failed ({result.state}, exit code "
                          f"{result.exit_code}): {_said(result)}; {app.name} stays paused (`swarmops resume "
                          f"{app.name}`)", action="restore", state=result.state, exit_code=result.exit_code)
    if not was_paused:
        store.set_app(app.name, paused=False)
    return (f"{app.name}: restored archive {archive} into volume {volume} ({source}) in {result.seconds:.1f}s"
            + ("" if was_paused else "; auto-sync resumed"))

"""`swarmops backup list|restore`: the backup store's snapshots of an app, with what its history says of
each, and a restore that pauses the app around the job. Shared by the CLI (and, later, the HTTP API)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from swarmops.adapters.store import RUNNING
from swarmops.config.models import AppConfig
from swarmops.domain.backups import SNAPSHOT_ID, SnapshotFile
from swarmops.domain.migrations import Snapshot, snapshots_from_json
from swarmops.errors import BackupError, BusyError, ConfigError, SwarmopsError
from swarmops.reconcile.ports import Backups, Store

HISTORY_READ = 500   # deploys looked at for a snapshot's record


@dataclass(frozen=True)
class Listed:
    file: SnapshotFile
    record: Snapshot | None   # what the deploy that took it recorded (None: not in this history)


def recorded(store: Store, app: str) -> dict[str, Snapshot]:
    """Every snapshot the app's history records, by id (the newest record of an id wins)."""
    found: dict[str, Snapshot] = {}
    for deploy in store.history(app, HISTORY_READ):
        for snap in snapshots_from_json(deploy.snapshots):
            found.setdefault(snap.id, snap)
    return found


def list_snapshots(store: Store, backups: Backups, app: AppConfig, cancel: threading.Event) -> list[Listed]:
    records = recorded(store, app.name)
    return [Listed(f, records.get(f.id)) for f in backups.list(app.name, cancel)]


def restore(store: Store, backups: Backups, app: AppConfig, snapshot: str, cancel: threading.Event) -> str:
    """Pause the app, restore the snapshot into the database its record names, resume it (unless it was
    paused before). A failed restore leaves the app paused and says so."""
    if not SNAPSHOT_ID.match(snapshot):
        raise ConfigError(f"{snapshot!r} is not a snapshot id like 20260101T020000Z-0123456789ab; "
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
    return (f"{app.name}: restored snapshot {snapshot} (taken before migration {record.hook} of "
            f"{record.commit[:12]}) into database {record.database.name} in {result.seconds:.1f}s"
            + ("" if was_paused else "; auto-sync resumed"))

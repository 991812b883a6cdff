"""Scheduled backups in the daemon: every tick, each app whose `backup` entry is due (domain/backups.py's
`backup_due`, from its last run in the state database, so a restart keeps the schedule and a time missed
while the daemon was down runs once at its start) is backed up under the app's reconcile lock, so never
beside a deploy of it. A run's result goes to the listeners (notifications, the status cache)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

from swarmops.config.models import AppConfig, Config
from swarmops.domain.backups import BackupRun, backup_due, missed_slot
from swarmops.errors import BusyError
from swarmops.ops.backups import BackupStore, read_for_backup, run_backup
from swarmops.reconcile.ports import Backups, VolumeStore
from swarmops.reconcile.reconciler import Reconciler

log = logging.getLogger("swarmops.backups")
TICK_SECONDS = 30.0   # how often the daemon asks whether a backup is due: a run starts at most this late


class BackupSchedule:
    def __init__(self, config: Config, store: BackupStore, backups: Backups, reconciler: Reconciler,
                 cancel: threading.Event, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 volumes: VolumeStore | None = None) -> None:
        self.config = config
        self.volumes = volumes
        self.store = store
        self.backups = backups
        self.reconciler = reconciler
        self.cancel = cancel
        self.now = now
        self.listeners: list[Callable[[BackupRun], None]] = []

    def due(self, app: AppConfig) -> tuple[bool, datetime | None]:
        """Whether the app's backup runs now, and the scheduled time it is too late for (None: on time)."""
        if app.backup is None:
            return False, None
        last = self.store.backups(app.name, 1)
        last_run = datetime.fromtimestamp(last[0].started, UTC) if last else None
        now = self.now()
        return backup_due(now, app.backup.schedule, last_run), missed_slot(now, app.backup.schedule, last_run)

    def tick(self, stop: threading.Event | None = None) -> list[BackupRun]:
        """Every due app backed up, one after another; an app whose reconcile runs waits for the next tick."""
        done = []
        for app in self.config.apps:
            if stop is not None and stop.is_set():
                break
            due, missed = self.due(app)
            if not due:
                continue
            try:
                run = self.reconciler.when_idle(app.name, partial(self.run, app, missed=missed))
            except BusyError as e:
                log.info("backup of %s waits for the next tick: %s", app.name, e)
                continue
            except Exception:   # one app's fault or a bug never stops the other apps' backups
                log.exception("backup of %s crashed", app.name)
                continue
            done.append(run)
        return done

    def run(self, app: AppConfig, trigger: str = "schedule", missed: datetime | None = None) -> BackupRun:
        reader = self.reconciler.reader
        run = run_backup(self.store, self.backups, lambda name: read_for_backup(reader, app), app, trigger,
                         self.cancel, self.now, self.volumes)
        if missed is not None:
            run = replace(run, missed=missed.isoformat())
        log.log(logging.INFO if run.ok else logging.ERROR, "backup", extra={"fields": {
            "app": app.name, "trigger": trigger, "result": "succeeded" if run.ok else "failed",
            "snapshots": [s.id for s in run.snapshots], "message": run.message, "missed": run.missed}})
        for listener in self.listeners:
            try:
                listener(run)
            except Exception:   # a listener's bug never fails a backup or the tick
                log.exception("backup listener failed for %s", app.name)
        return run

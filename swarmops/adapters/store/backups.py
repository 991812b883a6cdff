"""The backups swarmops ran (scheduled, at start for a missed time, or `swarmops backup run`): one entry per
run of an app, with its result and the snapshots it took, so that the schedule's last run, status and
/metrics survive a restart, and `swarmops backup restore` knows each backup's database. Bounded per app."""

from __future__ import annotations

import time
from dataclasses import dataclass

from swarmops.adapters.store.db import Database

BACKUPS_KEPT = 500   # runs per app: more than any retention keeps (keep is at most 400)
BACKUP_OK = "succeeded"
BACKUP_FAILED = "failed"


@dataclass(frozen=True)
class BackupRecord:
    id: int
    app: str
    trigger: str        # schedule, manual
    started: float
    ended: float
    result: str         # succeeded, failed
    message: str
    snapshots: str      # JSON: the snapshots it took (migrations.snapshots_to_json)


class BackupRecords(Database):
    schema = """
CREATE TABLE IF NOT EXISTS backups (
  id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, trigger TEXT NOT NULL, started REAL NOT NULL,
  ended REAL NOT NULL, result TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', snapshots TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS backups_app ON backups(app, id);
"""

    def record_backup(self, app: str, trigger: str, started: float, result: str, message: str,
                      snapshots: str) -> int:
        with self._tx() as c:
            cur = c.execute("INSERT INTO backups(app, trigger, started, ended, result, message, snapshots) "
                            "VALUES (?,?,?,?,?,?,?)", (app, trigger, started, time.time(), result, message, snapshots))
            c.execute("DELETE FROM backups WHERE app=? AND id NOT IN (SELECT id FROM backups WHERE app=? "
                      "ORDER BY id DESC LIMIT ?)", (app, app, BACKUPS_KEPT))
            return int(cur.lastrowid or 0)

    def backups(self, app: str, limit: int = 50) -> list[BackupRecord]:
        with self._tx() as c:
            rows = c.execute("SELECT * FROM backups WHERE app=? ORDER BY id DESC LIMIT ?", (app, limit)).fetchall()
        return [BackupRecord(**dict(r)) for r in rows]

    def last_backup(self, app: str) -> BackupRecord | None:
        found = self.backups(app, 1)
        return found[0] if found else None

    def last_good_backup(self, app: str) -> BackupRecord | None:
        with self._tx() as c:
            row = c.execute("SELECT * FROM backups WHERE app=? AND result=? ORDER BY id DESC LIMIT 1",
                            (app, BACKUP_OK)).fetchone()
        return BackupRecord(**dict(row)) if row else None

"""Per-app facts the Swarm does not hold: a failed commit, pause, the last error and its episode (when
a fault was seen and when it cleared), the last head, drift, an interrupted deploy to resolve."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from swarmops.adapters.store.db import Database

# per-app columns: added one by one so that an older database is upgraded in place
APP_COLUMNS = {"failed_commit": "TEXT NOT NULL DEFAULT ''", "paused": "INTEGER NOT NULL DEFAULT 0",
               "last_error": "TEXT NOT NULL DEFAULT ''", "last_error_at": "REAL NOT NULL DEFAULT 0",
               "last_head": "TEXT NOT NULL DEFAULT ''", "drift": "TEXT NOT NULL DEFAULT ''",
               "pending_check": "INTEGER NOT NULL DEFAULT 0", "last_error_kind": "TEXT NOT NULL DEFAULT ''",
               "last_fault": "TEXT NOT NULL DEFAULT ''", "last_fault_at": "REAL NOT NULL DEFAULT 0",
               "fault_cleared_at": "REAL NOT NULL DEFAULT 0"}


@dataclass(frozen=True)
class AppState:
    app: str
    failed_commit: str = ""
    paused: bool = False
    last_error: str = ""
    last_error_at: float = 0.0
    last_head: str = ""
    drift: str = ""
    pending_check: int = 0       # an interrupted deploy to resolve from the live state
    last_error_kind: str = ""    # the error's class, e.g. PolicyError
    last_fault: str = ""         # the last error, kept after it cleared (status shows it and when it cleared)
    last_fault_at: float = 0.0
    fault_cleared_at: float = 0.0


class Flags(Database):
    schema = "CREATE TABLE IF NOT EXISTS apps (app TEXT PRIMARY KEY);"

    def _migrate(self, conn: sqlite3.Connection) -> None:
        super()._migrate(conn)
        have = {row[1] for row in conn.execute("PRAGMA table_info(apps)")}
        for column, decl in APP_COLUMNS.items():
            if column not in have:
                conn.execute(f"ALTER TABLE apps ADD COLUMN {column} {decl}")

    def app_state(self, app: str) -> AppState:
        with self._tx() as c:
            row = c.execute("SELECT * FROM apps WHERE app=?", (app,)).fetchone()
        if row is None:
            return AppState(app=app)
        data = dict(row)
        data["paused"] = bool(data["paused"])
        return AppState(**data)

    def set_app(self, app: str, **fields: Any) -> None:
        """Change per-app facts; writes nothing when every value is already as asked."""
        current = self.app_state(app)
        if all(getattr(current, k) == v for k, v in fields.items()):
            return
        if fields.get("last_error") and fields["last_error"] != current.last_error:   # a fault seen
            fields = {**fields, "last_fault": fields["last_error"],
                      "last_fault_at": fields.get("last_error_at") or time.time(), "fault_cleared_at": 0.0}
        elif fields.get("last_error") == "" and current.last_error:                   # and now cleared
            fields = {**fields, "fault_cleared_at": time.time()}
        merged = {**asdict(current), **fields}
        columns = list(APP_COLUMNS)
        values = [int(merged[c]) if c == "paused" else merged[c] for c in columns]
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns)
        with self._tx() as c:
            c.execute(f"INSERT INTO apps(app, {', '.join(columns)}) VALUES (?{', ?' * len(columns)}) "
                      f"ON CONFLICT(app) DO UPDATE SET {updates}", (app, *values))

"""The deploy history: one entry per deploy (running, then succeeded, failed or interrupted), with the
process that runs it, so that one left running by a process that is gone is found."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmops.adapters.store.db import Database

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Deploy:
    id: int
    app: str
    commit_sha: str
    author: str
    message: str
    trigger: str
    started: float
    ended: float | None
    result: str
    error: str
    rollback_to: str
    render_dir: str
    builds: str
    restarted: str
    hooks: str = ""    # JSON: the hooks that ran (name, kind, state, exit code, seconds, log tail)
    snapshots: str = ""   # JSON: the snapshots taken before its migrations (id, hook, database, migrated)
    actor: str = ""       # who asked for it (token:NAME, user:LOGIN, cli:USER); empty for a poll or a push

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class History(Database):
    schema = """
CREATE TABLE IF NOT EXISTS deploys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app TEXT NOT NULL, commit_sha TEXT NOT NULL, author TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '', trigger TEXT NOT NULL, started REAL NOT NULL, ended REAL,
  result TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', rollback_to TEXT NOT NULL DEFAULT '',
  render_dir TEXT NOT NULL DEFAULT '', builds TEXT NOT NULL DEFAULT '', restarted TEXT NOT NULL DEFAULT '',
  hooks TEXT NOT NULL DEFAULT '', snapshots TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deploys_app ON deploys(app, id);
CREATE TABLE IF NOT EXISTS deploy_owners (
  deploy_id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, proc_start TEXT NOT NULL
);
"""

    def _migrate(self, conn: sqlite3.Connection) -> None:
        super()._migrate(conn)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(deploys)")}
        for column in ("hooks", "snapshots", "actor"):
            if column not in columns:
                conn.execute(f"ALTER TABLE deploys ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")

    def start_deploy(self, app: str, commit: str, author: str, message: str, trigger: str,
                     render_dir: str, actor: str = "") -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO deploys(app, commit_sha, author, message, trigger, started, result, render_dir, actor)"
                " VALUES (?,?,?,?,?,?,?,?,?)", (app, commit, author, message, trigger, time.time(), RUNNING,
                                                render_dir, actor))
            deploy_id = int(cur.lastrowid or 0)
            c.execute("INSERT OR REPLACE INTO deploy_owners VALUES (?,?,?,?)",
                      (deploy_id, socket.gethostname(), os.getpid(), _proc_start(os.getpid())))
            return deploy_id

    def orphaned(self, app: str) -> list[int]:
        """Deploys of `app` left running by a process of this host that is gone (SIGKILL, a crash): the next
        command, daemon or CLI, resolves them (a daemon also does so at start for every app)."""
        with self._tx() as c:
            rows = c.execute("SELECT d.id, o.pid, o.proc_start FROM deploys d JOIN deploy_owners o ON o.deploy_id=d.id"
                             " WHERE d.app=? AND d.result=? AND o.host=?",
                             (app, RUNNING, socket.gethostname())).fetchall()
        return [int(r[0]) for r in rows if _proc_start(int(r[1])) != r[2]]

    def interrupt(self, deploy_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE deploys SET result=?, ended=?, error=CASE WHEN error='' THEN "
                      "'the process running this deploy stopped' ELSE error END WHERE id=? AND result=?",
                      (INTERRUPTED, time.time(), deploy_id, RUNNING))

    def finish_deploy(self, deploy_id: int, result: str, error: str = "", rollback_to: str = "",
                      builds: str = "", restarted: str = "") -> None:
        with self._tx() as c:
            c.execute("UPDATE deploys SET ended=?, result=?, error=?, rollback_to=?, builds=?, restarted=?"
                      " WHERE id=?", (time.time(), result, error, rollback_to, builds, restarted, deploy_id))

    def record_hooks(self, deploy_id: int, hooks: str) -> None:
        """The hooks a deploy ran so far (JSON), kept beside its result."""
        with self._tx() as c:
            c.execute("UPDATE deploys SET hooks=? WHERE id=?", (hooks, deploy_id))

    def record_snapshots(self, deploy_id: int, snapshots: str) -> None:
        """The snapshots a deploy took so far (JSON), kept beside its hooks."""
        with self._tx() as c:
            c.execute("UPDATE deploys SET snapshots=? WHERE id=?", (snapshots, deploy_id))

    def import_history(self, app: str, records: list[dict[str, Any]]) -> int:
        """Entries read back from elsewhere (newest first) that this database lacks, appended oldest first;
        an entry is the same when its start time and commit are. Returns how many were added."""
        columns = [f for f in Deploy.__dataclass_fields__ if f != "id"]
        with self._tx() as c:
            have = {(round(r[0], 3), r[1]) for r in
                    c.execute("SELECT started, commit_sha FROM deploys WHERE app=?", (app,)).fetchall()}
            rows = [tuple(r.get(k, None if k in ("started", "ended") else "") for k in columns)
                    for r in reversed(records) if r.get("app") == app and isinstance(r.get("started"), float | int)
                    and (round(float(r["started"]), 3), r.get("commit_sha")) not in have
                    and r.get("result") != RUNNING]
            c.executemany(f"INSERT INTO deploys({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                          rows)
        return len(rows)

    def interrupt_unfinished(self) -> list[Deploy]:
        """Deploys a previous process left running: marked interrupted, returned for resolution."""
        with self._tx() as c:
            rows = c.execute("SELECT * FROM deploys WHERE result=?", (RUNNING,)).fetchall()
            c.execute("UPDATE deploys SET result=?, ended=?, error=CASE WHEN error='' THEN "
                      "'the daemon stopped during this deploy' ELSE error END WHERE result=?",
                      (INTERRUPTED, time.time(), RUNNING))
        return [Deploy(**dict(r)) for r in rows]

    def get_deploy(self, deploy_id: int) -> Deploy | None:
        with self._tx() as c:
            row = c.execute("SELECT * FROM deploys WHERE id=?", (deploy_id,)).fetchone()
        return Deploy(**dict(row)) if row else None

    def annotate(self, deploy_id: int, error: str, rollback_to: str = "") -> None:
        """Add what was found later to a finished deploy's entry (one entry per deploy, always)."""
        with self._tx() as c:
            c.execute("UPDATE deploys SET error=?, rollback_to=CASE WHEN ?='' THEN rollback_to ELSE ? END "
                      "WHERE id=?", (error, rollback_to, rollback_to, deploy_id))

    def history(self, app: str, limit: int = 50) -> list[Deploy]:
        with self._tx() as c:
            rows = c.execute("SELECT * FROM deploys WHERE app=? ORDER BY id DESC LIMIT ?", (app, limit))
            return [Deploy(**dict(r)) for r in rows.fetchall()]

    def last_deploy(self, app: str) -> Deploy | None:
        found = self.history(app, 1)
        return found[0] if found else None

    def last_good(self, app: str, before_commit: str | None = None) -> Deploy | None:
        with self._tx() as c:
            row = c.execute("SELECT * FROM deploys WHERE app=? AND result=? AND commit_sha != ? "
                            "ORDER BY id DESC LIMIT 1", (app, SUCCEEDED, before_commit or "")).fetchone()
        return Deploy(**dict(row)) if row else None

    def deploy_of(self, app: str, commit: str) -> Deploy | None:
        """The latest successful deploy of `commit` (who wrote it, when it went live)."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM deploys WHERE app=? AND commit_sha=? AND result=? ORDER BY id DESC "
                            "LIMIT 1", (app, commit, SUCCEEDED)).fetchone()
        return Deploy(**dict(row)) if row else None


def _proc_start(pid: int) -> str:
    """A process's identity: its start time since boot ('' when it is gone), so a reused pid is not it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""

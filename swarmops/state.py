"""SQLite history of deploys and the few per-app facts that are not in the Swarm (a failed commit,
pause). History and a cache, never the only truth: what runs is read from the services' labels."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmops.errors import StateError

log = logging.getLogger("swarmops.state")

SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app TEXT NOT NULL, commit_sha TEXT NOT NULL, author TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '', trigger TEXT NOT NULL, started REAL NOT NULL, ended REAL,
  result TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', rollback_to TEXT NOT NULL DEFAULT '',
  render_dir TEXT NOT NULL DEFAULT '', builds TEXT NOT NULL DEFAULT '', restarted TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deploys_app ON deploys(app, id);
CREATE TABLE IF NOT EXISTS apps (app TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS deploy_owners (
  deploy_id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, proc_start TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notified (
  app TEXT NOT NULL, commit_sha TEXT NOT NULL, event TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (app, commit_sha, event)
);
"""
NOTIFIED_KEPT = 200   # per app: enough to dedupe retries and restarts, bounded
# per-app columns: added one by one so that an older database is upgraded in place
APP_COLUMNS = {"failed_commit": "TEXT NOT NULL DEFAULT ''", "paused": "INTEGER NOT NULL DEFAULT 0",
               "last_error": "TEXT NOT NULL DEFAULT ''", "last_error_at": "REAL NOT NULL DEFAULT 0",
               "last_head": "TEXT NOT NULL DEFAULT ''", "drift": "TEXT NOT NULL DEFAULT ''",
               "pending_check": "INTEGER NOT NULL DEFAULT 0", "last_error_kind": "TEXT NOT NULL DEFAULT ''",
               "last_fault": "TEXT NOT NULL DEFAULT ''", "last_fault_at": "REAL NOT NULL DEFAULT 0",
               "fault_cleared_at": "REAL NOT NULL DEFAULT 0"}

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._applied: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}   # one entry per app at most
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create {path.parent}: {e.strerror}") from e
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(apps)")}
            for column, decl in APP_COLUMNS.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE apps ADD COLUMN {column} {decl}")
            conn.execute("SELECT count(*) FROM deploys").fetchone()
            return conn
        except sqlite3.DatabaseError as e:
            if "not a database" not in str(e) and "malformed" not in str(e):
                raise StateError(self._explain(e)) from e
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.rename(aside)
            log.error("state database %s is corrupt (%s); moved it to %s and started a new one; "
                      "what is deployed is read back from the services' labels", self.path, e, aside)
            return self._open()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.Error as e:
                raise StateError(self._explain(e)) from e

    def _explain(self, e: sqlite3.Error) -> str:
        """SQLite says "disk I/O error" when the disk is full; the operator needs to hear that."""
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            free = -1
        if 0 <= free < 1024 * 1024 or "full" in str(e):
            return (f"state database {self.path}: no space left under {self.path.parent} ({free} bytes free); "
                    "free some space: nothing was changed, the running version keeps serving")
        return f"state database {self.path}: {e}"

    def start_deploy(self, app: str, commit: str, author: str, message: str, trigger: str,
                     render_dir: str) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO deploys(app, commit_sha, author, message, trigger, started, result, render_dir)"
                " VALUES (?,?,?,?,?,?,?,?)", (app, commit, author, message, trigger, time.time(), RUNNING,
                                              render_dir))
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

    def claim_notification(self, app: str, commit: str, event: str) -> bool:
        """True the first time (app, commit, event) is claimed, across restarts of the daemon."""
        with self._tx() as c:
            cur = c.execute("INSERT OR IGNORE INTO notified(app, commit_sha, event, at) VALUES (?,?,?,?)",
                            (app, commit, event, time.time()))
            if cur.rowcount:
                c.execute("DELETE FROM notified WHERE app=? AND rowid NOT IN (SELECT rowid FROM notified "
                          "WHERE app=? ORDER BY at DESC LIMIT ?)", (app, app, NOTIFIED_KEPT))
            return bool(cur.rowcount)

    def forget_notification(self, app: str, event: str) -> None:
        """Let the next (app, *, event) notify again (an episode such as a degradation has ended)."""
        with self._tx() as c:
            c.execute("DELETE FROM notified WHERE app=? AND event=?", (app, event))

    def applied_path(self, app: str) -> Path:
        return self.path.parent / "applied" / f"{app}.json"

    def save_applied(self, app: str, record: dict[str, Any]) -> None:
        """What the last successful deploy left running (for drift detection), written atomically."""
        path = self.applied_path(app)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, sort_keys=True))
            tmp.replace(path)
        except OSError as e:
            raise StateError(f"cannot write {path}: {e.strerror or e}") from e

    def load_applied(self, app: str) -> dict[str, Any]:
        """Read on every no-change check: parsed again only when the file changed (its stat says so)."""
        path = self.applied_path(app)
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
            cached = self._applied.get(app)
            if cached is not None and cached[0] == key:
                return dict(cached[1])
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        self._applied[app] = (key, data)
        return dict(data)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _proc_start(pid: int) -> str:
    """A process's identity: its start time since boot ('' when it is gone), so a reused pid is not it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""

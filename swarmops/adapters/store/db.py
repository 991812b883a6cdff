"""The state database: one SQLite file under state_dir (WAL), opened once, written in short transactions.
Each concept keeps its own table in its own module (history, flags, notified) over this connection."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swarmops.errors import StateError

log = logging.getLogger("swarmops.state")


class Database:
    #: each concept's tables, created when missing
    schema = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create {path.parent}: {e.strerror}") from e
        self._conn = self._open()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Upgrade an older database in place (a concept adds its columns)."""

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            _wal(conn)
            self._create(conn)
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

    def _create(self, conn: sqlite3.Connection) -> None:
        """Tables and columns in one write transaction: two processes opening a new database at once
        (the daemon and a CLI command) would otherwise both see a column missing and both add it."""
        schemas = [s for cls in reversed(type(self).__mro__) if (s := cls.__dict__.get("schema"))]
        implicit, conn.isolation_level = conn.isolation_level, None
        try:
            conn.executescript("BEGIN IMMEDIATE;\n" + "\n".join(schemas))
            self._migrate(conn)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.isolation_level = implicit

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

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """WAL mode, asked again while another process holds the new database's first transaction: SQLite
    answers a journal mode change with "database is locked" at once, without its busy timeout."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)

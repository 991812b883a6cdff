"""Which notifications were sent, per (app, commit, event), so that a retry or a restart does not send
one again; bounded per app."""

from __future__ import annotations

import time

from swarmops.adapters.store.db import Database

NOTIFIED_KEPT = 200   # per app: enough to dedupe retries and restarts, bounded


class Notified(Database):
    schema = """
CREATE TABLE IF NOT EXISTS notified (
  app TEXT NOT NULL, commit_sha TEXT NOT NULL, event TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (app, commit_sha, event)
);
"""

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

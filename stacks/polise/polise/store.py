"""Polise's data in PostgreSQL (the db node's stack): ratings, and reports with their queue to the forge.
The one module that speaks SQL. A connection per call: the database may restart under a running Polise
(a redeploy of the postgres stack), and the next call simply connects again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from polise.sessions import CODE_TTL, MAX_CODES, SESSION_TTL, TooManyCodes, User, digest, new_id

SCHEMA = """
SELECT pg_advisory_xact_lock(7140);  -- one migration at a time, should two replicas start together
CREATE TABLE IF NOT EXISTS ratings (
  app TEXT NOT NULL,
  target TEXT NOT NULL CHECK (target IN ('app', 'docs')),
  user_sub TEXT NOT NULL,
  user_name TEXT NOT NULL,
  stars SMALLINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
  comment TEXT NOT NULL DEFAULT '',
  updated TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (app, target, user_sub)
);
CREATE TABLE IF NOT EXISTS reports (
  id BIGSERIAL PRIMARY KEY,
  app TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('problem', 'security')),
  user_sub TEXT NOT NULL,
  user_name TEXT NOT NULL,
  user_email TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  page TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL DEFAULT '',
  repo TEXT NOT NULL DEFAULT '',
  forge_repo TEXT NOT NULL DEFAULT '',
  created TIMESTAMPTZ NOT NULL DEFAULT now(),
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'filed', 'refused')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_error TEXT NOT NULL DEFAULT '',
  error_kind TEXT NOT NULL DEFAULT '',
  issue_url TEXT NOT NULL DEFAULT '',
  issue_number INTEGER
);
-- a database made by an older Polise: the columns and the state it lacks
ALTER TABLE reports ADD COLUMN IF NOT EXISTS forge_repo TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN IF NOT EXISTS error_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_state_check;
ALTER TABLE reports ADD CONSTRAINT reports_state_check CHECK (state IN ('queued', 'filed', 'refused'));
CREATE INDEX IF NOT EXISTS reports_due ON reports (next_try) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS reports_user ON reports (user_sub, created);
-- sign-in sessions (polise.sessions): the hashes of the ids the browsers hold, never the ids
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  sub TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL DEFAULT '',
  groups TEXT[] NOT NULL DEFAULT '{}',
  created TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE TABLE IF NOT EXISTS sso_codes (
  code TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  host TEXT NOT NULL,
  expires TIMESTAMPTZ NOT NULL
);
ALTER TABLE sso_codes ADD COLUMN IF NOT EXISTS binding TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS app_sessions (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  host TEXT NOT NULL
);
"""


class StoreUnavailable(Exception):
    """The database did not answer: pages say so; a rating or a report is refused, never half-written
    (each is one statement, committed whole or not at all)."""


@dataclass(frozen=True)
class Summary:
    average: float
    count: int


@dataclass(frozen=True)
class Report:
    id: int
    app: str
    kind: str
    user_sub: str
    user_name: str
    user_email: str
    title: str
    body: str
    page: str
    commit_sha: str
    repo: str
    forge_repo: str                 # owner/name from the app entry; "" to take it from `repo`
    created: datetime
    state: str                      # queued, filed, or refused (it cannot be filed: not retried)
    attempts: int
    next_try: datetime
    last_error: str                 # for the log and the ops team, in English
    error_kind: str                 # why it is not filed, a word of reports.REASONS; "" when nothing failed
    issue_url: str
    issue_number: int | None


class Store:
    """The schema is made on the first connection that works, so that a Polise started while the database
    is down serves its public pages and makes the tables once the database answers."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._migrated = False
        self._migrating = threading.Lock()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(self._dsn, row_factory=dict_row, connect_timeout=5) as conn:
                if not self._migrated:
                    with self._migrating, conn.transaction():
                        conn.execute(SCHEMA)
                    self._migrated = True
                yield conn
        except psycopg.OperationalError as e:
            raise StoreUnavailable(f"the database did not answer: {str(e).splitlines()[0]}") from None

    def migrate(self) -> None:
        """Make the schema now (Polise's start calls it; any other call would make it too)."""
        with self._conn():
            pass

    # ratings -------------------------------------------------------------------------------------

    def rate(self, app: str, target: str, user_sub: str, user_name: str, stars: int, comment: str) -> None:
        """One rating per user, app and target: a second one replaces the first."""
        with self._conn() as c:
            c.execute("INSERT INTO ratings (app, target, user_sub, user_name, stars, comment) "
                      "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (app, target, user_sub) DO UPDATE SET "
                      "user_name = EXCLUDED.user_name, stars = EXCLUDED.stars, comment = EXCLUDED.comment, "
                      "updated = now()", (app, target, user_sub, user_name, stars, comment))

    def summaries(self) -> dict[tuple[str, str], Summary]:
        """(app, target) -> average and count, for the catalog."""
        with self._conn() as c:
            rows = c.execute("SELECT app, target, avg(stars)::float AS average, count(*) AS count FROM ratings "
                             "GROUP BY app, target").fetchall()
        return {(r["app"], r["target"]): Summary(round(r["average"], 2), r["count"]) for r in rows}

    def rating_of(self, app: str, target: str, user_sub: str) -> dict[str, Any] | None:
        with self._conn() as c:
            return c.execute("SELECT stars, comment, updated FROM ratings WHERE app = %s AND target = %s AND "
                             "user_sub = %s", (app, target, user_sub)).fetchone()

    def comments(self, app: str) -> list[dict[str, Any]]:
        """What the app's owners read: every rating with a comment, lowest first."""
        with self._conn() as c:
            return c.execute("SELECT target, user_name, stars, comment, updated FROM ratings WHERE app = %s AND "
                             "comment <> '' ORDER BY stars, updated DESC", (app,)).fetchall()

    # reports -------------------------------------------------------------------------------------

    def add_report(self, *, app: str, kind: str, user_sub: str, user_name: str, user_email: str, title: str,
                   body: str, page: str, commit_sha: str, repo: str, forge_repo: str = "") -> int:
        with self._conn() as c:
            row = c.execute("INSERT INTO reports (app, kind, user_sub, user_name, user_email, title, body, page, "
                            "commit_sha, repo, forge_repo) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                            "RETURNING id", (app, kind, user_sub, user_name, user_email, title, body, page,
                                             commit_sha, repo, forge_repo)).fetchone()
        assert row is not None
        return int(row["id"])

    def reports_since(self, user_sub: str, since: datetime) -> int:
        with self._conn() as c:
            row = c.execute("SELECT count(*) AS n FROM reports WHERE user_sub = %s AND created >= %s",
                            (user_sub, since)).fetchone()
        return int(row["n"]) if row else 0

    def report(self, report_id: int) -> Report | None:
        with self._conn() as c:
            row = c.execute("SELECT * FROM reports WHERE id = %s", (report_id,)).fetchone()
        return Report(**row) if row else None

    def reports_of(self, user_sub: str) -> list[Report]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM reports WHERE user_sub = %s ORDER BY id DESC", (user_sub,)).fetchall()
        return [Report(**r) for r in rows]

    def due(self, now: datetime, limit: int = 20) -> list[Report]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM reports WHERE state = 'queued' AND next_try <= %s ORDER BY id LIMIT %s",
                             (now, limit)).fetchall()
        return [Report(**r) for r in rows]

    def filed(self, report_id: int, issue_url: str, issue_number: int) -> None:
        with self._conn() as c:
            c.execute("UPDATE reports SET state = 'filed', issue_url = %s, issue_number = %s, last_error = '', "
                      "error_kind = '', attempts = attempts + 1 WHERE id = %s", (issue_url, issue_number, report_id))

    def retry_later(self, report_id: int, kind: str, error: str, next_try: datetime) -> None:
        with self._conn() as c:
            c.execute("UPDATE reports SET attempts = attempts + 1, error_kind = %s, last_error = %s, next_try = %s "
                      "WHERE id = %s", (kind, error[:500], next_try, report_id))

    def refused(self, report_id: int, kind: str, error: str) -> None:
        """The report cannot be filed for a reason retrying will not fix: it leaves the queue."""
        with self._conn() as c:
            c.execute("UPDATE reports SET state = 'refused', attempts = attempts + 1, error_kind = %s, "
                      "last_error = %s WHERE id = %s", (kind, error[:500], report_id))

    def report_counts(self) -> dict[str, int]:
        """For the ops team's status: reports waiting, stuck (a filing failed, retried) and refused."""
        with self._conn() as c:
            row = c.execute("SELECT count(*) FILTER (WHERE state = 'queued' AND error_kind = '') AS queued, "
                            "count(*) FILTER (WHERE state = 'queued' AND error_kind <> '') AS stuck, "
                            "count(*) FILTER (WHERE state = 'refused') AS refused FROM reports").fetchone()
        assert row is not None
        return {k: int(v) for k, v in row.items()}


class StoreSessions:
    """polise.sessions.Sessions in PostgreSQL, for every replica. Expiry is the database's clock; expired
    rows go when a session is made (an app session goes with its Polise session)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, user: User, ttl: float = SESSION_TTL) -> str:
        sid = new_id()
        with self._store._conn() as c:
            c.execute("DELETE FROM sessions WHERE expires < now()")
            c.execute("INSERT INTO sessions (id, sub, name, email, groups, expires) VALUES "
                      "(%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
                      (digest(sid), user.sub, user.name, user.email, list(user.groups), ttl))
        return sid

    def user(self, sid: str) -> User | None:
        with self._store._conn() as c:
            row = c.execute("SELECT sub, name, email, groups FROM sessions WHERE id = %s AND expires > now()",
                            (digest(sid),)).fetchone()
        return _user(row)

    def end(self, sid: str) -> None:
        with self._store._conn() as c:
            c.execute("DELETE FROM sessions WHERE id = %s", (digest(sid),))

    def mint_code(self, sid: str, host: str, binding: str) -> str | None:
        code = new_id()
        with self._store._conn() as c, c.transaction():
            c.execute("DELETE FROM sso_codes WHERE expires < now()")
            live = c.execute("SELECT count(*) AS n FROM sso_codes WHERE session_id = %s", (digest(sid),)).fetchone()
            if live and int(live["n"]) >= MAX_CODES:
                raise TooManyCodes(digest(sid)[:8])
            row = c.execute("INSERT INTO sso_codes (code, session_id, host, expires, binding) SELECT %s, id, %s, "
                            "now() + make_interval(secs => %s), %s FROM sessions WHERE id = %s AND expires > now() "
                            "RETURNING code", (digest(code), host, CODE_TTL, binding, digest(sid))).fetchone()
        return code if row else None

    def redeem(self, code: str, host: str, binding: str) -> tuple[str, float] | None:
        app_sid = new_id()
        with self._store._conn() as c, c.transaction():
            row = c.execute("DELETE FROM sso_codes WHERE code = %s RETURNING session_id, host, binding, "
                            "expires > now() AS fresh", (digest(code),)).fetchone()
            if row is None or not row["fresh"] or row["host"] != host or not binding or row["binding"] != binding:
                return None
            c.execute("DELETE FROM app_sessions WHERE session_id = %s AND host = %s", (row["session_id"], host))
            left = c.execute("INSERT INTO app_sessions (id, session_id, host) SELECT %s, id, %s FROM sessions WHERE "
                             "id = %s AND expires > now() RETURNING (SELECT extract(epoch FROM expires - now()) FROM "
                             "sessions WHERE id = %s) AS left", (digest(app_sid), host, row["session_id"],
                                                                 row["session_id"])).fetchone()
        return (app_sid, float(left["left"])) if left else None

    def app_user(self, app_sid: str, host: str) -> User | None:
        with self._store._conn() as c:
            row = c.execute("SELECT s.sub, s.name, s.email, s.groups FROM app_sessions a JOIN sessions s ON "
                            "s.id = a.session_id WHERE a.id = %s AND a.host = %s AND s.expires > now()",
                            (digest(app_sid), host)).fetchone()
        return _user(row)


def _user(row: dict[str, Any] | None) -> User | None:
    return User(row["sub"], row["name"], row["email"], tuple(row["groups"])) if row else None

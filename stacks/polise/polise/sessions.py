"""Sign-in sessions, kept on the server (ruling 32). A browser holds only a random id: in Polise's signed
session cookie on Polise's host, and in one host-only cookie per app host behind single sign-on. The server
keeps their hashes (a copy of the table lets nobody in) with the user, the host and the expiry; ending
the Polise session ends every app session made from it.

An app host's cookie is made through a one-time code: Polise's host mints it for one app host, the
session and the browser that asked (the hash of a nonce the app host set in that browser when it sent it
to sign in); that host's `/_sso/callback` (routed to Polise by the proxy) takes it once, within a minute,
from that browser only. One app session per Polise session and host: a new one replaces the old."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

SESSION_TTL = 8 * 3600.0   # seconds: a working day, then sign in again
CODE_TTL = 60.0            # seconds between Polise's redirect and the app host's callback
MAX_CODES = 20             # live codes per session: a loop of /sso/start cannot fill the table


class TooManyCodes(Exception):
    """A session asked for more codes than a browser opening apps would."""


@dataclass(frozen=True)
class User:
    sub: str
    name: str
    email: str
    groups: tuple[str, ...] = ()


def new_id() -> str:
    return secrets.token_urlsafe(32)


def digest(raw: str) -> str:
    """What the server keeps of an id or a code."""
    return hashlib.sha256(raw.encode()).hexdigest()


class Sessions(Protocol):
    def create(self, user: User, ttl: float = SESSION_TTL) -> str:
        """A new session for `user`: its id, for Polise's session cookie."""

    def user(self, sid: str) -> User | None:
        """The user of a live session, None when it ended, expired or never was."""

    def end(self, sid: str) -> None:
        """Sign-out: the session and every app session made from it end."""

    def mint_code(self, sid: str, host: str, binding: str) -> str | None:
        """A one-time code for `host` and the browser whose nonce hashes to `binding`, from a live session;
        None when the session is not live; TooManyCodes past MAX_CODES live ones."""

    def redeem(self, code: str, host: str, binding: str) -> tuple[str, float] | None:
        """An app session for `host` from a code minted for that host and binding (used up here): its id and
        the seconds it has left (its Polise session's); None for a used, expired, unknown, other host's or
        other browser's code."""

    def app_user(self, app_sid: str, host: str) -> User | None:
        """The user of an app session of `host` whose Polise session is live."""


@dataclass
class _Live:
    user: User
    expires: float


@dataclass
class _Bound:
    parent: str    # digest of the Polise session
    host: str
    expires: float
    binding: str = ""


@dataclass
class MemorySessions:
    """Sessions of a Polise without a database (one replica): they end when it restarts."""

    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, _Live] = field(default_factory=dict)
    _codes: dict[str, _Bound] = field(default_factory=dict)
    _apps: dict[str, _Bound] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _now(self) -> float:
        return self.clock()

    def _live(self, key: str) -> _Live | None:
        found = self._sessions.get(key)
        if found is None or found.expires <= self._now():
            self._sessions.pop(key, None)
            return None
        return found

    def _purge(self) -> None:
        now = self._now()
        for table in (self._sessions, self._codes, self._apps):
            for k in [k for k, v in table.items() if v.expires <= now]:
                del table[k]

    def create(self, user: User, ttl: float = SESSION_TTL) -> str:
        sid = new_id()
        with self._lock:
            self._purge()
            self._sessions[digest(sid)] = _Live(user, self._now() + ttl)
        return sid

    def user(self, sid: str) -> User | None:
        with self._lock:
            found = self._live(digest(sid))
        return found.user if found else None

    def end(self, sid: str) -> None:
        key = digest(sid)
        with self._lock:
            self._sessions.pop(key, None)
            for table in (self._codes, self._apps):
                for k in [k for k, b in table.items() if b.parent == key]:
                    del table[k]

    def mint_code(self, sid: str, host: str, binding: str) -> str | None:
        key = digest(sid)
        with self._lock:
            self._purge()
            if self._live(key) is None:
                return None
            if sum(1 for b in self._codes.values() if b.parent == key) >= MAX_CODES:
                raise TooManyCodes(key[:8])
            code = new_id()
            self._codes[digest(code)] = _Bound(key, host, self._now() + CODE_TTL, binding)
        return code

    def redeem(self, code: str, host: str, binding: str) -> tuple[str, float] | None:
        with self._lock:
            bound = self._codes.pop(digest(code), None)
            parent = self._live(bound.parent) if bound else None
            if bound is None or parent is None or bound.host != host or bound.expires <= self._now() \
                    or not binding or bound.binding != binding:
                return None
            for k in [k for k, b in self._apps.items() if b.parent == bound.parent and b.host == host]:
                del self._apps[k]
            app_sid = new_id()
            self._apps[digest(app_sid)] = _Bound(bound.parent, host, parent.expires)
            return app_sid, parent.expires - self._now()

    def app_user(self, app_sid: str, host: str) -> User | None:
        with self._lock:
            bound = self._apps.get(digest(app_sid))
            parent = self._live(bound.parent) if bound and bound.host == host else None
        return parent.user if parent else None

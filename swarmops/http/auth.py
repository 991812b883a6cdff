"""Who may do what over HTTP: API tokens (only as `Authorization: Bearer`), the page's server-side
sessions, and the same-origin check every state-changing form must pass."""

import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from swarmops.domain.access import Principal

COOKIE = "swarmops_session"
PENDING_COOKIE = "swarmops_signin"   # a sign-in at the OpenID Connect provider under way (its id only)
SESSION_TTL = 8 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    who: Principal   # a token's, or a signed-in person's with their groups
    csrf: str
    expires: float


class Sessions:
    """Sessions in the daemon's memory: the cookie holds only a random id (a restart signs everyone out)."""

    def __init__(self, ttl: float = SESSION_TTL) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, who: Principal) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for old in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[old]
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[sid] = Session(who, secrets.token_urlsafe(32), now + self.ttl)
        return sid

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            found = self._sessions.get(sid or "")
        return found if found and found.expires >= time.time() else None

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


def same_origin(request: Request, external_url: str | None) -> bool:
    """The request's Origin (or Referer) is the page's own: external_url's, else the Host it came to."""
    sent = request.headers.get("origin") or request.headers.get("referer") or ""
    parts = urlsplit(sent)
    if not parts.scheme or not parts.netloc:
        return False
    if external_url:
        want = urlsplit(external_url)
        return (parts.scheme, parts.netloc.lower()) == (want.scheme, want.netloc.lower())
    return parts.netloc.lower() == request.headers.get("host", "").lower()


def bearer_token(authorization: str | None) -> str | None:
    """The API takes a token only as `Authorization: Bearer`: a cookie would let another site's page act."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None

"""The status page: server-rendered from what the daemon already knows (the status cache and the
history), with server-side sessions. A form that changes something carries the session's CSRF token and
must come from the page's own origin: every app lives on the same site (`<app>.<domain>`), so SameSite
alone does not stop another app's page from posting.

No `from __future__ import annotations` here: FastAPI must see the dependencies of the local routes."""

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from swarmops.adapters.age import digest_key
from swarmops.errors import BusyError, SwarmopsError
from swarmops.ops import actions

COOKIE = "swarmops_session"
SESSION_TTL = 8 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    scope: str
    csrf: str
    expires: float


class Sessions:
    """Sessions in the daemon's memory: the cookie holds only a random id (a restart signs everyone out)."""

    def __init__(self, ttl: float = SESSION_TTL) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, scope: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for old in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[old]
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[sid] = Session(scope, secrets.token_urlsafe(32), now + self.ttl)
        return sid

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            found = self._sessions.get(sid or "")
        return found if found and found.expires >= time.time() else None

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


class Diffs:
    """The last diff of each app, computed only on request (it fetches, decrypts and asks the registry) and
    at most once per app every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, app: str) -> dict[str, Any] | None:
        with self._lock:
            return self._last.get(app)

    def compute(self, app: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            last = self._last.get(app)
            if last and time.time() - last["at"] < self.every:
                raise HTTPException(429, f"a diff of {app} was made {time.time() - last['at']:.0f} s ago; "
                                    f"try again in {self.every:.0f} s", headers={"Retry-After": str(int(self.every))})
            self._last[app] = {"at": time.time(), "result": None, "error": "computing"}
        try:
            entry = {"at": time.time(), "result": work(), "error": "", "busy": False}
        except SwarmopsError as e:
            entry = {"at": time.time(), "result": None, "error": str(e), "busy": isinstance(e, BusyError)}
        with self._lock:
            self._last[app] = entry
        return entry


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


def diff_now(ctx: Any, entry: Any) -> dict[str, Any]:
    head, diffs = ctx.reconciler.when_idle(entry.name, lambda: actions.diff(ctx.reconciler, entry))
    result: dict[str, Any] = actions.diff_to_json(head, diffs, digest_key(ctx.config.state_dir))
    return result


def register(api: FastAPI, ctx: Any, sessions: Sessions, templates: Any) -> None:
    external = ctx.config.http.external_url if ctx.config.http else None
    secure = bool(external and external.startswith("https://"))

    def session(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def viewer(request: Request) -> Session | None:
        found = session(request)
        if found is None and not ctx.config.http_public_read:   # a browser is sent to the login form
            raise HTTPException(303, "sign in with a token at /login", headers={"Location": "/login"})
        return found

    def render(request: Request, name: str, found: Session | None, values: dict[str, Any],
               status_code: int = 200) -> HTMLResponse:
        response: HTMLResponse = templates.TemplateResponse(request, name, {
            **values, "can_deploy": bool(found and found.scope == "deploy"), "signed_in": found is not None,
            "csrf": found.csrf if found else ""}, status_code=status_code)
        return response

    def checked_form(request: Request, csrf: str) -> Session:
        found = session(request)
        if found is None:
            raise HTTPException(401, "sign in first")
        if not same_origin(request, external) or not hmac.compare_digest(csrf, found.csrf):
            raise HTTPException(403, "this form did not come from the swarmops page; reload it and try again")
        return found

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request, found: Annotated[Session | None, Depends(viewer)]) -> HTMLResponse:
        statuses = ctx.statuses.all()
        return render(request, "overview.html", found, {
            "apps": statuses, "refresh": any(st.status == "Progressing" for st in statuses)})

    @api.get("/apps/{app}", response_class=HTMLResponse, include_in_schema=False)
    def app_page(app: str, request: Request, found: Annotated[Session | None, Depends(viewer)]) -> HTMLResponse:
        """From the status cache and the history only: a view never reads git, the registry or a secret."""
        entry = ctx.app(app)
        status = ctx.statuses.get(entry.name)
        history = ctx.store.history(entry.name, 30)
        return render(request, "app.html", found, {
            "app": entry, "status": status, "history": [asdict(d) for d in history], "diff": ctx.diffs.get(app),
            "head": ctx.store.app_state(entry.name).last_head,
            "refresh": bool(status and status.status == "Progressing")})

    @api.post("/apps/{app}/{action}", include_in_schema=False)
    def app_action(app: str, action: str, request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        found = checked_form(request, csrf)
        if found.scope != "deploy":
            raise HTTPException(403, "a deploy token is needed")
        entry = ctx.app(app)
        if action == "diff":
            ctx.diffs.compute(entry.name, lambda: diff_now(ctx, entry))
        elif action == "sync":
            ctx.statuses.mark_progressing(entry.name, "sync requested")   # before: its outcome clears it
            ctx.triggers.trigger(entry, "manual", force=True)
        elif action in ("pause", "resume"):
            getattr(actions, action)(ctx.store, entry)
            ctx.statuses.refresh_app(app)
        elif action == "rollback":
            ctx.triggers.submit(lambda: actions.rollback(ctx.reconciler, entry, None))
        else:
            raise HTTPException(404, f"no action {action!r}")
        return RedirectResponse(f"/apps/{app}", status_code=303)

    @api.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, {"error": ""})

    @api.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()]) -> Response:
        scope = ctx.tokens.scope_of(token)
        if scope is None:
            return render(request, "login.html", None, {"error": "unknown token"}, status_code=401)
        sessions.drop(request.cookies.get(COOKIE))   # a login always starts a new session
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sessions.create(scope), httponly=True, samesite="strict", secure=secure,
                            max_age=int(sessions.ttl))
        return response

    @api.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        checked_form(request, csrf)
        sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

"""The status page: server-rendered from what the daemon already knows (the status cache and the
history), with server-side sessions. A form that changes something carries the session's CSRF token and
must come from the page's own origin: every app lives on the same site (`<app>.<domain>`), so SameSite
alone does not stop another app's page from posting.

No `from __future__ import annotations` here: FastAPI must see the dependencies of the local routes."""

import hmac
import logging
from dataclasses import asdict
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from swarmops.adapters.age import digest_key
from swarmops.config.models import AppConfig
from swarmops.domain.access import ACTIONS, Action, allowed, refusal
from swarmops.http.auth import COOKIE, Session, Sessions, same_origin
from swarmops.ops import actions

log = logging.getLogger("swarmops.http")


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
            "may": (), **values, "signed_in": found is not None, "who": found.who.name if found else "",
            "csrf": found.csrf if found else ""}, status_code=status_code)
        return response

    def may(found: Session | None, entry: AppConfig) -> tuple[str, ...]:
        """The actions the session's holder may do to the app (its buttons)."""
        return tuple(a for a in ACTIONS if found and allowed(found.who, ctx.config.access, a, entry))

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
            "app": entry, "status": status, "may": may(found, entry), "history": [asdict(d) for d in history],
            "diff": ctx.diffs.get(app),
            "head": ctx.store.app_state(entry.name).last_head,
            "refresh": bool(status and status.status == "Progressing")})

    @api.post("/apps/{app}/{action}", include_in_schema=False)
    def app_action(app: str, action: str, request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        found = checked_form(request, csrf)
        entry = ctx.app(app)
        if action not in ("diff", "sync", "pause", "resume", "rollback"):
            raise HTTPException(404, f"no action {action!r}")
        needed = cast(Action, "sync" if action == "diff" else action)
        if not allowed(found.who, ctx.config.access, needed, entry):
            raise HTTPException(403, refusal(found.who, needed, entry))
        who = found.who.name
        if action == "diff":
            ctx.diffs.compute(entry.name, lambda: diff_now(ctx, entry))
        elif action == "sync":
            ctx.statuses.mark_progressing(entry.name, "sync requested")   # before: its outcome clears it
            ctx.triggers.trigger(entry, "manual", force=True, actor=who)
        elif action in ("pause", "resume"):
            getattr(actions, action)(ctx.store, entry)
            log.info("%s: %s by %s", app, action, who)
            ctx.statuses.refresh_app(app)
        elif action == "rollback":
            ctx.triggers.submit(lambda: actions.rollback(ctx.reconciler, entry, None, actor=who))
        return RedirectResponse(f"/apps/{app}", status_code=303)

    @api.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, {"error": ""})

    @api.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()]) -> Response:
        record = ctx.tokens.record_of(token)
        if record is None:
            return render(request, "login.html", None, {"error": "unknown token"}, status_code=401)
        sessions.drop(request.cookies.get(COOKIE))   # a login always starts a new session
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sessions.create(record.principal()), httponly=True, samesite="strict",
                            secure=secure,
                            max_age=int(sessions.ttl))
        return response

    @api.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        checked_form(request, csrf)
        sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

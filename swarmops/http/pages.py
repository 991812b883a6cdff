"""The status page: server-rendered from what the daemon already knows (the status cache and the
history), with server-side sessions. A form that changes something carries the session's CSRF token and
must come from the page's own origin: every app lives on the same site (`<app>.<domain>`), so SameSite
alone does not stop another app's page from posting.

No `from __future__ import annotations` here: FastAPI must see the dependencies of the local routes."""

import hmac
import logging
import re
from dataclasses import asdict, replace
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from swarmops.adapters.age import digest_key
from swarmops.config.models import AppConfig
from swarmops.domain.access import ACTIONS, Action, Principal, allowed, refusal
from swarmops.errors import SignInError, SwarmopsError
from swarmops.http.auth import COOKIE, PENDING_COOKIE, Session, Sessions, same_origin
from swarmops.http.oidc import PENDING_TTL, OidcLogin
from swarmops.ops import actions
from swarmops.ops.promote import promote as run_promotion

log = logging.getLogger("swarmops.http")


def diff_now(ctx: Any, entry: Any) -> dict[str, Any]:
    head, diffs = ctx.reconciler.when_idle(entry.name, lambda: actions.diff(ctx.reconciler, entry))
    result: dict[str, Any] = actions.diff_to_json(head, diffs, digest_key(ctx.config.state_dir))
    return result


def register(api: FastAPI, ctx: Any, sessions: Sessions, templates: Any) -> None:
    external = ctx.config.http.external_url if ctx.config.http else None
    secure = bool(external and external.startswith("https://"))
    # __Host-: over https the browser takes these cookies only from this host itself, with Path=/ and no
    # Domain, so another app of the same site (evil.<domain>) cannot plant a session or a sign-in of its own
    cookie, pending_cookie = (f"__Host-{c}" if secure else c for c in (COOKIE, PENDING_COOKIE))

    def session(request: Request) -> Session | None:
        """The request's session; a token's holds that token's grants as they are now (a revoked token's
        session ends with it)."""
        found = sessions.get(request.cookies.get(cookie))
        if found is None or not found.who.name.startswith("token:"):
            return found
        record = ctx.tokens.named(found.who.name.removeprefix("token:"))
        if record is None:
            sessions.drop(request.cookies.get(cookie))
            return None
        return replace(found, who=record.principal())

    def readable(found: Session | None, entry: AppConfig) -> bool:
        # no session gets here only when http.public_read is on
        return found is None or allowed(found.who, ctx.config.access, "read", entry)

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
        shown = {a.name for a in ctx.config.apps if readable(found, a)}
        # an app's environments side by side, each with the commit it runs
        statuses = sorted((st for st in ctx.statuses.all() if st.app in shown),
                          key=lambda st: (st.group or st.app, st.environment, st.app))
        return render(request, "overview.html", found, {
            "apps": statuses, "refresh": any(st.status == "Progressing" for st in statuses)})

    @api.get("/apps/{app}", response_class=HTMLResponse, include_in_schema=False)
    def app_page(app: str, request: Request, found: Annotated[Session | None, Depends(viewer)]) -> HTMLResponse:
        """From the status cache and the history only: a view never reads git, the registry or a secret."""
        entry = ctx.app(app)
        if not readable(found, entry):
            raise HTTPException(403, refusal(found.who if found else Principal("nobody"), "read", entry))
        return render(request, "app.html", found, {**app_view(entry), "may": may(found, entry)})

    def app_view(entry: AppConfig) -> dict[str, Any]:
        status = ctx.statuses.get(entry.name)
        staged = entry.environment not in (None, "staging") and any(
            a.group == entry.group and a.environment == "staging" for a in ctx.config.apps)
        return {"app": entry, "status": status, "history": [asdict(d) for d in ctx.store.history(entry.name, 30)],
                "diff": ctx.diffs.get(entry.name), "head": ctx.store.app_state(entry.name).last_head,
                "refresh": bool(status and status.status == "Progressing"), "promotable": staged, "message": ""}

    @api.post("/apps/{app}/{action}", include_in_schema=False)
    def app_action(app: str, action: str, request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        found = checked_form(request, csrf)
        entry = ctx.app(app)
        if action not in ("diff", "sync", "pause", "resume", "rollback", "promote"):
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
        elif action == "promote":   # this environment moved to what the app's staging runs
            return promote_from_staging(request, found, entry)
        return RedirectResponse(f"/apps/{app}", status_code=303)

    oidc = OidcLogin(ctx.config.http.oidc, str(external)) if ctx.config.http and ctx.config.http.oidc else None

    def start_session(who: Principal, response: Response, request: Request) -> Response:
        sessions.drop(request.cookies.get(cookie))   # a sign-in always starts a new session
        response.set_cookie(cookie, sessions.create(who), httponly=True, samesite="strict", secure=secure,
                            max_age=int(sessions.ttl))
        return response

    def promote_from_staging(request: Request, found: Session, entry: AppConfig) -> Response:
        try:
            planned, moved = run_promotion(ctx.config, ctx.store, ctx.reconciler.reader.read_app, ctx.sources,
                                           str(entry.group), "staging", str(entry.environment))
        except SwarmopsError as e:   # nothing to promote, or the remote refused: said on the page
            return render(request, "app.html", found, {**app_view(entry), "may": may(found, entry),
                                                       "message": str(e)}, status_code=409)
        log.info("%s, promoted by %s", moved, found.who.name)
        if planned.ref is not None:
            ctx.statuses.mark_progressing(entry.name, moved)
            ctx.triggers.trigger(planned.target, "manual", force=True, actor=found.who.name)
        return RedirectResponse(f"/apps/{entry.name}", status_code=303)

    @api.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, {"error": "", "oidc": oidc is not None})

    @api.get("/auth/login", include_in_schema=False)
    def oidc_start() -> Response:
        """To the provider's sign-in; the pending sign-in's id in a cookie of its own, sent back to the
        callback only (SameSite=Lax: the provider's redirect is a top-level navigation from its site)."""
        if oidc is None:
            raise HTTPException(404, "this page signs in with tokens only (no http.oidc in the config)")
        try:
            pid, url = oidc.start()
        except SignInError as e:
            raise HTTPException(502, str(e)) from e
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(pending_cookie, pid, httponly=True, samesite="lax", secure=secure,
                            max_age=int(PENDING_TTL))
        return response

    @api.get("/auth/callback", include_in_schema=False)
    def oidc_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
        if oidc is None:
            raise HTTPException(404, "this page signs in with tokens only (no http.oidc in the config)")
        try:
            if error or not code:   # the provider's error code only, never free text a link could carry
                known = re.fullmatch(r"[a-z_]{1,40}", error)
                raise SignInError("the provider did not sign you in" + (f" ({error})" if known else ""))
            who = oidc.finish(request.cookies.get(pending_cookie), state, code)
        except SignInError as e:   # the pending sign-in stays: a forged link does not end a real one
            return render(request, "login.html", None, {"error": str(e), "oidc": True}, status_code=401)
        log.info("%s signed in to the status page (groups: %s)", who.name, ", ".join(who.groups) or "none")
        # a page of its own, not a redirect: the strict session cookie is not sent along a redirect chain that
        # began at the provider's site, and this page's own navigation to / is same-site
        done = render(request, "signed_in.html", None, {"person": who.name})
        done.delete_cookie(pending_cookie)
        return start_session(who, done, request)

    @api.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()]) -> Response:
        if not same_origin(request, external):   # another site's form would sign the browser in as its token
            raise HTTPException(403, "this form did not come from the swarmops page; reload it and try again")
        record = ctx.tokens.record_of(token)
        if record is None:
            return render(request, "login.html", None, {"error": "unknown token"}, status_code=401)
        return start_session(record.principal(), RedirectResponse("/", status_code=303), request)

    @api.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        checked_form(request, csrf)
        sessions.drop(request.cookies.get(cookie))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(cookie)
        return response

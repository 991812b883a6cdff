"""The JSON API: reads answer from the status cache and the history; actions (whoever the config's access
rules or the token's grants allow: domain/access.py) go through swarmops.ops.actions, the same code the CLI
runs; /metrics for Prometheus.

No `from __future__ import annotations` here: FastAPI must see the dependencies of the local routes."""

import json
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from swarmops.config.models import AppConfig
from swarmops.domain.access import Action, Principal, allowed, grants_of, refusal
from swarmops.errors import PromotionError, SwarmopsError
from swarmops.http import pages
from swarmops.http.auth import bearer_token
from swarmops.http.context import HttpContext
from swarmops.ops import actions
from swarmops.ops.promote import environment
from swarmops.ops.promote import promote as run_promotion
from swarmops.util.redact import redact_url

log = logging.getLogger("swarmops.http")


class EscapedJSONResponse(JSONResponse):
    """The API's JSON with every character outside ASCII escaped (\\u009b, \\u202e), as the CLI's --json:
    text from repos reaches a terminal (curl) or a log as escapes, never as the control characters themselves
    (FastAPI's own JSONResponse escapes only those below \\x20: U+009B, CSI in one character, would go raw)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


SSO_RETRY_AFTER = 5   # seconds: the daemon's first read of the Swarm is a few API calls away


class ActionResult(BaseModel):
    app: str
    accepted: bool
    message: str


class RollbackRequest(BaseModel):
    to: str | None = None


class PromoteRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    source: str = Field("staging", alias="from")
    to: str = "production"
    tag: str | None = None


class SsoApp(BaseModel):
    """An app behind the shared SSO middleware, for Polise: the hosts its routers match, the OIDC groups
    that may use it (empty: every signed-in user) and whom a refused user should ask."""

    app: str
    hosts: list[str]
    groups: list[str]
    contact: str | None


def register(api: FastAPI, ctx: HttpContext) -> None:
    def who(authorization: Annotated[str | None, Header()] = None) -> Principal | None:
        token = bearer_token(authorization)
        record = ctx.tokens.record_of(token) if token else None
        return record.principal() if record else None

    def reader(p: Annotated[Principal | None, Depends(who)]) -> Principal | None:
        if p is None and not ctx.config.http_public_read:
            raise HTTPException(401, "a read or deploy token is needed", headers={"WWW-Authenticate": "Bearer"})
        return p

    def actor(p: Annotated[Principal | None, Depends(who)]) -> Principal:
        if p is None:
            raise HTTPException(401, "a deploy token is needed", headers={"WWW-Authenticate": "Bearer"})
        return p

    def permitted(p: Principal | None, action: Action, app: str) -> AppConfig:
        """The app, when `p` may do `action` to it (403 with the reason otherwise); reading with no token is
        what http.public_read allows."""
        entry = ctx.app(app)
        if p is None and action == "read":
            return entry
        if p is None or not allowed(p, ctx.config.access, action, entry):
            raise HTTPException(403, refusal(p or Principal("nobody"), action, entry))
        return entry

    @api.get("/api/v1/apps")
    def list_apps(p: Annotated[Principal | None, Depends(reader)]) -> list[dict[str, Any]]:
        readable = {a.name for a in ctx.config.apps if p is None or allowed(p, ctx.config.access, "read", a)}
        return [s.to_dict() for s in ctx.statuses.all() if s.app in readable]

    @api.get("/api/v1/apps/{app}")
    def get_app(app: str, p: Annotated[Principal | None, Depends(reader)]) -> dict[str, Any]:
        entry = permitted(p, "read", app)
        status = ctx.statuses.get(entry.name)
        last = ctx.store.last_deploy(entry.name)
        return {"status": status.to_dict() if status else None, "last_deploy": last.to_dict() if last else None,
                "repo": redact_url(entry.repo), "branch": entry.branch, "tags": entry.tags,
                "url": ctx.statuses.public_url(entry.name),
                "forge_repo": entry.forge_repo, "sso": bool(ctx.statuses.sso(entry.name))}

    @api.get("/api/v1/sso", responses={503: {"description": "the live state has not been read yet (Retry-After)"}})
    def sso(p: Annotated[Principal | None, Depends(reader)]) -> list[SsoApp]:
        """Every app whose live routers name the shared SSO middleware (`sso.middleware` of the config),
        from the status cache's last read of the Swarm; groups and contact from the app's entry. 503 until
        the cache has read the Swarm once (a daemon just started knows of no app yet: an empty list would
        tell Polise that none is behind sign-on)."""
        if not ctx.statuses.ready:
            raise HTTPException(503, "the live state has not been read yet; ask again shortly",
                                headers={"Retry-After": str(SSO_RETRY_AFTER)})
        found = []
        for name, routes in ctx.statuses.sso_apps():
            entry = ctx.config.app(name)
            if p is not None and (entry is None or not allowed(p, ctx.config.access, "read", entry)):
                continue   # a token limited to some apps learns nothing of the others
            access = entry.sso if entry is not None else None
            found.append(SsoApp(app=name, hosts=list(routes.hosts), groups=list(access.groups) if access else [],
                                contact=access.contact if access else None))
        return found

    @api.get("/api/v1/apps/{app}/commits")
    def commits(app: str, p: Annotated[Principal | None, Depends(reader)], since: datetime | None = None,
                until: datetime | None = None, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """The branch's commit log, newest first, paged and filtered by date; files classed code/docs/other."""
        entry = permitted(p, "read", app)
        try:
            head = ctx.store.app_state(entry.name).last_head or ctx.sources(entry).head()
            log = ctx.sources(entry).log(head, since, until, (page - 1) * per_page, per_page)
        except SwarmopsError as e:
            raise HTTPException(502, str(e)) from e
        return {"app": entry.name, "branch": entry.branch, "head": head, "page": page, "per_page": per_page,
                "commits": [c.to_dict() for c in log]}

    @api.get("/api/v1/apps/{app}/docs/{name}")
    def docs(app: str, name: Literal["usage", "database"],
             p: Annotated[Principal | None, Depends(reader)]) -> dict[str, Any]:
        """docs/USAGE.md or docs/DATABASE.md of the deployed commit, as Markdown (render and sanitise it)."""
        entry = permitted(p, "read", app)
        status = ctx.statuses.get(entry.name)
        if status is None or not status.commit:
            raise HTTPException(404, f"{entry.name} has no deployed commit yet")
        path = f"docs/{name.upper()}.md"
        source = ctx.sources(entry)
        try:
            source.ensure(status.commit)
            text = source.read(status.commit, path).decode("utf-8", "replace")
        except SwarmopsError as e:
            raise HTTPException(404, str(e)) from e
        return {"app": entry.name, "commit": status.commit, "path": path, "markdown": text}

    @api.get("/api/v1/apps/{app}/history")
    def history(app: str, p: Annotated[Principal | None, Depends(reader)], limit: int = 50) -> list[dict[str, Any]]:
        entry = permitted(p, "read", app)
        return [d.to_dict() for d in ctx.store.history(entry.name, max(1, min(limit, 500)))]

    @api.get("/api/v1/apps/{app}/diff")
    def diff(app: str, p: Annotated[Principal, Depends(actor)]) -> dict[str, Any]:
        """An explicit action (it fetches, decrypts and asks the registry): whoever may sync the app, once per
        app every 10 s."""
        entry = permitted(p, "sync", app)
        found = ctx.diffs.compute(entry.name, lambda: pages.diff_now(ctx, entry))
        if found["error"]:
            raise HTTPException(409 if found["busy"] else 502, found["error"])
        result: dict[str, Any] = found["result"]
        return result

    @api.post("/api/v1/apps/{app}/sync", status_code=202)
    def sync(app: str, p: Annotated[Principal, Depends(actor)]) -> ActionResult:
        queued = ctx.triggers.trigger(permitted(p, "sync", app), "manual", force=True, actor=p.name)
        return ActionResult(app=app, accepted=True, message="sync started" if queued else "a sync is already queued")

    @api.post("/api/v1/apps/{app}/pause")
    def pause(app: str, p: Annotated[Principal, Depends(actor)]) -> ActionResult:
        message = actions.pause(ctx.store, permitted(p, "pause", app))
        log.info("%s paused by %s", app, p.name)
        ctx.statuses.refresh_app(app)
        return ActionResult(app=app, accepted=True, message=message)

    @api.post("/api/v1/apps/{app}/resume")
    def resume(app: str, p: Annotated[Principal, Depends(actor)]) -> ActionResult:
        message = actions.resume(ctx.store, permitted(p, "resume", app))
        log.info("%s resumed by %s", app, p.name)
        ctx.statuses.refresh_app(app)
        return ActionResult(app=app, accepted=True, message=message)

    @api.post("/api/v1/apps/{app}/rollback", status_code=202)
    def rollback(app: str, p: Annotated[Principal, Depends(actor)],
                 body: RollbackRequest | None = None) -> ActionResult:
        entry = permitted(p, "rollback", app)
        ctx.triggers.submit(lambda: actions.rollback(ctx.reconciler, entry, body.to if body else None, actor=p.name))
        return ActionResult(app=app, accepted=True, message="rollback started")

    @api.post("/api/v1/apps/{app}/promote", status_code=202,
              responses={409: {"description": "nothing to promote, or the target's remote refused it"}})
    def promote(app: str, body: PromoteRequest, p: Annotated[Principal, Depends(actor)]) -> ActionResult:
        """Move environment `to` of app `app` (the entry's name, not a stack's) to the commit `from` runs and
        converged on; who may is decided on the target environment (promote)."""
        if not any(a.group == app and allowed(p, ctx.config.access, "read", a) for a in ctx.config.apps):
            raise HTTPException(404, f"no app named {app!r} with environments")   # its environments unsaid
        try:
            target = environment(ctx.config, app, body.to)
        except PromotionError as e:
            raise HTTPException(404, str(e)) from e
        permitted(p, "promote", target.name)
        try:
            planned, moved = run_promotion(ctx.config, ctx.store, ctx.reconciler.reader.read_app, ctx.sources, app,
                                           body.source, body.to, body.tag)
        except PromotionError as e:
            raise HTTPException(409, str(e)) from e
        except SwarmopsError as e:
            raise HTTPException(502, str(e)) from e
        log.info("%s, promoted by %s", moved, p.name)
        if planned.ref is not None:   # nothing moved: no sync either
            ctx.triggers.trigger(planned.target, "manual", force=True, actor=p.name)
        return ActionResult(app=planned.target.name, accepted=True, message=moved)

    @api.get("/metrics", include_in_schema=False)
    def metrics(p: Annotated[Principal | None, Depends(reader)]) -> Response:
        # every app's series in one answer: a token limited to some apps does not get it
        if p is not None and not any("*" in g.apps for g in grants_of(p, ctx.config.access)):
            raise HTTPException(403, f"{p.name} is limited to some apps; /metrics shows every app: use a token "
                                     "without --app")
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

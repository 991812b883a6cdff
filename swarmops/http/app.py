"""The HTTP API (FastAPI): webhooks in, JSON and HTML out. Reads answer from the status cache; actions
go through swarmops.ops.actions, the same code the CLI runs."""


import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from swarmops.adapters.store import StateStore
from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import AppConfig, Config
from swarmops.daemon.metrics import Metrics
from swarmops.daemon.statuscache import StatusCache
from swarmops.daemon.triggers import Triggers
from swarmops.domain.webhook import (
    DRAIN_LIMIT,
    MAX_BODY,
    PROVIDERS,
    event_kind,
    normalise_url,
    parse_push,
    verify,
)
from swarmops.errors import SwarmopsError, WebhookError
from swarmops.http import pages
from swarmops.ops import actions
from swarmops.reconcile.ports import Source
from swarmops.reconcile.reconciler import Reconciler
from swarmops.util.redact import redact_url, terminal_safe

log = logging.getLogger("swarmops.http")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# a commit message's or author's control characters are shown as escapes, never sent to the browser raw
TEMPLATES.env.finalize = lambda v: v if isinstance(v, Markup) else terminal_safe(v) if isinstance(v, str) else v
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


@dataclass
class HttpContext:
    config: Config
    reconciler: Reconciler
    store: StateStore
    sources: Callable[[AppConfig], Source]
    statuses: StatusCache
    tokens: TokenStore
    triggers: Triggers
    metrics: Metrics
    deliveries: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: pages.Sessions = field(default_factory=pages.Sessions)
    diffs: pages.Diffs = field(default_factory=pages.Diffs)

    def app(self, name: str) -> AppConfig:
        found = self.config.app(name)
        if found is None:
            raise HTTPException(404, f"no app named {name!r}")
        return found

    def seen(self, delivery: str) -> bool:
        """True for a delivery id seen before (the last 10,000 are remembered)."""
        with self.lock:
            if delivery in self.deliveries:
                return True
            self.deliveries[delivery] = None
            while len(self.deliveries) > 10_000:
                self.deliveries.popitem(last=False)
            return False


class ActionResult(BaseModel):
    app: str
    accepted: bool
    message: str


class RollbackRequest(BaseModel):
    to: str | None = None


def _token(authorization: str | None) -> str | None:
    """The API takes a token only as `Authorization: Bearer`: a cookie would let another site's page act."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def build_app(ctx: HttpContext) -> FastAPI:
    api = FastAPI(title="swarmops", version="1", description="GitOps deployer for Docker Swarm")

    def scope(authorization: Annotated[str | None, Header()] = None) -> str | None:
        token = _token(authorization)
        return ctx.tokens.scope_of(token) if token else None

    def reader(s: Annotated[str | None, Depends(scope)]) -> str | None:
        if s is None and not ctx.config.http_public_read:
            raise HTTPException(401, "a read or deploy token is needed", headers={"WWW-Authenticate": "Bearer"})
        return s

    def deployer(s: Annotated[str | None, Depends(scope)]) -> str:
        if s is None:
            raise HTTPException(401, "a deploy token is needed", headers={"WWW-Authenticate": "Bearer"})
        if s != "deploy":
            raise HTTPException(403, "this token may read but not act: it needs the deploy scope")
        return s

    @api.get("/api/v1/apps")
    def list_apps(_: Annotated[str | None, Depends(reader)]) -> list[dict[str, Any]]:
        return [s.to_dict() for s in ctx.statuses.all()]

    @api.get("/api/v1/apps/{app}")
    def get_app(app: str, _: Annotated[str | None, Depends(reader)]) -> dict[str, Any]:
        entry = ctx.app(app)
        status = ctx.statuses.get(entry.name)
        last = ctx.store.last_deploy(entry.name)
        return {"status": status.to_dict() if status else None, "last_deploy": last.to_dict() if last else None,
                "repo": redact_url(entry.repo), "branch": entry.branch, "url": ctx.statuses.public_url(entry.name)}

    @api.get("/api/v1/apps/{app}/commits")
    def commits(app: str, _: Annotated[str | None, Depends(reader)], since: datetime | None = None,
                until: datetime | None = None, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """The branch's commit log, newest first, paged and filtered by date; files classed code/docs/other."""
        entry = ctx.app(app)
        try:
            head = ctx.store.app_state(entry.name).last_head or ctx.sources(entry).head()
            log = ctx.sources(entry).log(head, since, until, (page - 1) * per_page, per_page)
        except SwarmopsError as e:
            raise HTTPException(502, str(e)) from e
        return {"app": entry.name, "branch": entry.branch, "head": head, "page": page, "per_page": per_page,
                "commits": [c.to_dict() for c in log]}

    @api.get("/api/v1/apps/{app}/docs/{name}")
    def docs(app: str, name: Literal["usage", "database"], _: Annotated[str | None, Depends(reader)]) -> dict[str, Any]:
        """docs/USAGE.md or docs/DATABASE.md of the deployed commit, as Markdown (render and sanitise it)."""
        entry = ctx.app(app)
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
    def history(app: str, _: Annotated[str | None, Depends(reader)], limit: int = 50) -> list[dict[str, Any]]:
        entry = ctx.app(app)
        return [d.to_dict() for d in ctx.store.history(entry.name, max(1, min(limit, 500)))]

    @api.get("/api/v1/apps/{app}/diff")
    def diff(app: str, _: Annotated[str, Depends(deployer)]) -> dict[str, Any]:
        """An explicit action (it fetches, decrypts and asks the registry): a deploy token, once per app
        every 10 s."""
        entry = ctx.app(app)
        found = ctx.diffs.compute(entry.name, lambda: pages.diff_now(ctx, entry))
        if found["error"]:
            raise HTTPException(409 if found["busy"] else 502, found["error"])
        result: dict[str, Any] = found["result"]
        return result

    @api.post("/api/v1/apps/{app}/sync", status_code=202)
    def sync(app: str, _: Annotated[str, Depends(deployer)]) -> ActionResult:
        queued = ctx.triggers.trigger(ctx.app(app), "manual", force=True)
        return ActionResult(app=app, accepted=True, message="sync started" if queued else "a sync is already queued")

    @api.post("/api/v1/apps/{app}/pause")
    def pause(app: str, _: Annotated[str, Depends(deployer)]) -> ActionResult:
        message = actions.pause(ctx.store, ctx.app(app))
        ctx.statuses.refresh_app(app)
        return ActionResult(app=app, accepted=True, message=message)

    @api.post("/api/v1/apps/{app}/resume")
    def resume(app: str, _: Annotated[str, Depends(deployer)]) -> ActionResult:
        message = actions.resume(ctx.store, ctx.app(app))
        ctx.statuses.refresh_app(app)
        return ActionResult(app=app, accepted=True, message=message)

    @api.post("/api/v1/apps/{app}/rollback", status_code=202)
    def rollback(app: str, _: Annotated[str, Depends(deployer)], body: RollbackRequest | None = None) -> ActionResult:
        entry = ctx.app(app)
        ctx.triggers.submit(lambda: actions.rollback(ctx.reconciler, entry, body.to if body else None))
        return ActionResult(app=app, accepted=True, message="rollback started")

    @api.get("/metrics", include_in_schema=False)
    def metrics(_: Annotated[str | None, Depends(reader)]) -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @api.post("/hooks/{provider}", status_code=202)
    async def hook(provider: str, request: Request) -> JSONResponse:
        return await _webhook(ctx, provider, request)

    pages.register(api, ctx, ctx.sessions, TEMPLATES)
    return api


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY. An oversized body is still read (and dropped) up to
    DRAIN_LIMIT: answering 413 while the sender is mid-upload makes its write fail with a broken pipe,
    so it would never see the 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > DRAIN_LIMIT:
        return None
    body = bytearray()
    read = 0
    async for chunk in request.stream():
        read += len(chunk)
        if read > DRAIN_LIMIT:
            return None
        if read <= MAX_BODY:
            body += chunk
    return bytes(body) if read <= MAX_BODY else None


async def _webhook(ctx: HttpContext, provider: str, request: Request) -> JSONResponse:
    if provider not in PROVIDERS and provider != "forgejo":
        raise HTTPException(404, f"unknown provider {provider!r}: use github, gitea, forgejo or gitlab")
    kind = "gitea" if provider == "forgejo" else provider
    body = await _read_limited(request)
    if body is None:
        ctx.metrics.webhooks.labels(kind, "too_large").inc()
        return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
    secrets = _webhook_secrets(ctx)
    verified = [apps for secret, apps in secrets if verify(kind, request.headers, body, secret)]
    if not verified:
        ctx.metrics.webhooks.labels(kind, "unauthorized").inc()
        return JSONResponse({"error": "signature missing or wrong"}, status_code=401)
    if event_kind(kind, request.headers) not in ("push", ""):
        ctx.metrics.webhooks.labels(kind, "ignored").inc()
        return JSONResponse({"ignored": "not a push event"}, status_code=202)
    try:
        push = parse_push(kind, request.headers, body)
    except WebhookError as e:
        ctx.metrics.webhooks.labels(kind, "malformed").inc()
        return JSONResponse({"error": str(e)}, status_code=400)
    if ctx.seen(push.delivery):
        ctx.metrics.webhooks.labels(kind, "duplicate").inc()
        return JSONResponse({"ignored": "delivery seen before"}, status_code=200)
    return _dispatch(ctx, kind, push, [a for apps in verified for a in apps])


def _webhook_secrets(ctx: HttpContext) -> list[tuple[bytes, list[AppConfig]]]:
    """(secret, the apps it authenticates): each app's own secret, else the global one."""
    out: list[tuple[bytes, list[AppConfig]]] = []
    global_apps = [a for a in ctx.config.apps if a.webhook_secret_file is None]
    if ctx.config.webhooks.secret_file and global_apps:
        out.append((_read_secret(ctx.config.webhooks.secret_file), global_apps))
    for a in ctx.config.apps:
        if a.webhook_secret_file is not None:
            out.append((_read_secret(a.webhook_secret_file), [a]))
    return [(s, apps) for s, apps in out if s]


def _read_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as e:
        log.error("cannot read webhook secret %s: %s", path, e.strerror)
        return b""


def _dispatch(ctx: HttpContext, kind: str, push: Any, candidates: list[AppConfig]) -> JSONResponse:
    urls = {normalise_url(u) for u in push.repo_urls}
    same_repo = [a for a in candidates if normalise_url(a.repo) in urls]
    if not same_repo:
        ctx.metrics.webhooks.labels(kind, "no_app").inc()
        return JSONResponse({"ignored": "no app deploys this repository"}, status_code=202)
    matched = [a for a in same_repo if a.branch == push.branch]
    if not matched:
        ctx.metrics.webhooks.labels(kind, "other_branch").inc()
        return JSONResponse({"ignored": f"push to {push.branch or 'a tag or deleted branch'}; apps follow "
                             f"{', '.join(sorted({a.branch for a in same_repo}))}"}, status_code=202)
    triggered = [a.name for a in matched if ctx.triggers.trigger(a, "webhook")]
    ctx.metrics.webhooks.labels(kind, "triggered").inc()
    return JSONResponse({"triggered": triggered, "coalesced": [a.name for a in matched if a.name not in triggered]},
                        status_code=202)

"""Webhooks in: a push from GitHub, Gitea/Forgejo or GitLab, verified against the app's secret (or the
global one), deduplicated by delivery id, and turned into a reconcile of every app that follows that
repository and branch."""

import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from swarmops.config.models import AppConfig
from swarmops.domain.refs import matches
from swarmops.domain.webhook import (
    DRAIN_LIMIT,
    MAX_BODY,
    PROVIDERS,
    Push,
    event_kind,
    normalise_url,
    parse_push,
    verify,
)
from swarmops.errors import WebhookError
from swarmops.http.context import HttpContext

log = logging.getLogger("swarmops.http")


def register(api: FastAPI, ctx: HttpContext) -> None:
    @api.post("/hooks/{provider}", status_code=202)
    async def hook(provider: str, request: Request) -> JSONResponse:
        return await _webhook(ctx, provider, request)


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
    if event_kind(kind, request.headers) not in ("push", "tag push", ""):   # GitLab's tag pushes: "Tag Push Hook"
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


def follows(app: AppConfig, push: Push) -> bool:
    """Whether a push moves what the app follows: its branch, or a tag matching its pattern (the reconcile
    then reads the highest tag itself: a push of a lower one changes nothing)."""
    if app.tags:
        return push.tag is not None and matches(push.tag, app.tags)
    return push.branch is not None and push.branch == app.branch


def _dispatch(ctx: HttpContext, kind: str, push: Push, candidates: list[AppConfig]) -> JSONResponse:
    urls = {normalise_url(u) for u in push.repo_urls}
    same_repo = [a for a in candidates if normalise_url(a.repo) in urls]
    if not same_repo:
        ctx.metrics.webhooks.labels(kind, "no_app").inc()
        return JSONResponse({"ignored": "no app deploys this repository"}, status_code=202)
    matched = [a for a in same_repo if follows(a, push)]
    if not matched:
        ctx.metrics.webhooks.labels(kind, "other_branch").inc()
        pushed = f"branch {push.branch}" if push.branch else f"tag {push.tag}" if push.tag else "a deleted ref"
        return JSONResponse({"ignored": f"push to {pushed}; apps follow "
                             f"{', '.join(sorted({a.follows for a in same_repo}))}"}, status_code=202)
    triggered = [a.name for a in matched if ctx.triggers.trigger(a, "webhook")]
    ctx.metrics.webhooks.labels(kind, "triggered").inc()
    return JSONResponse({"triggered": triggered, "coalesced": [a.name for a in matched if a.name not in triggered]},
                        status_code=202)

"""The HTTP side (FastAPI), put together: the JSON API, webhooks, the status page. Reads answer from the
status cache; actions go through swarmops.ops.actions, the same code the CLI runs."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from swarmops.http import api, pages, webhooks
from swarmops.http.context import HttpContext
from swarmops.util.redact import terminal_safe

__all__ = ["HttpContext", "build_app"]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# a commit message's or author's control characters are shown as escapes, never sent to the browser raw
TEMPLATES.env.finalize = lambda v: v if isinstance(v, Markup) else terminal_safe(v) if isinstance(v, str) else v
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def build_app(ctx: HttpContext) -> FastAPI:
    app = FastAPI(title="swarmops", version="1", description="GitOps deployer for Docker Swarm",
                  default_response_class=api.EscapedJSONResponse)
    api.register(app, ctx)
    webhooks.register(app, ctx)
    pages.register(app, ctx, ctx.sessions, TEMPLATES)
    app.middleware("http")(no_frames)
    return app


async def no_frames(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Never inside another page's frame: an app of the same site would get the session cookie sent along
    and could have a person click promote or rollback through a transparent frame."""
    response = await call_next(request)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response

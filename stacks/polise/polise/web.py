"""Polise's pages: the catalog, the news (page, JSON, Atom), each app's docs, contributions (public), and
for a signed-in user each app's page with its rating and report forms and their own reports. Rendered on
the server from swarmops' read API and Polise's store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polise import contrib, errors, markdown, news, ratings, reports
from polise.auth import check_form, csrf_token, current_user, require_user
from polise.store import Store
from polise.swarmops_api import AppInfo, ReadApi

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# a page cannot carry control characters from a commit message or an author: dropped from every value shown
TEMPLATES.env.finalize = lambda v: (Markup(news.strip_controls(v)) if isinstance(v, Markup)
                                    else news.strip_controls(v) if isinstance(v, str) else v)
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "-"
DOCS = {"usage": "How to use it", "database": "Its database"}
# swarmops' status words as a citizen reads them (the others, Synced, Degraded and Failed, read as they are)
STATUS_WORDS = {"OutOfSync": "Out of sync", "Progressing": "Updating", "Suspended": "Paused",
                "Missing": "Not running", "PolicyViolation": "Refused by policy"}
TEMPLATES.env.filters["status"] = lambda word: STATUS_WORDS.get(word, word)


def create_app(api: ReadApi, public_url: str, store: Store | None = None,
               owners: dict[str, set[str]] | None = None) -> FastAPI:
    """`owners`: app -> the emails (or subjects) of the people who read its rating comments."""
    app = FastAPI(title="Polise", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(HeadAsGet)
    errors.install(app, TEMPLATES, public_url)
    docs = Docs(api)

    def need_store() -> Store:
        if store is None:
            raise HTTPException(503, "Ratings and reports are not available on this portal yet.")
        return store

    def need_app(name: str) -> AppInfo:
        found = api.app(name)
        if found is None:
            raise HTTPException(404, f"There is no app named {name!r}. The catalog lists every app.")
        return found

    def all_news() -> list[news.Entry]:
        out: list[news.Entry] = []
        for a in api.apps():
            commits = {c["sha"]: c for c in api.commits(a.name)}
            out += news.entries(a.name, api.history(a.name), commits)
        return sorted(out, key=lambda e: e.deployed_at, reverse=True)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness for the stack's healthcheck: the process serves. It asks neither swarmops nor the
        database, so that their outages show as 503 pages instead of Swarm restarting Polise."""
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def catalog(request: Request, q: str = "") -> HTMLResponse:
        wanted = [a.name for a in api.apps() if q.lower() in a.name.lower() or q.lower() in a.title.lower()]
        stars = store.summaries() if store is not None else {}
        rows = [{"a": a, "docs": docs.existing(a), "rating": stars.get((a.name, "app")),
                 "docs_rating": stars.get((a.name, "docs"))} for a in map(api.app, wanted) if a is not None]
        return TEMPLATES.TemplateResponse(request, "catalog.html", {"rows": rows, "q": q,
                                                                    "user": current_user(request)})

    @app.get("/apps/{name}", response_class=HTMLResponse)
    def app_page(request: Request, name: str) -> HTMLResponse:
        found = need_app(name)
        user = current_user(request)
        mine = {t: store.rating_of(name, t, user.sub) for t in ratings.TARGETS} if user and store else {}
        return TEMPLATES.TemplateResponse(request, "app.html", {"a": found, "name": name, "user": user,
                                                                "mine": mine, "docs": docs.existing(found),
                                                                "csrf": csrf_token(request) if user else ""})

    @app.post("/apps/{name}/rate")
    def rate(request: Request, name: str, target: Annotated[str, Form()], stars: Annotated[int, Form()],
             comment: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        user = require_user(request)
        check_form(request, csrf, public_url)
        need_app(name)
        ratings.rate(need_store(), name, target, user.sub, user.name, stars, comment)
        return RedirectResponse(f"/apps/{name}?rated={target}", status_code=303)

    @app.post("/apps/{name}/report")
    def report(request: Request, name: str, kind: Annotated[str, Form()], title: Annotated[str, Form()],
               body: Annotated[str, Form()], page: Annotated[str, Form()] = "",
               csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        user = require_user(request)
        check_form(request, csrf, public_url)
        found = need_app(name)
        reports.submit(need_store(), app=name, kind=kind, user_sub=user.sub, user_name=user.name,
                       user_email=user.email, title=title, body=body, page=page or f"{public_url}/apps/{name}",
                       commit_sha=found.commit, repo=found.repo)
        return RedirectResponse("/me/reports", status_code=303)

    @app.get("/apps/{name}/feedback", response_class=HTMLResponse)
    def feedback(request: Request, name: str) -> HTMLResponse:
        user = require_user(request)
        if not ({user.email, user.sub} & (owners or {}).get(name, set())):
            raise HTTPException(403, f"Only the owners of {name} read its rating comments. You are signed in "
                                f"as {user.name}, who is not one of them.")
        return TEMPLATES.TemplateResponse(request, "feedback.html", {"user": user, "name": name,
                                                                     "comments": need_store().comments(name)})

    @app.get("/me/reports", response_class=HTMLResponse)
    def my_reports(request: Request) -> HTMLResponse:
        user = require_user(request)   # security reports are shown to their reporter only
        return TEMPLATES.TemplateResponse(request, "reports.html", {"user": user,
                                                                    "reports": need_store().reports_of(user.sub)})

    @app.get("/news", response_class=HTMLResponse)
    def news_page(request: Request) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "news.html", {"entries": all_news()})

    @app.get("/news.json")
    def news_json() -> JSONResponse:
        return JSONResponse([e.to_dict() for e in all_news()])

    @app.get("/news.atom")
    def news_atom() -> Response:
        return Response(news.atom(all_news(), public_url.rstrip("/")), media_type="application/atom+xml")

    @app.get("/apps/{name}/docs/{which}", response_class=HTMLResponse)
    def doc(request: Request, name: str, which: str) -> HTMLResponse:
        if which not in DOCS:
            raise HTTPException(404, f"Polise shows two documents of an app: {' and '.join(DOCS)}.")
        text = docs.text(need_app(name), which)
        if text is None:
            raise HTTPException(404, f"{name} has no {which} document in its deployed version.")
        return TEMPLATES.TemplateResponse(request, "doc.html", {
            "app": name, "title": DOCS[which], "html": Markup(markdown.render(text))})   # sanitised by nh3

    @app.get("/contributions", response_class=HTMLResponse)
    def contributions_page(request: Request, days: Annotated[int, Query(ge=1, le=3660)] = 90) -> HTMLResponse:
        report = _contributions(api, days)
        return TEMPLATES.TemplateResponse(request, "contributions.html", {"report": report, "days": days})

    @app.get("/contributions.json")
    def contributions_json(days: Annotated[int, Query(ge=1, le=3660)] = 90) -> dict[str, Any]:
        return _contributions(api, days).to_dict()

    return app


def _contributions(api: ReadApi, days: int) -> contrib.Report:
    since = datetime.now(UTC) - timedelta(days=days)
    return contrib.contributions({a.name: api.commits(a.name, since=since) for a in api.apps()})


class Docs:
    """The docs of each app's deployed commit. A commit's docs never change, so each is asked of swarmops
    once, and the catalog links only the docs that exist without asking on every view. "None" is asked
    again after a while: swarmops also answers 404 when it could not read the repo."""

    MAX = 4096            # remembered (app, commit, doc) entries; forgotten all at once beyond that
    RECHECK_MISSING = 300.0   # seconds

    def __init__(self, api: ReadApi) -> None:
        self._api = api
        self._known: dict[tuple[str, str, str], tuple[float, str | None]] = {}

    def text(self, a: AppInfo, which: str) -> str | None:
        if not a.commit:
            return None
        key, known = (a.name, a.commit, which), self._known   # a local name: another thread may start afresh
        if key in known and (known[key][1] is not None or time.monotonic() - known[key][0] < self.RECHECK_MISSING):
            return known[key][1]
        found = self._api.doc(a.name, which)
        if len(known) >= self.MAX:
            self._known = {}
        self._known[key] = (time.monotonic(), found)
        return found

    def existing(self, a: AppInfo) -> dict[str, str]:
        return {which: label for which, label in DOCS.items() if self.text(a, which) is not None}


class HeadAsGet:
    """HEAD answered as GET without the body (feed readers and link checkers ask HEAD; FastAPI's routes
    take only the methods they name)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)

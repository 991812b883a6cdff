"""Polise's public pages: the catalog, the news (page, JSON, Atom), each app's docs, contributions.
Rendered on the server from swarmops' read API; reports, ratings and sign-in come in later slices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from polise import contrib, markdown, news
from polise.swarmops_api import ReadApi, SwarmopsUnavailable

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "-"
DOCS = {"usage": "How to use it", "database": "Its database"}


def create_app(api: ReadApi, public_url: str) -> FastAPI:
    app = FastAPI(title="Polise", docs_url=None, redoc_url=None)

    def all_news() -> list[news.Entry]:
        out: list[news.Entry] = []
        for a in api.apps():
            name = a["app"]
            commits = {c["sha"]: c for c in api.commits(name)}
            out += news.entries(name, api.history(name), commits)
        return sorted(out, key=lambda e: e.deployed_at, reverse=True)

    @app.exception_handler(SwarmopsUnavailable)
    def unavailable(request: Request, exc: SwarmopsUnavailable) -> Response:
        return TEMPLATES.TemplateResponse(request, "error.html", {"message": str(exc)}, status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def catalog(request: Request, q: str = "") -> HTMLResponse:
        apps = [a for a in api.apps() if q.lower() in a["app"].lower() or q.lower() in (a.get("title") or "").lower()]
        rows = [{**a, "url": api.app(a["app"]).get("url")} for a in apps]
        return TEMPLATES.TemplateResponse(request, "catalog.html", {"apps": rows, "q": q, "docs": DOCS})

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
            raise HTTPException(404, "no such document")
        text = api.doc(name, which)
        if text is None:
            raise HTTPException(404, f"{name} has no {which} document in its deployed version")
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
    return contrib.contributions({a["app"]: api.commits(a["app"], since=since) for a in api.apps()})

"""Polise's pages: the catalog, the news (page, JSON, Atom), each app's docs, contributions (public), and
for a signed-in user each app's page with its rating and report forms and their own reports. Rendered on
the server from swarmops' read API and Polise's store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from polise import contrib, markdown, news, ratings, reports
from polise.auth import check_form, csrf_token, current_user, require_user
from polise.store import Store, StoreUnavailable
from polise.swarmops_api import ReadApi, SwarmopsUnavailable

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# a page cannot carry control characters from a commit message or an author: dropped from every value shown
TEMPLATES.env.finalize = lambda v: (Markup(news.strip_controls(v)) if isinstance(v, Markup)
                                    else news.strip_controls(v) if isinstance(v, str) else v)
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "-"
DOCS = {"usage": "How to use it", "database": "Its database"}


def create_app(api: ReadApi, public_url: str, store: Store | None = None,
               owners: dict[str, set[str]] | None = None) -> FastAPI:
    """`owners`: app -> the emails (or subjects) of the people who read its rating comments."""
    app = FastAPI(title="Polise", docs_url=None, redoc_url=None)

    def need_store() -> Store:
        if store is None:
            raise HTTPException(503, "ratings and reports are not configured (POLISE_DB_* settings)")
        return store

    def all_news() -> list[news.Entry]:
        out: list[news.Entry] = []
        for a in api.apps():
            name = a["app"]
            commits = {c["sha"]: c for c in api.commits(name)}
            out += news.entries(name, api.history(name), commits)
        return sorted(out, key=lambda e: e.deployed_at, reverse=True)

    @app.exception_handler(SwarmopsUnavailable)
    @app.exception_handler(StoreUnavailable)
    def unavailable(request: Request, exc: Exception) -> Response:
        return TEMPLATES.TemplateResponse(request, "error.html", {"message": str(exc)}, status_code=503)

    @app.exception_handler(ratings.RatingRefused)
    @app.exception_handler(reports.ReportRefused)
    def refused(request: Request, exc: Exception) -> Response:
        return TEMPLATES.TemplateResponse(request, "error.html", {"message": str(exc)}, status_code=400)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness for the stack's healthcheck: the process serves. It asks neither swarmops nor the
        database, so that their outages show as 503 pages instead of Swarm restarting Polise."""
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def catalog(request: Request, q: str = "") -> HTMLResponse:
        apps = [a for a in api.apps() if q.lower() in a["app"].lower() or q.lower() in (a.get("title") or "").lower()]
        stars = store.summaries() if store is not None else {}
        rows = [{**a, "url": api.app(a["app"]).get("url"), "rating": stars.get((a["app"], "app")),
                 "docs_rating": stars.get((a["app"], "docs"))} for a in apps]
        return TEMPLATES.TemplateResponse(request, "catalog.html", {"apps": rows, "q": q, "docs": DOCS,
                                                                    "user": current_user(request)})

    @app.get("/apps/{name}", response_class=HTMLResponse)
    def app_page(request: Request, name: str) -> HTMLResponse:
        found = api.app(name)
        if not found:
            raise HTTPException(404, f"no app {name}")
        user = current_user(request)
        mine = {t: store.rating_of(name, t, user.sub) for t in ratings.TARGETS} if user and store else {}
        return TEMPLATES.TemplateResponse(request, "app.html", {"a": found, "name": name, "user": user,
                                                                "mine": mine, "docs": DOCS,
                                                                "csrf": csrf_token(request) if user else ""})

    @app.post("/apps/{name}/rate")
    def rate(request: Request, name: str, target: Annotated[str, Form()], stars: Annotated[int, Form()],
             comment: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        user = require_user(request)
        check_form(request, csrf, public_url)
        if not api.app(name):
            raise HTTPException(404, f"no app {name}")
        ratings.rate(need_store(), name, target, user.sub, user.name, stars, comment)
        return RedirectResponse(f"/apps/{name}?rated={target}", status_code=303)

    @app.post("/apps/{name}/report")
    def report(request: Request, name: str, kind: Annotated[str, Form()], title: Annotated[str, Form()],
               body: Annotated[str, Form()], page: Annotated[str, Form()] = "",
               csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        user = require_user(request)
        check_form(request, csrf, public_url)
        found = api.app(name)
        if not found:
            raise HTTPException(404, f"no app {name}")
        reports.submit(need_store(), app=name, kind=kind, user_sub=user.sub, user_name=user.name,
                       user_email=user.email, title=title, body=body, page=page or f"{public_url}/apps/{name}",
                       commit_sha=str(found.get("commit") or ""), repo=str(found.get("repo") or ""))
        return RedirectResponse("/me/reports", status_code=303)

    @app.get("/apps/{name}/feedback", response_class=HTMLResponse)
    def feedback(request: Request, name: str) -> HTMLResponse:
        user = require_user(request)
        if not ({user.email, user.sub} & (owners or {}).get(name, set())):
            raise HTTPException(403, f"only the owners of {name} read its rating comments")
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

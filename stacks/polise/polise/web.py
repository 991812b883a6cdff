"""Polise's pages: the catalog, the news (page, JSON, Atom), each app's docs, contributions (public), and
for a signed-in user each app's page with its rating and report forms and their own reports. Rendered on
the server from swarmops' read API and Polise's store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polise import contrib, errors, i18n, markdown, news, ratings, reports
from polise.auth import check_form, csrf_token, current_user, local_path, require_user
from polise.i18n import N_, Problem, Text
from polise.store import Report, Store, StoreUnavailable, Summary
from polise.swarmops_api import AppInfo, ReadApi

log = logging.getLogger("polise")
ENV = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True)
# a page cannot carry control characters from a commit message or an author: dropped from every value shown
ENV.finalize = lambda v: (Markup(news.strip_controls(v)) if isinstance(v, Markup)
                          else news.strip_controls(v) if isinstance(v, str) else v)
i18n.install(ENV)
DOCS = {"usage": N_("How to use it"), "database": N_("Its database")}
# swarmops' status words as a citizen reads them, never swarmops' raw answer
STATUS_WORDS = {"Synced": N_("Synced"), "Degraded": N_("Degraded"), "Failed": N_("Failed"),
                "OutOfSync": N_("Out of sync"), "Progressing": N_("Updating"), "Suspended": N_("Paused"),
                "Missing": N_("Not running"), "PolicyViolation": N_("Refused by policy")}
# the words of Polise's own data: report kinds and states, rating targets
WORDS = {"problem": N_("problem"), "security": N_("security problem"), "queued": N_("queued"),
         "stuck": N_("not filed yet"), "filed": N_("filed"), "refused": N_("cannot be filed"),
         "app": N_("the app"), "docs": N_("its docs")}
NOTICES = {"app": N_("Thank you: your rating of the app is saved."),
           "docs": N_("Thank you: your rating of the docs is saved.")}
# when to come back: the database within a restart; the report limit within the hour
RETRY = {503: {"Retry-After": errors.RETRY_AFTER}, 429: {"Retry-After": str(3600)}}
RATING_NOT_SAVED = N_("Your rating is not saved: the ratings and reports database did not answer. Try again in a "
                      "minute.")
REPORT_NOT_SAVED = N_("Your report is not saved: the ratings and reports database did not answer. What you wrote is "
                      "still in the form below: send it again in a minute.")
PRIVACY_DEFAULT_RETENTION = N_("Polise deletes nothing by itself: ratings, comments and reports are kept until the "
                               "office removes them. Your sign-in session ends after 8 hours or when you sign out.")


@pass_context
def _status(context: Context, word: str) -> Markup:
    """The status as a readable word. The English word stays in `<span class="status">` (hidden when the
    page shows another), so that a script reads the same markup in every language."""
    text = STATUS_WORDS.get(word)
    english = str(text) if text else word
    shown = context["reader"].say(text) if text else word
    if shown == english:
        return Markup('<span class="status">%s</span>') % english
    return Markup('<span class="status" lang="en" hidden>%s</span><span class="status-word">%s</span>') % (
        english, shown)


@pass_context
def _word(context: Context, word: str) -> str:
    return context["reader"].say(WORDS[word]) if word in WORDS else word


def _page_context(request: Request) -> dict[str, Any]:
    """What every page has: its reader (language, time zone), the signed-in user, where it is."""
    reader = i18n.reader_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.url.path.startswith("/_sso/"):   # a page on an app's host (polise.sso): links lead to Polise
        return {"reader": reader, "lang": reader.lang, "user": None, "here": "/", "languages": i18n.NAMES,
                "site": request.app.state.public_url}
    return {"reader": reader, "lang": reader.lang, "user": current_user(request), "here": here,
            "languages": i18n.NAMES, "site": ""}


ENV.filters["status"] = _status
ENV.filters["word"] = _word
TEMPLATES = Jinja2Templates(env=ENV, context_processors=[_page_context])


STATUS_EVERY = 15.0   # seconds between two counts of /status.json
T = TypeVar("T")


class Every:
    """The last answer of a call, asked again at most every `seconds` (a failure is not kept)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self._at = seconds, -1e18
        self._value: object = None
        self._lock = threading.Lock()

    def get(self, call: Callable[[], T]) -> T:
        with self._lock:
            if time.monotonic() - self._at >= self.seconds:
                self._value, self._at = call(), time.monotonic()
            return cast(T, self._value)


def create_app(api: ReadApi, public_url: str, store: Store | None = None,
               owners: dict[str, set[str]] | None = None, time_zone: str = i18n.OFFICE_ZONE,
               retention: str = "") -> FastAPI:
    """`owners`: app -> the emails (or subjects) of the people who read its rating comments. `time_zone`:
    the office's, for every time shown. `retention`: the privacy page's words on how long data is kept."""
    app = FastAPI(title="Polise", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.zone = ZoneInfo(time_zone)
    app.state.public_url = public_url.rstrip("/")
    app.add_middleware(HeadAsGet)
    app.add_middleware(VaryByLanguage)
    errors.install(app, TEMPLATES, public_url)
    docs = Docs(api)

    counts = Every(STATUS_EVERY)

    def need_store() -> Store:
        if store is None:
            raise Problem(503, N_("Ratings and reports are not available on this portal yet."))
        return store

    def need_app(name: str) -> AppInfo:
        found = api.app(name)
        if found is None:
            raise Problem(404, N_("There is no app named %(name)r. The catalog lists every app.", name=name))
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

    def app_page_of(request: Request, found: AppInfo, status: int = 200, **more: Any) -> HTMLResponse:
        """The app's page; without the database it still answers, its ratings said to be unavailable. A
        refused form comes back on it (`status`), its message beside the form and what was typed kept."""
        user = current_user(request)
        mine: dict[str, Any] = {}
        store_down = False
        if user and store:
            try:
                mine = {t: store.rating_of(found.name, t, user.sub) for t in ratings.TARGETS}
            except StoreUnavailable as e:
                log.warning("%s: ratings not shown: %s", request.url.path, e)
                store_down = True
        return TEMPLATES.TemplateResponse(request, "app.html", {
            "a": found, "name": found.name, "mine": mine, "docs": docs.existing(found),
            "csrf": csrf_token(request) if user else "", "store_down": store_down, "notice": None,
            "draft": {"kind": "problem", "title": "", "body": ""}, "report_error": None, "rating_error": None,
            **more}, status_code=status, headers=RETRY.get(status))

    @app.get("/", response_class=HTMLResponse)
    def catalog(request: Request, q: str = "") -> HTMLResponse:
        wanted = [a.name for a in api.apps() if q.lower() in a.name.lower() or q.lower() in a.title.lower()]
        stars: dict[tuple[str, str], Summary] = {}
        ratings_down = False
        try:   # the database only adds the averages: the catalog answers without it
            stars = store.summaries() if store is not None else {}
        except StoreUnavailable as e:
            log.warning("%s: ratings not shown: %s", request.url.path, e)
            ratings_down = True
        rows = [{"a": a, "docs": docs.existing(a), "rating": stars.get((a.name, "app")),
                 "docs_rating": stars.get((a.name, "docs"))} for a in map(api.app, wanted) if a is not None]
        return TEMPLATES.TemplateResponse(request, "catalog.html", {"rows": rows, "q": q,
                                                                    "ratings_down": ratings_down})

    @app.get("/apps/{name}", response_class=HTMLResponse)
    def app_page(request: Request, name: str, rated: str = "") -> HTMLResponse:
        signed_in = current_user(request) is not None
        return app_page_of(request, need_app(name),
                           notice=NOTICES[rated] if signed_in and rated in ratings.TARGETS else None)

    @app.post("/apps/{name}/rate")
    def rate(request: Request, name: str, target: Annotated[str, Form()], stars: Annotated[int, Form()],
             comment: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
        user = require_user(request)
        check_form(request, csrf, public_url)
        found = need_app(name)
        try:
            ratings.rate(need_store(), name, target, user.sub, user.name, stars, comment)
        except StoreUnavailable as e:   # one statement: nothing of it is written
            log.warning("%s: rating refused: %s", request.url.path, e)
            raise Problem(503, RATING_NOT_SAVED) from None
        except ratings.RatingRefused as e:   # beside its form, with the comment as typed
            return app_page_of(request, found, 422, rating_error={"target": target, "message": i18n.message_of(e),
                                                                   "comment": comment})
        return RedirectResponse(f"/apps/{name}?rated={target}", status_code=303)

    @app.post("/apps/{name}/report")
    def report(request: Request, name: str, kind: Annotated[str, Form()], title: Annotated[str, Form()],
               body: Annotated[str, Form()], page: Annotated[str, Form()] = "",
               csrf: Annotated[str, Form()] = "") -> Response:
        user = require_user(request)
        check_form(request, csrf, public_url)
        found = need_app(name)
        try:
            sent = reports.submit(need_store(), app=name, kind=kind, user_sub=user.sub, user_name=user.name,
                                  user_email=user.email, title=title, body=body,
                                  page=page or f"{public_url}/apps/{name}", commit_sha=found.commit,
                                  repo=found.repo, forge_repo=found.forge_repo)
        except StoreUnavailable as e:   # refused, not queued elsewhere (README, "Without the database")
            log.warning("%s: report refused: %s", request.url.path, e)
            return app_page_of(request, found, 503, report_error=REPORT_NOT_SAVED,
                               draft={"kind": kind, "title": title, "body": body})
        except reports.ReportRefused as e:   # beside the form, with what was typed
            return app_page_of(request, found, 429 if isinstance(e, reports.TooManyReports) else 422,
                               report_error=i18n.message_of(e), draft={"kind": kind, "title": title, "body": body})
        request.session["sent"] = sent   # thanked for once, on the page the browser goes to next
        return RedirectResponse("/me/reports", status_code=303)

    @app.get("/apps/{name}/feedback", response_class=HTMLResponse)
    def feedback(request: Request, name: str) -> HTMLResponse:
        user = require_user(request)
        if not ({user.email, user.sub} & (owners or {}).get(name, set())):
            raise Problem(403, N_("Only the owners of %(app)s read its rating comments. You are signed in as "
                                  "%(user)s, who is not one of them.", app=name, user=user.name))
        return TEMPLATES.TemplateResponse(request, "feedback.html", {"name": name,
                                                                     "comments": need_store().comments(name)})

    @app.get("/me/reports", response_class=HTMLResponse)
    def my_reports(request: Request) -> HTMLResponse:
        user = require_user(request)   # security reports are shown to their reporter only
        sent = request.session.pop("sent", None)
        zone = request.app.state.zone
        tracked = [_tracked(r, zone) for r in need_store().reports_of(user.sub)]
        notice = next((N_("Thank you: your report is saved as %(reference)s. It is sent to the app's team; its "
                          "state is below.", reference=t["reference"]) for t in tracked if t["r"].id == sent), None)
        return TEMPLATES.TemplateResponse(request, "reports.html", {"reports": tracked, "notice": notice})

    @app.get("/status.json")
    def status() -> JSONResponse:
        """For the ops team: whether the database answers, and how many reports wait, are stuck (retried)
        or cannot be filed at all (each of those was logged as a WARNING). Counts only, never a report."""
        if store is None:
            return JSONResponse({"database": "not configured", "reports": None})
        try:   # counted at most every STATUS_EVERY seconds: the page is public, a flood must not reach the database
            return JSONResponse({"database": "up", "reports": counts.get(store.report_counts)})
        except StoreUnavailable as e:
            log.warning("/status.json: %s", e)
            return JSONResponse({"database": "down", "reports": None}, 503, {"Retry-After": errors.RETRY_AFTER})

    @app.get("/privacy", response_class=HTMLResponse)
    def privacy(request: Request) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "privacy.html", {
            "retention": retention or PRIVACY_DEFAULT_RETENTION})

    @app.get("/lang/{lang}")
    def choose_language(lang: str, next: str = "/") -> RedirectResponse:
        """The switch on every page: the cookie wins over the browser's Accept-Language."""
        if lang not in i18n.LOCALES:
            raise Problem(404, N_("Polise speaks Bahasa Indonesia (id) and English (en)."))
        back = RedirectResponse(local_path(next), 303)
        back.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        return back

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
            raise Problem(404, N_("Polise shows two documents of an app: usage and database."))
        text = docs.text(need_app(name), which)
        if text is None:
            raise Problem(404, N_("%(app)s has no %(doc)s document in its deployed version.", app=name, doc=which))
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


def _tracked(r: Report, zone: ZoneInfo) -> dict[str, Any]:
    """A report as its reporter follows it: its reference, and its state with the reason when it is stuck."""
    stuck = r.state == "queued" and bool(r.error_kind or r.last_error)   # last_error alone: an older Polise's
    return {"r": r, "reference": reports.reference(r, zone), "state": "stuck" if stuck else r.state,
            "reason": reports.REASONS.get(r.error_kind, reports.REASONS["fault"])}


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

    def existing(self, a: AppInfo) -> dict[str, Text]:
        return {which: label for which, label in DOCS.items() if self.text(a, which) is not None}


class VaryByLanguage:
    """Pages differ by the reader's language: caches must key them on Accept-Language and the cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"vary", b"Accept-Language, Cookie")]
            await send(message)

        await self.app(scope, receive, vary if scope["type"] == "http" else send)


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

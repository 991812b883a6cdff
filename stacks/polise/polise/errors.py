"""Every failure as an answer that helps, in the format of what was asked: an HTML page for the pages, an
Atom feed for /news.atom, JSON for the .json routes. 503 says when to try again (Retry-After). No host,
port or exception name reaches a visitor: the details go to the log."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from polise import i18n, news
from polise.auth import SignInNeeded
from polise.i18n import N_, Text
from polise.ratings import RatingRefused
from polise.reports import ReportRefused
from polise.store import StoreUnavailable
from polise.swarmops_api import SwarmopsUnavailable

log = logging.getLogger("polise")
RETRY_AFTER = "30"   # seconds; swarmops and the database come back within a restart
TITLES = {400: N_("That did not work"), 401: N_("Sign in first"), 403: N_("Not for you"), 404: N_("Not found"),
          405: N_("Not here"), 422: N_("Polise cannot use that value"),
          500: N_("Something went wrong on our side"), 503: N_("Not available right now")}
SWARMOPS_AWAY = N_("swarmops did not answer, so Polise cannot show its apps right now. Try again in a minute.")
STORE_AWAY = N_("The ratings and reports database did not answer. Try again in a minute.")
BROKEN = N_("Polise failed to answer this request. It is logged; try again later.")
NO_PAGE = {404: N_("Polise has no page at this address."),
           405: N_("This address does not take that kind of request.")}
# pydantic's complaints about a query or form value, in words Polise can translate
INVALID = {"greater_than_equal": N_("must be %(ge)s or more"), "less_than_equal": N_("must be %(le)s or less"),
           "int_parsing": N_("must be a whole number"), "missing": N_("is missing")}
UNUSABLE = N_("cannot be used")


def _complaint(reader: i18n.Reader, error: Any) -> str:
    """`days: must be 1 or more`, from one of pydantic's errors (its own words are English only)."""
    said = Text(INVALID.get(error["type"], UNUSABLE).msgid, **error.get("ctx", {}))
    return f"{error['loc'][-1]}: {reader.say(said)}"


def install(app: FastAPI, templates: Jinja2Templates, public_url: str) -> None:
    def answer(request: Request, status: int, said: Text | str) -> Response:
        headers = {"Retry-After": RETRY_AFTER} if status == 503 else {}
        reader = i18n.reader_of(request)
        message = reader.say(said)
        path = request.url.path
        if path.endswith(".json"):
            body = json.dumps({"error": message, "status": status}, ensure_ascii=True)
            return Response(body, status, headers, media_type="application/json")
        if path.endswith(".atom"):
            return Response(news.error_feed(message, public_url.rstrip("/")), status, headers,
                            media_type="application/atom+xml")
        # where to come back to after signing in: an app host's /_sso/ page (polise.sso) goes to Polise's home
        login = (path if request.method == "GET" and not path.startswith("/_sso/") else "/") if status == 401 else ""
        return templates.TemplateResponse(request, "error.html", {
            "title": TITLES.get(status, TITLES[400]), "message": message, "login": login},
            status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own 404 and 405 (no route) carry only the bare phrase: say it in words
        routed = exc.detail != HTTPStatus(exc.status_code).phrase
        said = i18n.message_of(exc) if routed else NO_PAGE.get(exc.status_code, BROKEN)
        return answer(request, exc.status_code, said)

    @app.exception_handler(SignInNeeded)
    def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return answer(request, 401, exc.text)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        reader = i18n.reader_of(request)
        said = "; ".join(_complaint(reader, e) for e in exc.errors() if e.get("loc"))
        return answer(request, 422, N_("Polise cannot use what was asked (%(said)s). Check the address or the form.",
                                       said=said))

    @app.exception_handler(SwarmopsUnavailable)
    def swarmops_away(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, 503, SWARMOPS_AWAY)

    @app.exception_handler(StoreUnavailable)
    def store_away(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, 503, STORE_AWAY)

    @app.exception_handler(RatingRefused)
    @app.exception_handler(ReportRefused)
    def refused(request: Request, exc: Exception) -> Response:
        return answer(request, 400, i18n.message_of(exc))

    @app.exception_handler(Exception)
    def broken(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, BROKEN)

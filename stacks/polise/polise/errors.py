"""Every failure as an answer that helps, in the format of what was asked: an HTML page for the pages, an
Atom feed for /news.atom, JSON for the .json routes. 503 says when to try again (Retry-After). No host,
port or exception name reaches a visitor: the details go to the log."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from polise import news
from polise.auth import SignInNeeded
from polise.ratings import RatingRefused
from polise.reports import ReportRefused
from polise.store import StoreUnavailable
from polise.swarmops_api import SwarmopsUnavailable

log = logging.getLogger("polise")
RETRY_AFTER = "30"   # seconds; swarmops and the database come back within a restart
TITLES = {400: "That did not work", 401: "Sign in first", 403: "Not for you", 404: "Not found",
          405: "Not here", 422: "Polise cannot use that value",
          500: "Something went wrong on our side", 503: "Not available right now"}
SWARMOPS_AWAY = "swarmops did not answer, so Polise cannot show its apps right now."
STORE_AWAY = "The ratings and reports database did not answer."
BROKEN = "Polise failed to answer this request. It is logged; try again later."
NO_PAGE = {404: "Polise has no page at this address.", 405: "This address does not take that kind of request."}


def install(app: FastAPI, templates: Jinja2Templates, public_url: str) -> None:
    def answer(request: Request, status: int, message: str) -> Response:
        headers = {"Retry-After": RETRY_AFTER} if status == 503 else {}
        path = request.url.path
        if path.endswith(".json"):
            body = json.dumps({"error": message, "status": status}, ensure_ascii=True)
            return Response(body, status, headers, media_type="application/json")
        if path.endswith(".atom"):
            return Response(news.error_feed(message, public_url.rstrip("/")), status, headers,
                            media_type="application/atom+xml")
        login = (path if request.method == "GET" else "/") if status == 401 else ""   # where to come back to
        return templates.TemplateResponse(request, "error.html", {
            "title": TITLES.get(status, "That did not work"), "message": message, "login": login},
            status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own 404 and 405 (no route) carry only the bare phrase: say it in words
        routed = exc.detail != HTTPStatus(exc.status_code).phrase
        return answer(request, exc.status_code, str(exc.detail) if routed else NO_PAGE.get(exc.status_code, BROKEN))

    @app.exception_handler(SignInNeeded)
    def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return answer(request, 401, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        said = "; ".join(f"{e['loc'][-1]}: {str(e['msg']).lower()}" for e in exc.errors() if e.get("loc"))
        return answer(request, 422, f"Polise cannot use what was asked ({said}). Check the address or the form.")

    @app.exception_handler(SwarmopsUnavailable)
    def swarmops_away(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, 503, f"{SWARMOPS_AWAY} Try again in a minute.")

    @app.exception_handler(StoreUnavailable)
    def store_away(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, 503, f"{STORE_AWAY} Try again in a minute.")

    @app.exception_handler(RatingRefused)
    @app.exception_handler(ReportRefused)
    def refused(request: Request, exc: Exception) -> Response:
        return answer(request, 400, str(exc))

    @app.exception_handler(Exception)
    def broken(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, BROKEN)

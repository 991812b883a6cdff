"""Sign-in with OpenID Connect (authorization code with PKCE) against the office's identity provider,
through Authlib: it fetches the provider's metadata and keys, checks the ID token's signature, issuer,
audience and nonce. The session is kept on the server (polise.sessions): Polise's signed session cookie
carries its id, the form token and the sign-in's own state, never the identity."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth, OAuthError  # type: ignore[import-untyped]
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polise import i18n
from polise.i18n import N_, Problem
from polise.sessions import MemorySessions, Sessions, User
from polise.store import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OidcSettings:
    discovery_url: str            # https://auth.example.go.id/.well-known/openid-configuration
    client_id: str
    client_secret_file: Path      # a Swarm secret
    redirect_url: str             # https://polise.../auth/callback, registered at the provider
    scope: str = "openid profile email"   # POLISE_OIDC_SCOPE: add the provider's scope for groups, if any
    groups_claim: str = "groups"  # the ID token's claim that lists the user's groups


UNKNOWN = object()
SESSION_COOKIE = "__Host-polise"   # Polise's session cookie over HTTPS
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def local_path(path: str) -> str:
    """A path on this host to send the browser to; "/" for anything that could leave it (`//host`, and
    `/\\host`, which browsers read as `//host`)."""
    ok = path.startswith("/") and not path.startswith("//") and "\\" not in path and not CONTROLS.search(path)
    return path if ok else "/"


def current_user(request: Request) -> User | None:
    """The signed-in user of this request (asked of the sessions once per request). Without the database
    nobody is signed in: the public pages still answer."""
    if "session" not in request.scope:
        return None
    known = request.scope.get("polise.user", UNKNOWN)
    if known is UNKNOWN:
        sid = request.session.get("sid")
        known = None
        if isinstance(sid, str):
            try:
                known = request.app.state.sessions.user(sid)
            except StoreUnavailable as e:
                log.warning("%s: nobody is signed in: %s", request.url.path, e)
        request.scope["polise.user"] = known
    return known if isinstance(known, User) else None


def csrf_token(request: Request) -> str:
    """The session's token for its forms (made on first use)."""
    if "session" not in request.scope:
        return ""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_form(request: Request, csrf: str, public_url: str) -> None:
    """A form that changes something: the session's token, and sent from Polise's own origin (every app of
    the office lives on the same site, so a page of another app could post it with the cookie)."""
    sent = urlsplit(request.headers.get("origin") or request.headers.get("referer") or "")
    want = urlsplit(public_url)
    expected = request.session.get("csrf") if "session" in request.scope else None
    if (sent.scheme, sent.netloc.lower()) != (want.scheme, want.netloc.lower()) or not isinstance(expected, str) \
            or not hmac.compare_digest(csrf, expected):
        raise Problem(403, N_("This form did not come from Polise. Reload the page and try again."))


class SignInNeeded(Problem):
    """A page for signed-in users, asked without a session: a page is answered with a redirect to sign-in
    (polise.errors), a form post with 401."""

    def __init__(self) -> None:
        super().__init__(401, N_("Sign in first: this page is for signed-in users."))


def require_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise SignInNeeded()
    return user


def install(app: FastAPI, settings: OidcSettings | None, session_secret: str, secure_cookie: bool,
            sessions: Sessions | None = None) -> None:
    """The session cookie always; /login, /auth/callback and /logout when a provider is configured.
    `sessions`: PostgreSQL's (polise.store.StoreSessions) when Polise has a database, else in memory."""
    app.state.sessions = sessions or MemorySessions()
    # SameSite=Lax: the provider's redirect back to /auth/callback is a cross-site top-level GET (ruling 32).
    # __Host-: no other host of the office's domain can set a cookie of that name for Polise's host (an app
    # host's Set-Cookie with Domain= would otherwise plant its own session on Polise)
    app.add_middleware(SessionMiddleware, secret_key=session_secret, same_site="lax", https_only=secure_cookie,
                       max_age=8 * 3600, session_cookie=SESSION_COOKIE if secure_cookie else "session", path="/")
    if secure_cookie:
        app.add_middleware(StrictTransport)

    @app.get("/logout", response_class=HTMLResponse)
    def logout_page(request: Request) -> Response:
        """Sign-out asks first: a GET (an image on any page of the office's site) must not sign anyone out."""
        if current_user(request) is None:
            return RedirectResponse("/", status_code=303)
        from polise.web import TEMPLATES  # the pages' environment (web imports this module)
        return TEMPLATES.TemplateResponse(request, "logout.html", {"csrf": csrf_token(request)})

    @app.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        """Ends the session on the server: every app host's session made from it ends with it."""
        check_form(request, csrf, request.app.state.public_url)
        sid = request.session.get("sid")
        if isinstance(sid, str):
            try:
                app.state.sessions.end(sid)
            except StoreUnavailable as e:
                log.warning("sign-out: %s", e)
                raise Problem(503, N_("Sign-out did not finish: the sessions database did not answer. Try again "
                                      "in a minute.")) from None
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    if settings is None:
        return
    oauth = OAuth()
    oauth.register("idp", server_metadata_url=settings.discovery_url, client_id=settings.client_id,
                   client_secret=settings.client_secret_file.read_text().strip(),
                   client_kwargs={"scope": settings.scope, "code_challenge_method": "S256"})

    @app.get("/login")
    async def login(request: Request, next: str = "/") -> Any:
        request.session["next"] = local_path(next)
        # the provider's sign-in page in the reader's language first, where it offers it (OIDC ui_locales)
        chosen = i18n.choose(request)
        locales = " ".join([chosen, *(tag for tag in i18n.LOCALES if tag != chosen)])
        return await oauth.idp.authorize_redirect(request, settings.redirect_url, ui_locales=locales)

    @app.get("/auth/callback")
    async def callback(request: Request) -> RedirectResponse:
        try:
            token = await oauth.idp.authorize_access_token(request)
        except OAuthError as e:   # the reason is the URL's or the provider's words: logged, not shown
            log.warning("sign-in failed: %s", e.error)
            raise Problem(401, N_("Sign-in failed. Try again.")) from None
        claims = token.get("userinfo") or {}
        if not claims.get("sub"):
            raise Problem(401, N_("Sign-in failed: the sign-in service did not say who you are. Try again."))
        back = request.session.pop("next", "/")
        old = request.session.pop("sid", None)
        try:
            if isinstance(old, str):
                app.state.sessions.end(old)
            request.session["sid"] = app.state.sessions.create(identity(claims, settings.groups_claim))
        except StoreUnavailable as e:
            log.warning("sign-in: %s", e)
            raise Problem(503, N_("Sign-in is not available right now: the sessions database did not answer. Try "
                                  "again in a minute.")) from None
        request.session["csrf"] = secrets.token_urlsafe(32)   # a new session, a new form token
        return RedirectResponse(back, status_code=303)


# a group name Polise passes on: one line, no separator of X-Auth-Groups
GROUP = re.compile(r"^[^\x00-\x1f\x7f,]{1,200}$")


def identity(claims: dict[str, Any], groups_claim: str = "groups") -> User:
    """What the session keeps of the ID token: the email only when the provider says it is verified (the
    owners' feedback page trusts it; an unverified one could be anybody's); the groups as a list of names
    (a provider that sends one string separates them by commas)."""
    verified = claims.get("email_verified") is True
    found = claims.get(groups_claim) or []
    names = found.split(",") if isinstance(found, str) else found if isinstance(found, list) else []
    groups = tuple(dict.fromkeys(g.strip() for g in names if isinstance(g, str) and GROUP.match(g.strip())))[:100]
    return User(str(claims["sub"]), str(claims.get("name") or claims["sub"]),
                str(claims.get("email") or "") if verified else "", groups)


class StrictTransport:
    """HSTS on every answer of an HTTPS Polise: a browser that has been here once never asks it over plain
    HTTP again, where a network attacker could set cookies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"strict-transport-security", b"max-age=31536000")]
            await send(message)

        await self.app(scope, receive, hsts if scope["type"] == "http" else send)

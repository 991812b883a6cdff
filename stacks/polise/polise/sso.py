"""Single sign-on for the office's apps (issue 24). The proxy's shared middleware (`sso@file`, the proxy
stack) asks `/_sso/check` for each request to an app behind it. Polise answers 200 with the user's
identity in headers (the proxy hands them to the app and drops any the client sent) and the same signed
for the app (X-Auth-Token, polise.ssotoken), or sends the browser to sign in, or answers 403 when the app
is for other groups.

No cookie is shared across hosts (ruling 32): the app's own code sees every cookie of its host. Polise's
session stays on Polise's host; each app host gets its own host-only cookie, made by `/_sso/callback` on
that host (the proxy routes `/_sso/` of every host under the office's domain to Polise) from a one-time
code that Polise's host mints for that host alone."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, TimestampSigner

from polise.auth import CONTROLS, current_user, local_path
from polise.i18n import N_, Problem
from polise.sessions import MAX_CODES, SESSION_TTL, TooManyCodes, User, digest, new_id
from polise.ssotoken import HEADER, Signer
from polise.swarmops_api import SsoApp, SwarmopsUnavailable

log = logging.getLogger("polise")
# the app host's cookie: __Host- makes the browser refuse it from any other host or without Secure
COOKIE_HTTPS, COOKIE_HTTP = "__Host-polise_sso", "polise_sso"
# the nonce an app host sets in the browser it sends to sign in: only that browser redeems the code
STATE_HTTPS, STATE_HTTP = "__Host-polise_sso_state", "polise_sso_state"
STATE_TTL = 600   # seconds to sign in at the provider
BINDING = re.compile(r"^[0-9a-f]{64}$")
HOST = re.compile(r"^(?P<name>[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)(?::(?P<port>[0-9]{1,5}))?$")
NO_STORE = {"Cache-Control": "no-store"}


class SsoSource(Protocol):
    def sso_apps(self) -> list[SsoApp]: ...


class Directory:
    """Host -> the apps behind SSO that route it, from swarmops, asked again every `every` seconds, and at
    most every `miss` seconds for a host it does not know (an app deployed a moment ago). Without an answer
    from swarmops the last one stands. A host two apps route is open to the users both let in, and its
    answer carries no signed token (`audience`)."""

    def __init__(self, source: SsoSource, every: float = 10.0, miss: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source, self._every, self._miss, self._clock = source, every, miss, clock
        self._hosts: dict[str, list[SsoApp]] | None = None
        self._at = -1e18
        self._asking = False
        self._lock = threading.Lock()

    def apps_of(self, host: str) -> list[SsoApp]:
        """Raises SwarmopsUnavailable only when swarmops never answered. One caller asks swarmops at a
        time, outside the lock: the others go on with the last answer meanwhile."""
        with self._lock:
            age = self._clock() - self._at
            due = self._hosts is None or age >= self._every or (host not in self._hosts and age >= self._miss)
            ask = due and (not self._asking or self._hosts is None)
            if ask:
                self._asking, self._at = True, self._clock()   # a failure, too, waits its turn
        if ask:
            try:
                self._refresh()
            finally:
                with self._lock:
                    self._asking = False
        with self._lock:
            if self._hosts is None:
                raise SwarmopsUnavailable("single sign-on: swarmops has not listed the apps yet")
            return self._hosts.get(host, [])

    def _refresh(self) -> None:
        try:
            found = self._source.sso_apps()
        except SwarmopsUnavailable as e:
            if self._hosts is None:
                raise
            log.warning("single sign-on: the apps' list not refreshed: %s", e)
            return
        hosts: dict[str, list[SsoApp]] = {}
        for a in found:
            for h in a.hosts:
                hosts.setdefault(h.lower(), []).append(a)
        with self._lock:
            self._hosts = hosts


def refusing(apps: list[SsoApp], user: User) -> SsoApp | None:
    """The first app of a host whose groups `user` is in none of."""
    return next((a for a in apps if a.groups and not set(a.groups) & set(user.groups)), None)


def host_name(value: str) -> tuple[str, str] | None:
    """(host name, host[:port]) of a Host or X-Forwarded-Host value; None for anything else."""
    m = HOST.match(value.strip().lower())
    return (m["name"], m[0]) if m else None


def under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def return_address(rd: str, domain: str, scheme: str, port: int | None) -> tuple[str, str, str] | None:
    """(host name, origin, path) of an app address Polise may send a signed-in browser back to: `scheme`
    and `port` (Polise's own: the proxy's), a host under the office's domain, no user name; None for any
    other (an app's own published port is not the proxy, and would get the code)."""
    if CONTROLS.search(rd) or "\\" in rd:
        return None
    parts = urlsplit(rd)
    host = host_name(parts.netloc) if "@" not in parts.netloc else None
    if parts.scheme != scheme or host is None or host[0] == domain or not under(host[0], domain):
        return None
    try:
        if parts.port != port:
            return None
    except ValueError:
        return None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host[0], f"{scheme}://{host[1]}", local_path(path)


def header_value(text: str) -> str:
    """A header value as raw UTF-8 (Starlette writes str headers as latin-1), without control characters."""
    return CONTROLS.sub("", text).encode().decode("latin-1")


def identity_headers(user: User, token: str | None) -> dict[str, str]:
    """The identity for the proxy to hand the app, and the signed token when there is one."""
    headers = {**NO_STORE, "X-Auth-User": header_value(user.sub), "X-Auth-Email": header_value(user.email),
               "X-Auth-Name": header_value(user.name), "X-Auth-Groups": header_value(",".join(user.groups))}
    return {**headers, HEADER: token} if token is not None else headers


def audience(apps: list[SsoApp]) -> str | None:
    """The token's `aud`: the one app that routes the host; None for a host several apps route. Traefik
    sends each request to one router, so a token naming them all would let one app hold, and mint by
    sending the host's cookie to /_sso/check, tokens every other app of the host accepts: such a host gets
    no token (fail closed: the apps' verifiers then see no one signed in)."""
    names = sorted({a.app for a in apps})
    return names[0] if len(names) == 1 else None


def install(app: FastAPI, templates: Jinja2Templates, directory: Directory, public_url: str, domain: str,
            secret: str, tokens: Signer) -> None:
    """`domain`: the office's apps' domain (POLISE_SSO_DOMAIN); `secret`: signs the app hosts' cookies;
    `tokens`: signs the identity the apps check."""
    signer = TimestampSigner(secret, salt="polise-sso-app-session")
    warned: set[tuple[str, tuple[str, ...]]] = set()   # (host, its apps) already logged as shared

    def token_for(user: User, host: str, routed: list[SsoApp]) -> str | None:
        aud = audience(routed)
        if aud is None:
            shared = (host, tuple(sorted({a.app for a in routed})))
            if shared not in warned:
                warned.add(shared)
                log.warning("single sign-on: %s is routed by several apps (%s): Polise signs no token for it, so "
                            "none of them sees a signed-in user; give each app its own host (its allowed_hosts, "
                            "and not in policy.allowed_hosts shared by every app)", host, ", ".join(shared[1]))
            return None
        return tokens.token(user, aud)
    polise_scheme, polise_port = urlsplit(public_url).scheme, urlsplit(public_url).port

    def sessions() -> Any:
        return app.state.sessions

    def forwarded(request: Request) -> tuple[str, str, str]:
        """(host name, host[:port], scheme) of the request the proxy asks about, or of this one."""
        host = host_name(request.headers.get("x-forwarded-host") or request.headers.get("host") or "")
        if host is None or not under(host[0], domain):
            raise Problem(400, N_("This address is not one of the office's apps."))
        scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
        return host[0], host[1], "https" if scheme == "https" else "http"

    def denied(request: Request, target: SsoApp | None, user: User, host: str) -> HTMLResponse:
        return templates.TemplateResponse(request, "sso_denied.html", {
            "site": public_url, "app_name": target.app if target else host, "known": target is not None,
            "groups": target.groups if target else (), "contact": target.contact if target else "",
            "who": user}, status_code=403, headers=NO_STORE)

    @app.get("/_sso/check")
    def check(request: Request) -> Response:
        """The proxy's question for one request to an app behind SSO."""
        name, netloc, scheme = forwarded(request)
        user = None
        cookie = request.cookies.get(COOKIE_HTTPS if scheme == "https" else COOKIE_HTTP)
        if cookie:
            try:
                user = sessions().app_user(signer.unsign(cookie, max_age=int(SESSION_TTL)).decode(), name)
            except BadSignature:
                log.info("single sign-on: a tampered or expired cookie for %s", name)
        if user is None:
            if request.headers.get("x-forwarded-method", "GET") not in ("GET", "HEAD"):
                raise Problem(401, N_("Sign in first: open the app's page again to sign in."))
            uri = local_path(request.headers.get("x-forwarded-uri") or "/")
            nonce = new_id()   # the proxy hands this answer, Set-Cookie with it, to the browser
            start = f"{public_url}/sso/start?{urlencode({'rd': f'{scheme}://{netloc}{uri}', 'state': digest(nonce)})}"
            sent = RedirectResponse(start, status_code=302, headers=NO_STORE)
            sent.set_cookie(STATE_HTTPS if scheme == "https" else STATE_HTTP, nonce, max_age=STATE_TTL, path="/",
                            secure=scheme == "https", httponly=True, samesite="lax")
            return sent
        routed = directory.apps_of(name)
        if not routed or (target := refusing(routed, user)) is not None:
            return denied(request, None if not routed else target, user, name)
        return Response(status_code=200, headers=identity_headers(user, token_for(user, name, routed)))

    @app.get("/_sso/keys")
    def keys() -> JSONResponse:
        """The public key the tokens are signed with, as a JWK set, for the ops team and tooling."""
        return JSONResponse(tokens.jwks(), headers={"Cache-Control": "max-age=300"})

    @app.get("/sso/start")
    def start(request: Request, rd: str = "", state: str = "") -> Response:
        """On Polise's host: a code for the app host the browser came from and for that browser (`state`,
        the hash of the nonce that host set in it), once it is signed in here."""
        back = return_address(rd, domain, polise_scheme, polise_port)
        if back is None:
            raise Problem(400, N_("Polise sends you back only to the office's own apps: this return address is "
                                  "not one of them."))
        if not BINDING.match(state):
            raise Problem(400, N_("This sign-in link is used up or expired. Open the app again."))
        sid = request.session.get("sid") if current_user(request) else None
        if not isinstance(sid, str):   # back here once signed in
            again = "/sso/start?" + urlencode({"rd": rd, "state": state})
            return RedirectResponse(f"/login?next={quote(again)}", status_code=303)
        try:
            code = sessions().mint_code(sid, back[0], state)
        except TooManyCodes:
            log.warning("single sign-on: a session asked for more than %d codes a minute", MAX_CODES)
            raise Problem(429, N_("Too many sign-in links at once. Wait a minute, then open the app again.")) from None
        if code is None:   # the session ended between the two reads
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(f"{back[1]}/_sso/callback?{urlencode({'code': code, 'rd': back[2]})}",
                                status_code=303, headers=NO_STORE)

    @app.get("/_sso/callback")
    def callback(request: Request, code: str = "", rd: str = "/") -> Response:
        """On the app's host (routed here by the proxy): the host's own cookie, from a code minted for it."""
        name, _, scheme = forwarded(request)
        state_cookie = STATE_HTTPS if scheme == "https" else STATE_HTTP
        nonce = request.cookies.get(state_cookie, "")
        made = sessions().redeem(code, name, digest(nonce)) if code and nonce else None
        if made is None:   # also a code another browser was sent (sign-in CSRF): not this browser's nonce
            raise Problem(400, N_("This sign-in link is used up or expired. Open the app again."))
        back = RedirectResponse(local_path(rd), status_code=303, headers=NO_STORE)
        back.delete_cookie(state_cookie, path="/", secure=scheme == "https", httponly=True, samesite="lax")
        back.set_cookie(COOKIE_HTTPS if scheme == "https" else COOKIE_HTTP, signer.sign(made[0]).decode(),
                        max_age=max(1, int(made[1])), path="/", secure=scheme == "https", httponly=True,
                        samesite="lax")
        return back

    @app.get("/_sso/logout")
    def logout() -> RedirectResponse:
        """An app's "sign out" link: Polise's sign-out, which ends the sessions of every app."""
        return RedirectResponse(f"{public_url}/logout", status_code=303)

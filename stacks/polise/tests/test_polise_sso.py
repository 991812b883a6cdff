"""Single sign-on (polise.sso) as the proxy drives it: /_sso/check asked with the headers Traefik's
forwardAuth sends, /sso/start on Polise's host, /_sso/callback on the app's host. The sessions behind it
are tested for both implementations of polise.sessions.Sessions: in memory and in a real PostgreSQL.
The whole path through the real Traefik and the real provider, in Chromium: tests/integration/test_sso.py."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import OKPKey
from signin import session_cookie
from starlette.types import Message
from test_polise_feedback import store  # noqa: F401 (a fixture)
from test_polise_web import FakeReadApi

from polise import auth, sso, ssotoken
from polise.auth import local_path
from polise.sessions import MemorySessions, Sessions, User
from polise.store import Store, StoreSessions
from polise.swarmops_api import SsoApp, SwarmopsUnavailable
from polise.web import TEMPLATES, create_app

PUBLIC = "https://polise.apps.example.go.id"
DOMAIN = "apps.example.go.id"
SECRET = "sso-test-secret"
ANA = {"sub": "ana", "name": "Dewi Ayu Lestari é", "email": "ana@example.go.id", "groups": ["staff", "ops"]}
BUDI = {"sub": "budi", "name": "Budi", "email": "", "groups": ["staff"]}
TIMETABLE = SsoApp("timetable", ("timetable.apps.example.go.id",))
PAYROLL = SsoApp("payroll", ("payroll.apps.example.go.id",), ("ops",), "the payroll team, ext. 221")


class FakeSsoSource:
    def __init__(self, *apps: SsoApp) -> None:
        self.apps, self.calls, self.down = list(apps), 0, False

    def sso_apps(self) -> list[SsoApp]:
        self.calls += 1
        if self.down:
            raise SwarmopsUnavailable("swarmops did not answer /api/v1/sso: ConnectError")
        return self.apps


@dataclass
class Answer:
    """An answer with its header values as the bytes sent (the test client takes only ASCII ones)."""
    status_code: int
    raw: dict[str, bytes]
    text: str

    @property
    def headers(self) -> dict[str, str]:
        return {k: v.decode("latin-1") for k, v in self.raw.items()}


def asgi_get(app: FastAPI, path: str, headers: dict[str, str]) -> Answer:
    """A GET straight into the ASGI app, as Traefik's forwardAuth asks it."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "server": ("polise_web", 8080), "client": ("198.18.0.9", 40000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "polise_web:8080", **headers}.items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], {k.decode(): v for k, v in start["headers"]}, body.decode())


class Office:
    """Polise, and a browser's cookie jars: Polise's host and each app host, as Traefik routes them."""

    def __init__(self, sessions: Sessions) -> None:
        self.app: FastAPI = create_app(FakeReadApi(), PUBLIC)
        auth.install(self.app, None, SECRET, secure_cookie=True, sessions=sessions)
        self.source = FakeSsoSource(TIMETABLE, PAYROLL)
        self.signer = ssotoken.Signer(OKPKey.generate_key("Ed25519"), PUBLIC)
        sso.install(self.app, TEMPLATES, sso.Directory(self.source), PUBLIC, DOMAIN, SECRET, self.signer)
        self.polise = TestClient(self.app, base_url=PUBLIC, follow_redirects=False, headers={"Accept-Language": "en"})
        self.hosts: dict[str, TestClient] = {}

    def sign_in(self, user: dict[str, Any]) -> None:
        self.polise.cookies.set(auth.SESSION_COOKIE, session_cookie(self.app, user, "t", SECRET),
                                domain="polise.apps.example.go.id")

    def host(self, name: str) -> TestClient:
        """The browser on an app's host: what the proxy sends to Polise there (/_sso/)."""
        if name not in self.hosts:
            self.hosts[name] = TestClient(self.app, base_url=f"https://{name}", follow_redirects=False,
                                          headers={"Accept-Language": "en", "X-Forwarded-Proto": "https"})
        return self.hosts[name]

    def check(self, name: str, uri: str = "/", method: str = "GET", cookie: str | None = None) -> Any:
        """Traefik's forwardAuth question for a request to `name`, with that host's cookies."""
        jar = self.host(name).cookies.get(sso.COOKIE_HTTPS) if cookie is None else cookie
        answer = asgi_get(self.app, "/_sso/check", {
            "X-Forwarded-Host": name, "X-Forwarded-Uri": uri, "X-Forwarded-Proto": "https",
            "X-Forwarded-Method": method, "Accept-Language": "en",
            **({"Cookie": f"{sso.COOKIE_HTTPS}={jar}"} if jar else {})})
        if "set-cookie" in answer.headers:   # the proxy passes it to the browser, on the app's host
            cookie_name, _, rest = answer.headers["set-cookie"].partition("=")
            self.host(name).cookies.set(cookie_name, rest.split(";")[0], domain=name)
        return answer

    def open(self, name: str, uri: str = "/") -> Any:
        """A browser opening an app: check; if sent to sign in, the round trip through Polise's host and the
        app host's callback; then check again. Returns the last check."""
        first = self.check(name, uri)
        if first.status_code != 302:
            return first
        start = self.polise.get(first.headers["location"])
        if start.status_code != 303 or "/_sso/callback" not in start.headers["location"]:
            return start
        back = self.host(name).get(start.headers["location"])
        assert back.status_code == 303, back.text
        assert back.headers["location"] == uri
        return self.check(name, uri)


@pytest.fixture(params=["memory", "postgres"])
def sessions(request: pytest.FixtureRequest) -> Iterator[Sessions]:
    if request.param == "memory":
        yield MemorySessions()
    else:
        yield StoreSessions(request.getfixturevalue("store"))


@pytest.fixture
def office(sessions: Sessions) -> Office:
    return Office(sessions)


def test_an_app_without_a_session_sends_the_browser_to_polise_with_the_address_it_asked_for(office: Office) -> None:
    answer = office.check("timetable.apps.example.go.id", "/jadwal?hari=senin")
    assert answer.status_code == 302
    start = urlsplit(answer.headers["location"])
    assert f"{start.scheme}://{start.netloc}{start.path}" == f"{PUBLIC}/sso/start"
    assert parse_qs(start.query)["rd"] == ["https://timetable.apps.example.go.id/jadwal?hari=senin"]
    # not signed in at Polise either: sign-in first, then back to the same start
    login = office.polise.get(answer.headers["location"])
    assert login.status_code == 303 and login.headers["location"].startswith("/login?next=/sso/start%3Frd%3D")


def test_after_signing_in_the_app_gets_the_users_identity_and_a_second_app_needs_no_new_sign_in(
        office: Office) -> None:
    office.sign_in(ANA)
    answer = office.open("timetable.apps.example.go.id", "/jadwal")
    assert answer.status_code == 200
    assert answer.headers["x-auth-user"] == "ana" and answer.headers["x-auth-email"] == "ana@example.go.id"
    assert answer.raw["x-auth-name"].decode() == "Dewi Ayu Lestari é"   # raw UTF-8
    assert answer.headers["x-auth-groups"] == "staff,ops" and answer.headers["cache-control"] == "no-store"
    assert office.open("payroll.apps.example.go.id").status_code == 200   # Polise's session, a new host cookie


def test_the_app_hosts_cookie_is_host_only_secure_and_not_readable_by_scripts(office: Office) -> None:
    office.sign_in(ANA)
    start = office.polise.get(office.check("timetable.apps.example.go.id").headers["location"])
    back = office.host("timetable.apps.example.go.id").get(start.headers["location"])
    [cookie] = [c for c in back.headers.get_list("set-cookie") if c.startswith(f"{sso.COOKIE_HTTPS}=")]
    [gone] = [c for c in back.headers.get_list("set-cookie") if c.startswith(f"{sso.STATE_HTTPS}=")]
    assert 'max-age=0' in gone.lower()   # the nonce is used up
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= attrs and "domain" not in attrs


def test_sign_out_at_polise_ends_the_session_of_every_app(office: Office) -> None:
    office.sign_in(ANA)
    assert office.open("timetable.apps.example.go.id").status_code == 200
    assert office.open("payroll.apps.example.go.id").status_code == 200
    assert office.polise.get("/logout").status_code == 200   # a GET only asks
    assert office.open("timetable.apps.example.go.id").status_code == 200
    assert office.polise.post("/logout", data={"csrf": "t"}, headers={"Origin": PUBLIC}).status_code == 303
    for host in ("timetable.apps.example.go.id", "payroll.apps.example.go.id"):
        assert office.check(host).status_code == 302, host   # sent to sign in again
    # an app's own sign-out link is Polise's
    out = office.host("timetable.apps.example.go.id").get("/_sso/logout")
    assert out.headers["location"] == f"{PUBLIC}/logout"


def test_a_code_is_used_once_and_only_on_the_host_it_was_made_for(office: Office) -> None:
    office.sign_in(ANA)
    start = office.polise.get(office.check("timetable.apps.example.go.id").headers["location"])
    callback = start.headers["location"]
    elsewhere = "https://payroll.apps.example.go.id" + callback.split("apps.example.go.id", 1)[1]
    assert office.host("payroll.apps.example.go.id").get(elsewhere).status_code == 400   # another host: refused
    start = office.polise.get(office.check("timetable.apps.example.go.id").headers["location"])
    callback = start.headers["location"]
    assert office.host("timetable.apps.example.go.id").get(callback).status_code == 303
    again = office.host("timetable.apps.example.go.id").get(callback)
    assert again.status_code == 400 and "used up or expired" in again.text


def test_a_cookie_of_one_app_host_is_not_a_session_on_another(office: Office) -> None:
    office.sign_in(ANA)
    office.open("timetable.apps.example.go.id")
    stolen = office.host("timetable.apps.example.go.id").cookies.get(sso.COOKIE_HTTPS)
    assert stolen and office.check("timetable.apps.example.go.id", cookie=stolen).status_code == 200
    assert office.check("payroll.apps.example.go.id", cookie=stolen).status_code == 302


@pytest.mark.parametrize("tamper", ["flip", "unsigned", "empty"])
def test_a_tampered_app_cookie_is_refused(office: Office, tamper: str) -> None:
    office.sign_in(ANA)
    office.open("timetable.apps.example.go.id")
    good = office.host("timetable.apps.example.go.id").cookies.get(sso.COOKIE_HTTPS)
    assert good
    value, sig = good.rsplit(".", 1)[0], good.rsplit(".", 1)[1]
    middle = len(sig) // 2   # not the last character: its low bits are padding, some flips decode the same
    bad = {"flip": f"{value}.{sig[:middle]}{'A' if sig[middle] != 'A' else 'B'}{sig[middle + 1:]}",
           "unsigned": good.split(".")[0], "empty": "x"}[tamper]
    assert office.check("timetable.apps.example.go.id", cookie=bad).status_code == 302


@pytest.mark.parametrize("rd", [
    "https://evil.example.com/", "https://apps.example.go.id.evil.com/", "https://evilapps.example.go.id/",
    "https://ana@timetable.apps.example.go.id/", "http://timetable.apps.example.go.id/", "//evil.example.com/",
    "javascript:alert(1)", "https://timetable.apps.example.go.id\\@evil.example.com/", "/relative",
    "https://timetable.apps.example.go.id/\r\nSet-Cookie: x=y", "", "https://timetable.apps.example.go.id:30443/",
    "https://apps.example.go.id/", "https://timetable.apps.example.go.id:99999/"])
def test_a_return_address_outside_the_offices_apps_is_refused(office: Office, rd: str) -> None:
    office.sign_in(ANA)
    answer = office.polise.get("/sso/start", params={"rd": rd, "state": "0" * 64})
    assert answer.status_code == 400 and "return address" in answer.text, rd


def test_the_path_sent_back_to_stays_on_the_app_host(office: Office) -> None:
    office.sign_in(ANA)
    start = office.polise.get("/sso/start", params={"rd": "https://timetable.apps.example.go.id//evil.example.com",
                                                     "state": "0" * 64})
    assert parse_qs(urlsplit(start.headers["location"]).query)["rd"] == ["/"]
    back = office.host("timetable.apps.example.go.id").get("/_sso/callback",
                                                           params={"code": "x", "rd": "//evil.example.com"})
    assert back.status_code == 400   # a made-up code; and a real one never sends the browser off the host:
    assert local_path("//evil.example.com") == "/" and local_path("/\\evil") == "/"
    assert local_path("/a?b=/c") == "/a?b=/c"


@pytest.mark.parametrize("nxt", ["//evil.example.com/", "/\\evil.example.com/", "https://evil.example.com/",
                                 "/\tevil", "evil"])
def test_the_language_switch_sends_the_browser_back_only_on_polises_host(office: Office, nxt: str) -> None:
    answer = office.polise.get("/lang/en", params={"next": nxt})
    assert answer.status_code == 303 and answer.headers["location"] == "/", nxt


def test_a_user_outside_the_apps_groups_gets_polises_page_naming_the_app_and_whom_to_ask(office: Office) -> None:
    office.sign_in(BUDI)
    answer = office.open("payroll.apps.example.go.id")
    assert answer.status_code == 403
    assert "payroll" in answer.text and "ops" in answer.text and "the payroll team, ext. 221" in answer.text
    assert "Budi" in answer.text and f'href="{PUBLIC}/"' in answer.text   # links lead to Polise, not the app
    assert "x-auth-user" not in answer.headers
    office.hosts.clear()   # another browser
    office.sign_in(ANA)
    assert office.open("payroll.apps.example.go.id").status_code == 200   # a member gets in


def test_the_refusal_is_in_indonesian_for_an_indonesian_reader(office: Office) -> None:
    office.sign_in(BUDI)
    office.open("payroll.apps.example.go.id")
    cookie = office.host("payroll.apps.example.go.id").cookies.get(sso.COOKIE_HTTPS)
    answer = asgi_get(office.app, "/_sso/check", {
        "X-Forwarded-Host": "payroll.apps.example.go.id", "X-Forwarded-Proto": "https", "Accept-Language": "id",
        "Cookie": f"{sso.COOKIE_HTTPS}={cookie}"})
    assert answer.status_code == 403 and "hanya untuk anggota" in answer.text and 'lang="id"' in answer.text


def test_a_host_that_swarmops_does_not_list_behind_sso_is_refused_and_asked_again_soon(office: Office) -> None:
    office.sign_in(ANA)
    assert office.open("newapp.apps.example.go.id").status_code == 403   # not (yet) listed: closed
    calls = office.source.calls
    office.check("newapp.apps.example.go.id")
    assert office.source.calls == calls   # a miss is asked again at most every 2 s, not on every request


def test_a_form_post_without_a_session_is_refused_not_redirected(office: Office) -> None:
    answer = office.check("timetable.apps.example.go.id", "/save", method="POST")
    assert answer.status_code == 401 and 'href="https://polise.apps.example.go.id/login' in answer.text


def test_a_host_outside_the_domain_is_not_checked(office: Office) -> None:
    answer = asgi_get(office.app, "/_sso/check", {"X-Forwarded-Host": "evil.example.com",
                                                  "X-Forwarded-Proto": "https"})
    assert answer.status_code == 400


def test_the_directory_keeps_its_last_answer_while_swarmops_is_away() -> None:
    source, now = FakeSsoSource(TIMETABLE), [0.0]
    directory = sso.Directory(source, every=10, miss=2, clock=lambda: now[0])
    assert directory.apps_of("timetable.apps.example.go.id") == [TIMETABLE]
    source.down, now[0] = True, 11.0
    assert directory.apps_of("timetable.apps.example.go.id") == [TIMETABLE]
    with pytest.raises(SwarmopsUnavailable):
        sso.Directory(source).apps_of("timetable.apps.example.go.id")


def test_a_host_two_apps_route_lets_in_only_the_users_both_let_in(office: Office) -> None:
    office.source.apps.append(SsoApp("payroll-admin", ("payroll.apps.example.go.id",), ("finance",), "finance"))
    office.sign_in(ANA)   # in ops (payroll's group), not in finance
    answer = office.open("payroll.apps.example.go.id")
    assert answer.status_code == 403 and "payroll-admin" in answer.text and "finance" in answer.text


# the sessions themselves, for both implementations ------------------------------------------------

def test_a_session_lives_until_it_ends(sessions: Sessions) -> None:
    user = User("ana", "Ana", "ana@example.go.id", ("ops",))
    sid = sessions.create(user)
    assert sessions.user(sid) == user and sessions.user("not-" + sid) is None
    sessions.end(sid)
    assert sessions.user(sid) is None and sessions.mint_code(sid, "a.apps.example.go.id", "b1") is None


def test_an_expired_session_is_no_session_and_makes_no_app_session(sessions: Sessions) -> None:
    sid = sessions.create(User("ana", "Ana", ""), ttl=-1)
    assert sessions.user(sid) is None and sessions.mint_code(sid, "a.apps.example.go.id", "b1") is None


def test_an_app_session_belongs_to_one_host_and_ends_with_its_polise_session(sessions: Sessions) -> None:
    sid = sessions.create(User("ana", "Ana", ""))
    code = sessions.mint_code(sid, "a.apps.example.go.id", "b1")
    assert code and sessions.redeem(code, "b.apps.example.go.id", "b1") is None   # and the code is used up
    code = sessions.mint_code(sid, "a.apps.example.go.id", "b1")
    assert code and sessions.redeem(code, "a.apps.example.go.id", "b2") is None   # another browser's
    code = sessions.mint_code(sid, "a.apps.example.go.id", "b1")
    assert code
    made = sessions.redeem(code, "a.apps.example.go.id", "b1")
    assert made and 0 < made[1] <= 8 * 3600 and sessions.redeem(code, "a.apps.example.go.id", "b1") is None
    assert sessions.app_user(made[0], "a.apps.example.go.id") == User("ana", "Ana", "")
    assert sessions.app_user(made[0], "b.apps.example.go.id") is None
    sessions.end(sid)
    assert sessions.app_user(made[0], "a.apps.example.go.id") is None


def test_a_code_expires_after_a_minute() -> None:
    now = [0.0]
    sessions = MemorySessions(clock=lambda: now[0])
    code = sessions.mint_code(sessions.create(User("ana", "Ana", "")), "a.apps.example.go.id", "b1")
    now[0] = 61.0
    assert code and sessions.redeem(code, "a.apps.example.go.id", "b1") is None


def test_the_database_keeps_hashes_of_the_ids_not_the_ids(store: Store) -> None:  # noqa: F811
    sessions = StoreSessions(store)
    sid = sessions.create(User("ana", "Ana", ""))
    code = sessions.mint_code(sid, "a.apps.example.go.id", "b1")
    assert code
    with store._conn() as c:
        kept = [r["id"] for r in c.execute("SELECT id FROM sessions").fetchall()] + \
               [r["code"] for r in c.execute("SELECT code FROM sso_codes").fetchall()]
    assert sid not in kept and code not in kept and len(kept) >= 2


def test_a_code_made_for_another_browser_does_not_sign_this_one_in(office: Office) -> None:
    """Sign-in CSRF: Budi mints a code with his own session and sends its link to Ana. Ana's browser has
    no nonce of Budi's sign-in, so the link signs her in as nobody, least of all Budi."""
    office.sign_in(BUDI)
    attack = office.polise.get(office.check("timetable.apps.example.go.id").headers["location"])
    link = attack.headers["location"]
    office.hosts.clear()   # Ana's browser, signed in as herself on the app
    office.sign_in(ANA)
    assert office.open("timetable.apps.example.go.id").headers["x-auth-user"] == "ana"
    assert office.host("timetable.apps.example.go.id").get(link).status_code == 400
    assert office.check("timetable.apps.example.go.id").headers["x-auth-user"] == "ana"


def test_a_start_without_the_app_hosts_nonce_is_refused(office: Office) -> None:
    office.sign_in(ANA)
    for state in ("", "abc", "g" * 64):
        answer = office.polise.get("/sso/start", params={"rd": "https://timetable.apps.example.go.id/",
                                                         "state": state})
        assert answer.status_code == 400, state


def test_a_session_cannot_pile_up_codes(office: Office) -> None:
    office.sign_in(ANA)
    params = {"rd": "https://timetable.apps.example.go.id/", "state": "0" * 64}
    answers = [office.polise.get("/sso/start", params=params).status_code for _ in range(25)]
    assert answers[:20] == [303] * 20 and answers[20:] == [429] * 5


def test_polise_over_https_keeps_its_session_in_a_host_only_cookie_and_asks_for_https_only(office: Office) -> None:
    page = office.polise.get("/")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert auth.SESSION_COOKIE == "__Host-polise"
    office.polise.get("/lang/en")   # any page that writes the session
    office.sign_in(ANA)
    answer = office.polise.get("/logout")
    assert answer.status_code == 200 and 'method="post" action="/logout"' in answer.text
    assert office.polise.post("/logout", data={"csrf": "t"}, headers={"Origin": "https://evil.apps.example.go.id"}
                              ).status_code == 403   # another app's page cannot sign anyone out


def test_a_slow_swarmops_does_not_hold_up_the_checks_of_known_hosts() -> None:
    release = threading.Event()

    class Slow(FakeSsoSource):
        def sso_apps(self) -> list[SsoApp]:
            if self.calls:
                release.wait(10)
            return super().sso_apps()

    now = [0.0]
    directory = sso.Directory(Slow(TIMETABLE), every=10, miss=2, clock=lambda: now[0])
    assert directory.apps_of("timetable.apps.example.go.id") == [TIMETABLE]
    now[0] = 11.0   # due: one caller asks swarmops (slowly); the others go on with the last answer
    asking = threading.Thread(target=directory.apps_of, args=("other.apps.example.go.id",))
    asking.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert directory.apps_of("timetable.apps.example.go.id") == [TIMETABLE]
    assert time.monotonic() - started < 1
    release.set()
    asking.join(10)


# the signed answer (polise.ssotoken): what an app checks instead of trusting the headers ------------

def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified(office: Office, token: str) -> dict[str, Any]:
    """The claims of `token`, checked the way the templates check it: with the key /_sso/keys publishes."""
    (jwk,) = office.polise.get("/_sso/keys").json()["keys"]
    head, body, sig = token.split(".")
    assert (jwk["kty"], jwk["crv"], len(b64url(jwk["x"]))) == ("OKP", "Ed25519", 32)
    Ed25519PublicKey.from_public_bytes(b64url(jwk["x"])).verify(b64url(sig), f"{head}.{body}".encode())
    assert json.loads(b64url(head)) == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "JWT"}
    return dict(json.loads(b64url(body)))


def test_the_answer_carries_a_token_signed_with_the_published_key_naming_the_user_and_the_hosts_app(
        office: Office) -> None:
    office.sign_in(ANA)
    before = int(time.time())
    claims = verified(office, office.open("payroll.apps.example.go.id").headers["x-auth-token"])
    assert claims["aud"] == "payroll" and claims["iss"] == PUBLIC   # the app of the host, not the host
    assert (claims["sub"], claims["email"], claims["name"], claims["groups"]) == (
        "ana", "ana@example.go.id", "Dewi Ayu Lestari é", ["staff", "ops"])
    assert before <= claims["iat"] <= time.time() and claims["exp"] == claims["iat"] + 60
    other = verified(office, office.open("timetable.apps.example.go.id").headers["x-auth-token"])
    assert other["aud"] == "timetable" and other["jti"] != claims["jti"]


def test_a_token_does_not_verify_with_another_key_or_changed_claims(office: Office) -> None:
    office.sign_in(ANA)
    token = office.open("timetable.apps.example.go.id").headers["x-auth-token"]
    head, body, sig = token.split(".")
    forged = base64.urlsafe_b64encode(b64url(body).replace(b'"timetable"', b'"payroll"')).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verified(office, f"{head}.{forged}.{sig}")
    office.signer = ssotoken.Signer(OKPKey.generate_key("Ed25519"), PUBLIC)   # a key Polise does not publish
    with pytest.raises(InvalidSignature):
        verified(office, office.signer.token(User("ana", "Ana", "", ()), "timetable"))


def test_a_host_two_apps_route_gets_no_token_and_a_warning_once_naming_both(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    """Traefik sends each request to one router: a token for both apps would let either hold, and mint with
    the host's cookie, tokens the other accepts. So no token (the apps see no one signed in), and ops are told
    once per host which apps share it."""
    office.source.apps.append(SsoApp("jadwal", ("timetable.apps.example.go.id",)))
    office.sign_in(ANA)
    with caplog.at_level(logging.WARNING, "polise"):
        answers = [office.open("timetable.apps.example.go.id") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200] and all("x-auth-token" not in a.headers for a in answers)
    assert answers[0].headers["x-auth-user"] == "ana"   # the identity headers stay as they were
    [line] = [r.getMessage() for r in caplog.records if "several apps" in r.getMessage()]
    assert "timetable.apps.example.go.id" in line and "jadwal, timetable" in line and "its own host" in line
    assert "x-auth-token" in office.open("payroll.apps.example.go.id").headers   # a host of one app: a token


def test_the_audience_is_the_one_app_of_the_host_and_none_for_a_shared_host() -> None:
    assert sso.audience([TIMETABLE, TIMETABLE]) == "timetable"
    assert sso.audience([TIMETABLE, SsoApp("jadwal", ("timetable.apps.example.go.id",))]) is None


def test_no_token_for_a_host_swarmops_does_not_list_nor_without_a_session(office: Office) -> None:
    office.source.apps.remove(PAYROLL)
    office.sign_in(ANA)
    refused = office.open("payroll.apps.example.go.id")
    assert refused.status_code == 403 and "x-auth-token" not in refused.headers
    assert "x-auth-token" not in office.check("timetable.apps.example.go.id", cookie="").headers


@pytest.mark.parametrize(("content", "words"), [
    (b"", "not a PEM private key"),
    (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "not a PEM private key"),
    (ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
     "of another kind, not Ed25519"),
])
def test_a_malformed_signing_key_is_refused_in_one_line_naming_the_file(
        tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "sso_key"
    path.write_bytes(content)
    with pytest.raises(ssotoken.SsoKeyError, match=words) as raised:
        ssotoken.load_key(path)
    assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)
    assert "openssl genpkey -algorithm ed25519" in str(raised.value)


def test_the_key_openssl_makes_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sso_key"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert ssotoken.load_key(path).as_dict(private=False)["crv"] == "Ed25519"

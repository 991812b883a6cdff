"""The status page's sign-in against a small OpenID Connect provider this test runs on 127.0.0.1 (its keys,
its tokens): the code is exchanged with PKCE, and an ID token that is not signed by the provider's key, not
for this client, not for this sign-in (nonce), expired, or `alg: none` never makes a session."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import Config, OidcSettings
from swarmops.daemon.metrics import Metrics
from swarmops.errors import SignInError
from swarmops.http.app import build_app
from swarmops.http.auth import COOKIE
from swarmops.http.context import HttpContext
from swarmops.http.oidc import OidcLogin, principal_of
from tests.unit.test_access import RULES, SHOP, Statuses
from tests.unit.test_pages import EXTERNAL, FakeStore

KEY = RSAKey.generate_key(2048)
OTHER = RSAKey.generate_key(2048)


class Provider:
    """Discovery, keys and a token endpoint; what the next ID token says is set by the test."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.key: Any = KEY
        self.header: dict[str, Any] = {"alg": "RS256"}
        self.exchanged: list[dict[str, list[str]]] = []
        self.nonces: dict[str, str] = {}   # code -> the nonce its authorization carried
        self.raw_token: str | None = None
        self.issuer = ""                   # http://127.0.0.1:PORT once it listens
        self.challenge = ""                # the last authorization's PKCE challenge

    def token(self, code: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "swarmops", "sub": "u-1", "preferred_username": "rtyler",
                  "groups": ["staff"], "iat": now, "exp": now + 300, "nonce": self.nonces.get(code, ""),
                  **self.claims}
        return self.raw_token or jwt.encode(self.header, claims, self.key)


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()

    class Handler(BaseHTTPRequestHandler):
        def _json(self, data: Any, status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._json({"issuer": p.issuer, "authorization_endpoint": f"{p.issuer}/authorize",
                            "token_endpoint": f"{p.issuer}/token", "jwks_uri": f"{p.issuer}/jwks"})
            elif self.path == "/jwks":
                self._json({"keys": [KEY.as_dict(private=False)]})
            else:
                self._json({}, 404)

        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            p.exchanged.append({**form, "authorization": [self.headers.get("Authorization", "")]})
            self._json({"id_token": p.token(form["code"][0]), "token_type": "Bearer"})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    p.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield p
    server.shutdown()


def settings(provider: Provider, tmp_path: Path) -> OidcSettings:
    (tmp_path / "client.secret").write_text("s3cret\n")
    return OidcSettings(discovery_url=f"{provider.issuer}/.well-known/openid-configuration", client_id="swarmops",
                        client_secret_file=tmp_path / "client.secret")


def authorize(provider: Provider, login: OidcLogin) -> tuple[str, str, str]:
    """(pending id, state, code): the provider's side of the redirect, with the code bound to the nonce."""
    pid, url = login.start()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == [f"{EXTERNAL}/auth/callback"]
    code = f"code-{len(provider.nonces)}"
    provider.nonces[code] = query["nonce"][0]
    provider.challenge = query["code_challenge"][0]
    return pid, query["state"][0], code


def test_a_sign_in_makes_the_person_with_their_groups_from_a_verified_id_token(provider: Provider,
                                                                               tmp_path: Path) -> None:
    login = OidcLogin(settings(provider, tmp_path), EXTERNAL)
    pid, state, code = authorize(provider, login)
    who = login.finish(pid, state, code)
    assert (who.name, who.groups) == ("user:rtyler", ("staff",))
    [sent] = provider.exchanged
    verifier = sent["code_verifier"][0]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == provider.challenge
    assert sent["authorization"][0] == "Basic " + base64.b64encode(b"swarmops:s3cret").decode()
    tampered = pid[:-1] + ("0" if pid[-1] != "0" else "1")   # the browser's pending sign-in, changed
    with pytest.raises(SignInError, match="not started here"):
        login.finish(tampered, state, code)


@pytest.mark.parametrize("change", ["key", "aud", "iss", "nonce", "exp", "none", "state", "pending"])
def test_an_id_token_or_callback_that_does_not_verify_makes_no_session(provider: Provider, tmp_path: Path,
                                                                       change: str) -> None:
    login = OidcLogin(settings(provider, tmp_path), EXTERNAL)
    pid, state, code = authorize(provider, login)
    if change == "key":
        provider.key = OTHER
    elif change in ("aud", "iss", "nonce"):
        provider.claims[change] = "someone-else"
    elif change == "exp":
        provider.claims["exp"] = int(time.time()) - 3600
    elif change == "none":   # unsigned, claiming ops
        body = base64.urlsafe_b64encode(json.dumps({**provider.claims, "iss": provider.issuer, "aud": "swarmops",
                                                    "sub": "x", "groups": ["ops"], "exp": int(time.time()) + 60,
                                                    "nonce": provider.nonces[code]}).encode()).rstrip(b"=")
        provider.raw_token = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + "." + \
            body.decode() + "."
    why = {"state": "not for this sign-in", "pending": "not started here"}.get(change, "ID token does not verify")
    with pytest.raises(SignInError, match=why):
        login.finish("another" if change == "pending" else pid, "forged" if change == "state" else state, code)


def test_a_login_or_group_that_is_not_one_line_of_plain_text_is_not_kept() -> None:
    who = principal_of({"sub": "u", "preferred_username": "dwho", "groups": "ops, staff,bad\ngroup,"})
    assert who.groups == ("ops", "staff")
    assert principal_of({"sub": "abc", "preferred_username": "<script>"}).name == "user:abc"
    with pytest.raises(SignInError, match="cannot show"):
        principal_of({"sub": "a b\x1b[2J", "preferred_username": None})


def test_the_page_signs_a_person_in_and_takes_only_what_their_groups_may_do(provider: Provider,
                                                                           tmp_path: Path) -> None:
    config = Config.model_validate({"registry": "r:5000", "access": RULES, "apps": [SHOP], "http": {
        "external_url": EXTERNAL, "oidc": settings(provider, tmp_path).model_dump(mode="json")}})
    ctx = HttpContext(config=config, reconciler=None, store=FakeStore(),  # type: ignore[arg-type]
                      sources=lambda _a: None,  # type: ignore[arg-type,return-value]
                      statuses=Statuses(), tokens=TokenStore(tmp_path / "t.json"),  # type: ignore[arg-type]
                      triggers=None, metrics=Metrics(lambda: []))  # type: ignore[arg-type]
    client = TestClient(build_app(ctx), base_url=EXTERNAL)
    assert 'href="/auth/login"' in client.get("/login").text
    went = client.get("/auth/login", follow_redirects=False)
    assert went.status_code == 303 and "samesite=lax" in went.headers["set-cookie"].lower()
    query = parse_qs(urlsplit(went.headers["location"]).query)
    provider.nonces["c1"] = query["nonce"][0]
    done = client.get(f"/auth/callback?state={query['state'][0]}&code=c1")
    assert done.status_code == 200 and "Signed in as user:rtyler" in done.text
    assert f"__Host-{COOKIE}=" in done.headers["set-cookie"] and "samesite=strict" in done.headers["set-cookie"].lower()
    assert "__Host-swarmops_signin=" in went.headers["set-cookie"] and "path=/" in went.headers["set-cookie"].lower()
    page = client.get("/apps/shop-staging").text
    assert 'id="sync"' in page and 'id="rollback"' not in page and "user:rtyler" in page
    assert client.get("/apps/shop").status_code == 403   # staff may not touch production, nor read it
    # a forged callback (another state) signs nobody in and says why
    again = client.get("/auth/callback?state=forged&code=c1")
    assert again.status_code == 401 and "start it again" in again.text
    said = client.get("/auth/callback?error=Session+expired,+sign+in+at+https://evil.example")
    assert said.status_code == 401 and "evil.example" not in said.text   # a link's free text is not shown

"""The status page's sign-in through the office's OpenID Connect provider: authorization code with PKCE
(S256), state and nonce kept on the server, the ID token's signature (the provider's published keys),
issuer, audience, expiry and nonce checked by joserfc (Authlib's JOSE, on its own). What comes out is a
Principal: the person's login and the groups the provider says they are in, which the config's `access:`
rules turn into grants.

The provider is asked over HTTP with `requests` (its metadata cached for an hour, its keys read at each
sign-in). A sign-in under way is kept in the browser's own cookie, signed with a key of this process (no
store on the server that a flood of starts could fill or evict)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from swarmops.config.models import OidcSettings
from swarmops.domain.access import Principal
from swarmops.errors import SignInError

PENDING_TTL = 600.0        # seconds a sign-in may take at the provider
METADATA_TTL = 3600.0
# what a login or a group may be to reach a log line, the page and the history: one line, no separators
LOGIN = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
GROUP = re.compile(r"^[^\x00-\x1f\x7f,]{1,200}$")
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]   # never "none", never a shared secret


@dataclass(frozen=True)
class Pending:
    state: str
    nonce: str
    verifier: str
    started: float


class OidcLogin:
    def __init__(self, settings: OidcSettings, external_url: str, timeout: float = 10.0) -> None:
        self.settings = settings
        self.redirect_uri = external_url.rstrip("/") + "/auth/callback"
        self.timeout = timeout
        self._key = secrets.token_bytes(32)   # signs the pending sign-ins' cookies; a restart voids them
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta and time.monotonic() - self._meta[0] < METADATA_TTL:
                return self._meta[1]
        meta = self._get(self.settings.discovery_url)
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(key), str):
                raise SignInError(f"the provider's metadata ({self.settings.discovery_url}) has no {key}")
        with self._lock:
            self._meta = (time.monotonic(), meta)
        return meta

    def _get(self, url: str) -> dict[str, Any]:
        try:
            res = requests.get(url, timeout=self.timeout)
            res.raise_for_status()
            data = res.json()
        except (requests.RequestException, ValueError) as e:
            raise SignInError(f"the sign-in provider did not answer at {url}: {type(e).__name__}") from None
        if not isinstance(data, dict):
            raise SignInError(f"the sign-in provider's answer at {url} is not a JSON object")
        return data

    def start(self) -> tuple[str, str]:
        """(the pending sign-in, for a cookie; the provider's URL to send the browser to)."""
        meta = self._metadata()
        pending = Pending(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                          time.time())
        challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest()).rstrip(b"=")
        query = urlencode({"response_type": "code", "client_id": self.settings.client_id,
                           "redirect_uri": self.redirect_uri, "scope": self.settings.scope, "state": pending.state,
                           "nonce": pending.nonce, "code_challenge": challenge.decode(),
                           "code_challenge_method": "S256"})
        return self._seal(pending), f"{meta['authorization_endpoint']}?{query}"

    def _seal(self, pending: Pending) -> str:
        body = base64.urlsafe_b64encode(json.dumps([pending.state, pending.nonce, pending.verifier,
                                                    pending.started]).encode()).decode()
        return f"{body}.{hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()}"

    def _open(self, sealed: str | None) -> Pending | None:
        body, _, mac = (sealed or "").rpartition(".")
        if not body or not hmac.compare_digest(mac, hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()):
            return None
        try:
            state, nonce, verifier, started = json.loads(base64.urlsafe_b64decode(body))
            return Pending(str(state), str(nonce), str(verifier), float(started))
        except (ValueError, TypeError):
            return None

    def finish(self, sealed: str | None, state: str, code: str) -> Principal:
        """The person the provider signed in, from the callback's `state` and `code` and the browser's pending
        sign-in (SignInError otherwise)."""
        pending = self._open(sealed)
        if pending is None or time.time() - pending.started > PENDING_TTL:
            raise SignInError("this sign-in was not started here or took too long; start it again")
        if not secrets.compare_digest(state.encode(), pending.state.encode()):
            raise SignInError("the provider's answer is not for this sign-in (state); start it again")
        meta = self._metadata()
        claims = self._verified(meta, self._id_token(meta, code, pending.verifier), pending.nonce)
        return principal_of(claims, self.settings.groups_claim)

    def _id_token(self, meta: dict[str, Any], code: str, verifier: str) -> str:
        try:
            secret = self.settings.client_secret_file.read_text().strip()
        except OSError as e:
            raise SignInError(f"cannot read oidc.client_secret_file {self.settings.client_secret_file}: "
                              f"{e.strerror}") from None
        try:
            res = requests.post(meta["token_endpoint"], timeout=self.timeout, auth=(self.settings.client_id, secret),
                                data={"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": self.redirect_uri, "code_verifier": verifier})
            body = res.json() if res.headers.get("content-type", "").startswith("application/json") else {}
        except (requests.RequestException, ValueError) as e:
            raise SignInError(f"the provider's token endpoint did not answer: {type(e).__name__}") from None
        token = body.get("id_token") if isinstance(body, dict) else None
        if res.status_code != 200 or not isinstance(token, str):
            reason = body.get("error") if isinstance(body, dict) else None
            raise SignInError(f"the provider refused the sign-in code ({res.status_code}"
                              + (f", {str(reason)[:80]}" if reason else "") + "); start it again")
        return token

    def _verified(self, meta: dict[str, Any], token: str, nonce: str) -> dict[str, Any]:
        registry = jwt.JWTClaimsRegistry(leeway=60, iss={"essential": True, "value": meta["issuer"]},
                                         aud={"essential": True, "value": self.settings.client_id},
                                         nonce={"essential": True, "value": nonce}, exp={"essential": True},
                                         sub={"essential": True})
        try:
            keys = KeySet.import_key_set(self._get(meta["jwks_uri"]))   # type: ignore[arg-type]
            found = jwt.decode(token, keys, algorithms=ALGORITHMS)
            registry.validate(found.claims)
        except (JoseError, ValueError, TypeError) as e:
            raise SignInError(f"the provider's ID token does not verify ({type(e).__name__}); start it again") \
                from None
        return dict(found.claims)


def principal_of(claims: dict[str, Any], groups_claim: str = "groups") -> Principal:
    """user:LOGIN (preferred_username, else sub) and the groups (a list, or one comma-separated string), each
    kept only when it is one line of plain text."""
    login = next((str(v) for v in (claims.get("preferred_username"), claims.get("sub"))
                  if isinstance(v, str) and LOGIN.match(v)), None)
    if login is None:
        raise SignInError("the provider names the person with a login this page cannot show; ask the ops team")
    found = claims.get(groups_claim) or []
    names = found.split(",") if isinstance(found, str) else found if isinstance(found, list) else []
    groups = tuple(dict.fromkeys(g.strip() for g in names if isinstance(g, str) and GROUP.match(g.strip())))[:100]
    return Principal(f"user:{login}", groups)

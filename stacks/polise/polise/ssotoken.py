"""The signed answer of the single sign-on door (issue 24): every 200 of `/_sso/check` carries X-Auth-Token,
a compact JWT (EdDSA with Ed25519, RFC 8037) naming the user and the swarmops app the request's host
belongs to. An app checks it with Polise's public key and its own app name, both set by swarmops; the
X-Auth-* headers beside it are trustworthy only through the proxy, the token wherever it comes from (a
container on the shared `proxy` network can send any header, but cannot sign).

The key is a PEM (PKCS#8) Ed25519 private key in a file (a Swarm secret):
`openssl genpkey -algorithm ed25519 -out polise_sso_key.pem`. `/_sso/keys` publishes its public half as a
JWK set; its `x` is what swarmops' `sso.public_key` takes."""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from polise.sessions import User

ALG = "EdDSA"
TTL = 60   # seconds: a token is for one request, replayed later it is nothing
HEADER = "X-Auth-Token"


class SsoKeyError(Exception):
    """The signing key file is missing or not an Ed25519 private key: one line naming the file and the fix."""


def load_key(path: Path) -> OKPKey:
    fix = "make one with: openssl genpkey -algorithm ed25519"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SsoKeyError(f"{path}: the SSO signing key cannot be read ({e.strerror}); {fix}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SsoKeyError(f"{path}: not a PEM private key without a passphrase; {fix}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SsoKeyError(f"{path}: a private key of another kind, not Ed25519; {fix}")
    return OKPKey.import_key(key)


class Signer:
    """Mints the tokens of one key; `clock` is the wall clock (the apps compare `exp` with theirs)."""

    def __init__(self, key: OKPKey, issuer: str, clock: Callable[[], float] = time.time) -> None:
        self._key, self._issuer, self._clock = key, issuer, clock
        self.kid = key.thumbprint()   # RFC 7638: the same key always has the same id

    def token(self, user: User, audience: str | list[str]) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer, "aud": audience, "sub": user.sub, "email": user.email, "name": user.name,
            "groups": list(user.groups), "iat": now, "exp": now + TTL, "jti": secrets.token_urlsafe(16)}
        with warnings.catch_warnings():
            # joserfc warns that RFC 9864 deprecates "EdDSA" for "Ed25519"; the apps' verifiers (Go, Node,
            # PHP, Python as the templates write them) and most JWT libraries know only RFC 8037's name yet
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode({"alg": ALG, "kid": self.kid}, claims, self._key, algorithms=[ALG])

    def jwks(self) -> dict[str, Any]:
        public = {**self._key.as_dict(private=False), "kid": self.kid, "alg": ALG, "use": "sig"}
        return {"keys": [public]}

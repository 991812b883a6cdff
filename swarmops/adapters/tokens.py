"""API tokens: printed once at creation, stored only as hashes under state_dir."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from swarmops.config.models import AccessRule
from swarmops.domain.access import Grant, Principal
from swarmops.errors import TokenError

SCOPES = ("read", "deploy")
TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class TokenRecord:
    name: str
    scope: str
    sha256: str
    created: float
    apps: list[str] | None = None    # the app patterns it is limited to (None: every app)
    may: list[str] | None = None     # a deploy token's actions (None: every one)

    def principal(self) -> Principal:
        """Only a missing limit means every app or action (a token made before limits existed); an empty
        list means none, and a scope other than read or deploy grants nothing."""
        apps = ("*",) if self.apps is None else tuple(self.apps)
        may = {"read": ("read",), "deploy": ("*",) if self.may is None else tuple(self.may)}.get(self.scope, ())
        return Principal(f"token:{self.name}", grants=(Grant(apps, may),) if apps and may else ())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> list[TokenRecord]:
        try:
            return [TokenRecord(**r) for r in json.loads(self.path.read_text())]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as e:
            raise TokenError(f"{self.path}: unreadable token store ({type(e).__name__})") from e

    def _save(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([asdict(r) for r in records], f, indent=1)
        tmp.replace(self.path)

    def create(self, name: str, scope: str, apps: list[str] | None = None, may: list[str] | None = None) -> str:
        """A new token; `apps` limits it to those app patterns, `may` a deploy token to those actions."""
        if scope not in SCOPES:
            raise TokenError(f"scope {scope!r}: use read or deploy")
        if not TOKEN_NAME.fullmatch(name):   # it reaches log lines, the history and the page as token:NAME
            raise TokenError(f"{name!r} is not a token name: letters, digits, '.', '_' and '-', at most 64")
        if may is not None and scope != "deploy":
            raise TokenError("--may names a deploy token's actions; a read token only reads")
        try:   # the same checks as a rule of the config's access:
            AccessRule.model_validate({"groups": ["token"], "apps": apps or ["*"], "may": may or ["*"]})
        except ValidationError as e:
            raise TokenError(f"token {name!r}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        records = self._load()
        if any(r.name == name for r in records):
            raise TokenError(f"a token named {name!r} exists; revoke it first or pick another name")
        token = "so_" + secrets.token_urlsafe(32)
        self._save([*records, TokenRecord(name, scope, _hash(token), time.time(), apps, may)])
        return token

    def list(self) -> list[TokenRecord]:
        return self._load()

    def revoke(self, name: str) -> None:
        records = self._load()
        if not any(r.name == name for r in records):
            raise TokenError(f"no token named {name!r}")
        self._save([r for r in records if r.name != name])

    def scope_of(self, token: str) -> str | None:
        """The token's scope, or None when it is unknown."""
        found = self.record_of(token)
        return found.scope if found else None

    def named(self, name: str) -> TokenRecord | None:
        return next((r for r in self._load() if r.name == name), None)

    def record_of(self, token: str) -> TokenRecord | None:
        """The token's record, or None when it is unknown (constant-time comparison of hashes)."""
        digest = _hash(token)
        found = None
        for r in self._load():
            if hmac.compare_digest(r.sha256, digest):
                found = r
        return found

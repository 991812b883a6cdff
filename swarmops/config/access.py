"""Who may sign in to the status page and do what (issue 27, item 4): the office's OpenID Connect provider,
and the rules that give its groups actions on apps (domain/access.py decides with them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from swarmops.config.fields import Strict, one_line


class OidcSettings(Strict):
    """The status page's sign-in through the office's OpenID Connect provider (the one Polise uses):
    authorization code with PKCE; the groups claim decides what the person may do (`access:`)."""

    discovery_url: str = Field(pattern=r"^https?://\S+$")   # .../.well-known/openid-configuration
    client_id: str
    client_secret_file: Path
    scope: str = "openid profile email groups"
    groups_claim: str = "groups"


class AccessRule(Strict):
    """One rule of `access:`: the people of these groups (the office's sign-in) may do these actions to the
    apps these patterns match (a stack name, or APP/ENV for an environment: `shop/staging`, `shop/*`, `*`)."""

    groups: list[str] = Field(min_length=1)
    apps: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    may: list[Literal["read", "sync", "pause", "resume", "rollback", "promote", "*"]] = Field(min_length=1)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        return [one_line(g, "a group name", 256) for g in v]

    @field_validator("apps")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if not re.fullmatch(r"[a-z0-9*][a-z0-9_.*-]*(/[a-z0-9*][a-z0-9*-]*)?", pattern):
                raise ValueError(f"{pattern!r} is not an app pattern: a stack name or APP/ENV, with * for any part "
                                 "(shop, shop/staging, shop/*, *)")
        return v

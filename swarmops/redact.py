"""Keep credentials out of anything printed: URLs with userinfo, tokens in text."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(text: str) -> str:
    """Replace the userinfo of every URL in `text` (https://user:token@host -> https://***@host)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Redact URL credentials and every known secret value from `text`."""
    out = redact_url(text)
    for s in secrets:
        if s:
            out = out.replace(s, "***")
    return out

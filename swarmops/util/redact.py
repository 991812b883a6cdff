"""Keep credentials out of anything printed: URLs with userinfo, tokens in text."""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

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


# C0 and C1 controls (but tab and newline), DEL, and the bidirectional overrides that reorder what a
# terminal shows ("Trojan source"): escaped, so a commit message cannot write the clipboard (OSC 52),
# hide text (ESC[8m) or rewrite a line (\r) on an operator's terminal
_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# what XML 1.0 cannot carry at all, not even as a character reference
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def terminal_safe(text: str) -> str:
    """`text` with every control character written as a visible escape (\\x1b, \\u202e)."""
    return _TERMINAL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def xml_safe(text: str) -> str:
    """`text` without the characters an XML document cannot contain."""
    return _NOT_XML.sub("", text)


class TerminalSafe(io.TextIOBase):
    """stdout and stderr of the CLI: control characters from repos (commit messages, authors, file names,
    errors) are written as escapes. JSON output is escaped by json itself; binary output uses .buffer."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def buffer(self) -> Any:
        return self.inner.buffer

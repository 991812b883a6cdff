"""News: one entry per deployed commit (what users actually got), newest first; merges and bots left
out, the first line of the message is the title. Served as a page, JSON and an Atom feed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape as _escape

BOT = re.compile(r"(\[bot\]|(^|[-_. ])bot([-_. @]|$)|dependabot|renovate)", re.I)
# what XML 1.0 cannot carry, not even escaped: a control character in one commit message must not make the
# whole feed ill-formed
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def strip_controls(text: str) -> str:
    """Text a page or feed can carry: no control characters but tab and line breaks."""
    return _CONTROLS.sub("", _NOT_XML.sub("", text))


def escape(text: str) -> str:
    return _escape(strip_controls(text))


@dataclass(frozen=True)
class Entry:
    app: str
    commit: str
    title: str
    message: str
    author: str
    deployed_at: float

    def to_dict(self) -> dict[str, Any]:
        """For /news.json: the text as the page and the feed show it, without control characters."""
        return {k: strip_controls(v) if isinstance(v, str) else v for k, v in asdict(self).items()}


def is_bot(author: str, email: str = "") -> bool:
    return bool(BOT.search(author) or BOT.search(email.split("@", 1)[0]))


def entries(app: str, history: Iterable[Mapping[str, Any]], commits: Mapping[str, Mapping[str, Any]]) -> list[Entry]:
    """From swarmops' history of one app (newest first) and its commit log by sha: the deployed commits.
    A commit deployed twice (a rollback, a force-push back) is news once, at its first deploy."""
    seen: dict[str, Entry] = {}
    for deploy in sorted(history, key=lambda d: float(d.get("ended") or d.get("started") or 0)):
        sha = str(deploy.get("commit_sha", ""))
        if deploy.get("result") != "succeeded" or not sha or sha in seen:
            continue
        commit = commits.get(sha, {})
        if commit.get("merge") or is_bot(str(commit.get("author", deploy.get("author", ""))),
                                         str(commit.get("email", ""))):
            continue
        message = str(commit.get("message") or deploy.get("message") or "").strip()
        seen[sha] = Entry(app, sha, message.split("\n", 1)[0], message,
                          str(commit.get("author") or deploy.get("author") or ""),
                          float(deploy.get("ended") or deploy.get("started") or 0))
    return sorted(seen.values(), key=lambda e: e.deployed_at, reverse=True)


def atom(feed_entries: Iterable[Entry], base_url: str, title: str = "Polise: what changed") -> str:
    """An Atom 1.0 feed (RFC 4287)."""
    items = list(feed_entries)
    updated = _when(max((e.deployed_at for e in items), default=0.0))
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
           f"<title>{escape(title)}</title>", f'<link href="{escape(base_url)}/news.atom" rel="self"/>',
           f"<id>{escape(base_url)}/news</id>", f"<updated>{updated}</updated>"]
    for e in items:
        out += ["<entry>", f"<title>{escape(e.app)}: {escape(e.title)}</title>",
                f"<id>urn:polise:{escape(e.app)}:{e.commit}</id>", f"<updated>{_when(e.deployed_at)}</updated>",
                f"<author><name>{escape(e.author or 'unknown')}</name></author>",
                f'<link href="{escape(base_url)}/apps/{escape(e.app)}"/>',
                f"<content type=\"text\">{escape(e.message)}</content>", "</entry>"]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_feed(message: str, base_url: str) -> str:
    """An Atom feed without entries whose title says why: what a feed reader shows of a failed fetch."""
    return "\n".join(['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
                      f"<title>Polise: {escape(message)}</title>",
                      f'<link href="{escape(base_url)}/news.atom" rel="self"/>', f"<id>{escape(base_url)}/news</id>",
                      f"<updated>{_when(datetime.now(UTC).timestamp())}</updated>", "</feed>"]) + "\n"

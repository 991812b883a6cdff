"""Contributions: per developer over a period, commits and changed lines in code and in docs across every
app repo, from the commit logs swarmops serves (mailmap-aware there); bots and merges counted apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from polise.news import is_bot, strip_controls


@dataclass
class Contribution:
    author: str
    email: str          # only to count one person once under one address: never shown nor published
    commits: int = 0
    code_commits: int = 0
    docs_commits: int = 0
    code_lines: int = 0
    docs_lines: int = 0
    apps: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """For /contributions.json: the name as the page shows it, without control characters, and no
        email address (the JSON is public: an address there is a gift to every spammer)."""
        data = asdict(self)
        del data["email"]
        data.update(author=strip_controls(self.author), apps=sorted(self.apps))
        return data


@dataclass
class Report:
    developers: list[Contribution]
    merges: int = 0
    bot_commits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"developers": [d.to_dict() for d in self.developers], "merges": self.merges,
                "bot_commits": self.bot_commits}


def contributions(logs: Mapping[str, Iterable[Mapping[str, Any]]]) -> Report:
    """`logs`: app -> its commits as swarmops' /commits returns them (already filtered by period)."""
    by_email: dict[str, Contribution] = {}
    report = Report([])
    seen: set[str] = set()   # a commit in two apps' repos (a shared history) counts once
    for app, commits in logs.items():
        for c in commits:
            if c.get("merge"):
                report.merges += 1
                continue
            author, email = str(c.get("author", "")), str(c.get("email", "")).lower()
            if is_bot(author, email):
                report.bot_commits += 1
                continue
            person = by_email.setdefault(email or author, Contribution(author, email))
            person.apps.add(app)
            if c.get("sha") in seen:
                continue
            seen.add(str(c.get("sha")))
            lines = {"code": 0, "docs": 0}
            for f in c.get("files", []):
                if f.get("kind") in lines:
                    lines[f["kind"]] += int(f.get("added") or 0) + int(f.get("deleted") or 0)
            person.commits += 1
            person.code_lines += lines["code"]
            person.docs_lines += lines["docs"]
            person.code_commits += 1 if any(f.get("kind") == "code" for f in c.get("files", [])) else 0
            person.docs_commits += 1 if any(f.get("kind") == "docs" for f in c.get("files", [])) else 0
    report.developers = sorted(by_email.values(), key=lambda p: (-p.commits, p.author))
    return report

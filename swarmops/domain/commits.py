"""A branch's commit log as the read API serves it (for the portal): each commit with its files changed,
classed as code, docs or other. Parsing of `git log --numstat` output is pure, so it is tested alone."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

DOC_SUFFIXES = {".md", ".markdown", ".rst", ".adoc", ".txt"}
CODE_SUFFIXES = {".py", ".php", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue", ".svelte", ".go", ".java",
                 ".kt", ".rb", ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift", ".scala", ".sh",
                 ".sql", ".html", ".htm", ".css", ".scss", ".sass", ".less", ".twig", ".blade", ".erb",
                 ".yml", ".yaml", ".toml", ".json", ".ini", ".conf", ".xml", ".gradle", ".tf"}
CODE_NAMES = {"Dockerfile", "Makefile", "Containerfile", "Procfile", "Gemfile", "Rakefile"}
# The log is read without any separator inside text: `git log -z --format=%H --numstat` gives commit ids
# and file counts (NUL-terminated, paths verbatim); each commit's own object, from `git cat-file --batch`
# (sizes in bytes), gives parents, author and message. No character of a message can start a record.
LOG_ARGS = ("log", "-z", "--numstat", "--no-renames", "--format=%H")
_SHA = re.compile(r"[0-9a-f]{40}")
_IDENT = re.compile(rb"^(?P<name>.*?) <(?P<email>[^>]*)> (?P<ts>-?\d+) (?P<tz>[+-]\d{4})$")


def classify(path: str) -> str:
    """'docs' for documentation, 'code' for what builds or runs, 'other' for the rest (images, data)."""
    p = PurePosixPath(path)
    if p.parts[:1] == ("docs",) or p.suffix.lower() in DOC_SUFFIXES or p.name.upper().startswith(
            ("README", "CHANGELOG")):
        return "docs"
    if p.name in CODE_NAMES or p.suffix.lower() in CODE_SUFFIXES:
        return "code"
    return "other"


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: str              # code, docs or other
    added: int | None      # None for a binary file
    deleted: int | None


@dataclass(frozen=True)
class LogEntry:
    sha: str
    parents: tuple[str, ...]
    author: str
    email: str
    date: str              # ISO 8601 with offset, as git gives it
    message: str
    files: tuple[FileChange, ...] = field(default=())

    @property
    def merge(self) -> bool:
        return len(self.parents) > 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["title"] = self.message.split("\n", 1)[0]
        data["merge"] = self.merge
        return data


def parse_numstat(text: str) -> list[tuple[str, tuple[FileChange, ...]]]:
    """`git log -z --format=%H --numstat` output: each commit id with its files."""
    out: list[tuple[str, list[FileChange]]] = []
    for token in text.split("\0"):
        token = token.lstrip("\n")
        if _SHA.fullmatch(token):
            out.append((token, []))
        elif out and token:
            added, _, tail = token.partition("\t")
            deleted, _, path = tail.partition("\t")
            if path:
                out[-1][1].append(FileChange(path, classify(path), _count(added), _count(deleted)))
    return [(sha, tuple(files)) for sha, files in out]


def parse_batch(data: bytes) -> dict[str, bytes]:
    """`git cat-file --batch` output: object id -> raw object."""
    objects: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        if len(header) != 3:   # "<id> missing"
            pos = end + 1
            continue
        size = int(header[2])
        objects[header[0].decode()] = data[end + 1:end + 1 + size]
        pos = end + 1 + size + 1
    return objects


@dataclass(frozen=True)
class CommitObject:
    parents: tuple[str, ...]
    author: str
    email: str
    date: str
    message: str


def parse_commit(raw: bytes) -> CommitObject:
    """A raw commit object: headers until the first empty line, then the message."""
    head, _, body = raw.partition(b"\n\n")
    parents: list[str] = []
    author = email = date = ""
    for line in head.split(b"\n"):
        if line.startswith(b"parent "):
            parents.append(line[7:].decode("ascii", "replace"))
        elif line.startswith(b"author "):
            m = _IDENT.match(line[7:])
            if m:
                author, email = m["name"].decode("utf-8", "replace"), m["email"].decode("utf-8", "replace")
                date = _iso(int(m["ts"]), m["tz"].decode())
    return CommitObject(tuple(parents), author, email, date, body.decode("utf-8", "replace").strip())


def _iso(ts: int, tz: str) -> str:
    sign = -1 if tz.startswith("-") else 1
    offset = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])))
    return datetime.fromtimestamp(ts, offset).isoformat()


def _count(value: str) -> int | None:
    return int(value) if value.isdigit() else None

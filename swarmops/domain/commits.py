"""A branch's commit log as the read API serves it (for the portal): each commit with its files changed,
classed as code, docs or other. Parsing of `git log --numstat` output is pure, so it is tested alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

DOC_SUFFIXES = {".md", ".markdown", ".rst", ".adoc", ".txt"}
CODE_SUFFIXES = {".py", ".php", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue", ".svelte", ".go", ".java",
                 ".kt", ".rb", ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift", ".scala", ".sh",
                 ".sql", ".html", ".htm", ".css", ".scss", ".sass", ".less", ".twig", ".blade", ".erb",
                 ".yml", ".yaml", ".toml", ".json", ".ini", ".conf", ".xml", ".gradle", ".tf"}
CODE_NAMES = {"Dockerfile", "Makefile", "Containerfile", "Procfile", "Gemfile", "Rakefile"}
# the log format: one record per commit, fields split by US, records by RS (never in commit text);
# author name and email through the repo's .mailmap (%aN, %aE)
LOG_FORMAT = "%x1e%H%x1f%P%x1f%aN%x1f%aE%x1f%aI%x1f%B%x1f"


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


def parse_log(text: str) -> list[LogEntry]:
    """`git log --numstat --format=LOG_FORMAT` output, one entry per commit."""
    entries = []
    for record in text.split("\x1e")[1:]:
        fields = record.split("\x1f")
        if len(fields) < 7:
            continue
        sha, parents, author, email, date, message, rest = fields[:7]
        files = []
        for line in rest.splitlines():
            added, _, tail = line.partition("\t")
            deleted, _, path = tail.partition("\t")
            if not path:
                continue
            files.append(FileChange(path, classify(path), _count(added), _count(deleted)))
        entries.append(LogEntry(sha, tuple(parents.split()), author, email, date, message.strip(), tuple(files)))
    return entries


def _count(value: str) -> int | None:
    return int(value) if value.isdigit() else None

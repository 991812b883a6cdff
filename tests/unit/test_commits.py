"""The commit log of the read API: a real repo made here, read through GitSource.log."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from swarmops.adapters.git import GitSource
from swarmops.domain.commits import classify


def git(cwd: Path, *args: str, date: str = "2026-11-01T10:00:00+00:00") -> str:
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", "-c", "user.name=Dev Eloper", "-c", "user.email=dev@example.org", *args],
                          cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_files_are_classed_as_code_docs_or_other() -> None:
    assert [classify(p) for p in ("docs/USAGE.md", "README", "notes.txt", "app/main.py", "Dockerfile",
                                  "stack.yml", "web/logo.png", "data/dump.bin")] == \
        ["docs", "docs", "docs", "code", "code", "code", "other", "other"]


def test_the_log_pages_filters_by_date_and_counts_lines_per_file(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "app.py").write_text("a = 1\nb = 2\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Add the app\n\nWith a body.", date="2026-11-01T10:00:00+00:00")
    (work / "docs").mkdir()
    (work / "docs" / "USAGE.md").write_text("# Usage\n")
    (work / "logo.png").write_bytes(b"\x89PNG\x00\x01")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Document it", date="2026-11-10T10:00:00+00:00")
    head = git(work, "rev-parse", "HEAD")
    source = GitSource(f"file://{work}", "main", tmp_path / "cache", None, 30)

    newest, oldest = source.log(head)
    assert newest.to_dict()["title"] == "Document it" and oldest.message == "Add the app\n\nWith a body."
    assert {(f.path, f.kind, f.added) for f in newest.files} == {("docs/USAGE.md", "docs", 1),
                                                                 ("logo.png", "other", None)}
    assert [(f.path, f.kind, f.added, f.deleted) for f in oldest.files] == [("app.py", "code", 2, 0)]
    assert oldest.author == "Dev Eloper" and not oldest.merge
    assert [e.sha for e in source.log(head, skip=1, limit=1)] == [oldest.sha]                       # paged
    since = datetime(2026, 11, 5, tzinfo=UTC)
    assert [e.message for e in source.log(head, since=since)] == ["Document it"]                   # by date
    assert [e.message for e in source.log(head, until=since)] == ["Add the app\n\nWith a body."]


def test_authors_are_read_through_the_repos_mailmap(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / ".mailmap").write_text("Dev Eloper <dev@example.org> <old@laptop.local>\n")
    git(work, "add", "-A")
    git(work, "-c", "user.email=old@laptop.local", "commit", "-q", "-m", "From the old laptop")
    source = GitSource(f"file://{work}", "main", tmp_path / "cache", None, 30)
    [entry] = source.log(git(work, "rev-parse", "HEAD"))
    assert (entry.author, entry.email) == ("Dev Eloper", "dev@example.org")


HOSTILE_MESSAGE = ("Fix\x1b]52;c;ZXZpbA==\x07 the \x1b[8mhidden\x1b[0m page\x1e\x1fdeadbeef\x1f\x1fAna Ops\x1f"
                   "ana@example.org\x1f2026-01-01T00:00:00+00:00\x1fforged\x1f\n999999\t0\tforged.py")


def test_no_character_of_a_message_or_author_can_forge_a_log_record(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.py").write_text("a\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=Evil\x1b[8m\x1e\x1fAna", "commit", "-q", "-m", HOSTILE_MESSAGE)
    source = GitSource(f"file://{work}", "main", tmp_path / "cache", None, 30)
    [entry] = source.log(git(work, "rev-parse", "HEAD"))
    assert entry.message == HOSTILE_MESSAGE.strip() and entry.author == "Evil\x1b[8m\x1e\x1fAna"
    assert [(f.path, f.added) for f in entry.files] == [("a.py", 1)]


def test_a_name_with_line_breaks_of_other_kinds_keeps_the_mailmap_from_giving_its_tail_to_another_author(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "commit", "-q", "--allow-empty", "-m", "Dev's")
    (work / ".mailmap").write_text("Dev Eloper <dev@example.org> <old@laptop.local>\n")
    git(work, "add", "-A")
    for name in ("Cat\x1b[8m\x1e\x1fAna Ops", "Bea\rAna Ops", "Ada\x85Ana Ops\u2028Ana Ops"):
        git(work, "-c", f"user.name={name}", "-c", "user.email=x@example.org", "commit", "-q", "--allow-empty",
            "-m", f"{name[:3]}'s")
    source = GitSource(f"file://{work}", "main", tmp_path / "cache", None, 30)
    authors = {e.message: e.author for e in source.log(git(work, "rev-parse", "HEAD"))}
    assert authors == {"Dev's": "Dev Eloper", "Cat's": "Cat\x1b[8m\x1e\x1fAna Ops", "Bea's": "Bea\rAna Ops",
                       "Ada's": "Ada\x85Ana Ops\u2028Ana Ops"}


def test_control_characters_are_escaped_for_terminals_and_dropped_for_xml() -> None:
    from swarmops.util.redact import terminal_safe, xml_safe
    shown = terminal_safe("ok\x1b]52;c;ZXZpbA==\x07 \x1b[8mhidden\r\u202eevil\tline\nnext")
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\u202e" not in shown
    assert shown == "ok\\x1b]52;c;ZXZpbA==\\x07 \\x1b[8mhidden\\x0d\\u202eevil\tline\nnext"
    assert xml_safe("a\x00b\x1bc\x1e\ufffe\td") == "abc\td"

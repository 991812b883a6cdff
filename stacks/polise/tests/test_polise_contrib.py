"""Contributions separate code and docs, and keep merges and bots apart."""

from __future__ import annotations

from typing import Any

from polise.contrib import contributions


def commit(sha: str, author: str, email: str, files: list[tuple[str, str, int]],
           merge: bool = False) -> dict[str, Any]:
    return {"sha": sha, "author": author, "email": email, "merge": merge,
            "files": [{"path": p, "kind": k, "added": n, "deleted": 0} for p, k, n in files]}


def test_code_and_docs_are_counted_apart_per_developer_across_repos() -> None:
    report = contributions({
        "portal": [commit("1", "Ana", "ana@example.org", [("app.py", "code", 10), ("docs/USAGE.md", "docs", 4)]),
                   commit("2", "Budi", "budi@example.org", [("docs/DATABASE.md", "docs", 7)]),
                   commit("3", "Ana", "ana@example.org", [], merge=True),
                   commit("4", "dependabot[bot]", "bot@github", [("requirements.txt", "docs", 1)])],
        "awdi": [commit("5", "Ana", "ANA@example.org", [("main.go", "code", 5)])],
    })
    ana, budi = report.developers
    assert (ana.author, ana.commits, ana.code_lines, ana.docs_lines, ana.code_commits, ana.docs_commits) == \
        ("Ana", 2, 15, 4, 2, 1)
    assert ana.to_dict()["apps"] == ["awdi", "portal"]
    assert (budi.commits, budi.code_lines, budi.docs_lines, budi.docs_commits) == (1, 0, 7, 1)
    assert (report.merges, report.bot_commits) == (1, 1)


def test_the_json_shows_a_name_without_its_control_characters() -> None:
    report = contributions({"portal": [commit("1", "Cat\x1b[8m\x1e\x1fAna Ops", "cat\x07@example.org", [])]})
    assert report.to_dict()["developers"][0]["author"] == "Cat[8mAna Ops"


def test_the_json_names_developers_without_their_email_addresses() -> None:
    report = contributions({"portal": [commit("1", "Ana", "ana@example.org", [("app.py", "code", 1)]),
                                       commit("2", "Ana", "ANA@example.org", [("app.py", "code", 2)])]})
    [ana] = report.to_dict()["developers"]
    assert (ana["author"], ana["commits"]) == ("Ana", 2)   # still one person under one address
    assert "email" not in ana and "@" not in str(report.to_dict())

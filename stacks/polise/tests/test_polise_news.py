"""News from swarmops' history: one entry per deployed commit, merges and bots left out, Atom parses."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from polise.news import atom, entries, is_bot

COMMITS: dict[str, dict[str, Any]] = {
    "a" * 40: {"message": "Add the form\n\nLong text.", "author": "Dev Eloper", "email": "dev@example.org"},
    "b" * 40: {"message": "Merge branch 'x'", "author": "Dev Eloper", "merge": True},
    "c" * 40: {"message": "Bump lib", "author": "dependabot[bot]", "email": "49699333+dependabot[bot]@users"},
    "d" * 40: {"message": "Fix <typo> & more", "author": "Ana", "email": "ana@example.org"},
}
HISTORY = [   # newest first, as swarmops serves it
    {"commit_sha": "d" * 40, "result": "succeeded", "ended": 400.0},
    {"commit_sha": "a" * 40, "result": "succeeded", "ended": 350.0},   # a rollback to it: not news again
    {"commit_sha": "e" * 40, "result": "failed", "ended": 300.0},      # never reached users
    {"commit_sha": "c" * 40, "result": "succeeded", "ended": 250.0},
    {"commit_sha": "b" * 40, "result": "succeeded", "ended": 200.0},
    {"commit_sha": "a" * 40, "result": "succeeded", "ended": 100.0},
]


def test_news_has_one_entry_per_deployed_commit_without_merges_or_bots() -> None:
    news = entries("portal", HISTORY, COMMITS)
    assert [(e.commit[0], e.title, e.deployed_at) for e in news] == [("d", "Fix <typo> & more", 400.0),
                                                                   ("a", "Add the form", 100.0)]
    assert is_bot("renovate-bot") and is_bot("ci", "bot@example.org") and not is_bot("Abbott")


def test_the_atom_feed_parses_and_escapes() -> None:
    feed = atom(entries("portal", HISTORY, COMMITS), "https://polise.example.go.id")
    root = ET.fromstring(feed)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [t.text for t in root.findall("a:entry/a:title", ns)]
    assert titles == ["portal: Fix <typo> & more", "portal: Add the form"]
    assert root.find("a:updated", ns).text == "1970-01-01T00:06:40Z"   # type: ignore[union-attr]


def test_control_characters_in_a_message_cannot_break_the_feed_for_every_app() -> None:
    hostile: dict[str, dict[str, Any]] = {
        "f" * 40: {"message": "Fix\x1b]52;c;ZXZpbA==\x07 the \x1b[8mpage\x00\x1e\x1f forged", "author": "E\x0cvil"}}
    history = [{"commit_sha": "f" * 40, "result": "succeeded", "ended": 1.0}, *HISTORY]
    feed = atom(entries("portal", history, {**COMMITS, **hostile}), "https://polise.example.go.id")
    root = ET.fromstring(feed)   # a strict XML parser: one control character would fail the whole feed
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert [t.text for t in root.findall("a:entry/a:title", ns)][-1] == "portal: Fix]52;c;ZXZpbA== the [8mpage forged"
    assert [n.text for n in root.findall("a:entry/a:author/a:name", ns)][-1] == "Evil"


def test_the_json_news_carries_no_control_character_either() -> None:
    hostile = {"f" * 40: {"message": "Fix\x1b]52;c;ZXZpbA==\x07 the \x9b2Jpage\n\n\x1e\x1fforged",
                          "author": "E\x0cvil"}}
    [entry] = entries("portal", [{"commit_sha": "f" * 40, "result": "succeeded", "ended": 1.0}], hostile)
    assert {k: entry.to_dict()[k] for k in ("title", "message", "author")} == {
        "title": "Fix]52;c;ZXZpbA== the 2Jpage", "message": "Fix]52;c;ZXZpbA== the 2Jpage\n\nforged", "author": "Evil"}

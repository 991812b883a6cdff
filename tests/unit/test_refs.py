"""What an environment following `tags: v*` runs: the highest version among the matching tags (pure), and the
tag a promotion makes for it."""

from __future__ import annotations

import pytest

from swarmops.domain.refs import latest_tag, next_tag, promotable_tag, tag_pattern


def tags(*names: str) -> dict[str, str]:
    return {f"refs/tags/{n}": f"{i:040x}" for i, n in enumerate(names, 1)}


def test_the_highest_version_wins_not_the_last_in_text_order() -> None:
    refs = tags("v1.9.2", "v1.10.0", "v1.2", "release-7", "v2.0.0-rc1")
    assert latest_tag(refs, "v*") == ("v2.0.0-rc1", refs["refs/tags/v2.0.0-rc1"])
    refs.update(tags("v2.0.0"))
    assert latest_tag(refs, "v*") == ("v2.0.0", refs["refs/tags/v2.0.0"])   # a release above its rc
    assert latest_tag(tags("v1.9.2", "v1.10.0"), "v*") == ("v1.10.0", "0" * 39 + "2")
    assert latest_tag(refs, "release-*") == ("release-7", refs["refs/tags/release-7"])
    assert latest_tag(refs, "prod/*") is None and latest_tag({}, "v*") is None


def test_an_annotated_tag_is_its_commit_and_branches_are_not_tags() -> None:
    refs = {"refs/tags/v1": "a" * 40, "refs/tags/v1^{}": "c" * 40, "refs/heads/v9": "d" * 40}
    assert latest_tag(refs, "v*") == ("v1", "c" * 40)


def test_a_promotion_tag_counts_up_from_the_highest_and_must_become_the_highest() -> None:
    refs = tags("v1.4.2", "v1.4.10", "v0.9")
    assert next_tag(refs, "v*") == "v1.4.11"
    assert next_tag(tags("latest"), "v*") is None and next_tag({}, "v*") is None
    assert promotable_tag(refs, "v*", "v1.5.0") is None
    assert "would not be above v1.4.10" in str(promotable_tag(refs, "v*", "v1.4.3"))
    assert "exists already" in str(promotable_tag(refs, "v*", "v1.4.2"))
    for hostile in ("x1", "v1..2", "v1.lock", "v1/", "v1 2", "v1:x", "v1\n", "-v1", "v1@{0}", "v9\n"):
        assert promotable_tag(refs, "v*", hostile) is not None, hostile


@pytest.mark.parametrize("bad", ["", "v[0-9]*", "v?", "v**", "*/*", "../v*", "/v*", "-v*", "v* ", "v*\n"])
def test_a_tag_pattern_is_a_literal_with_one_star(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a tag pattern"):
        tag_pattern(bad)
    assert tag_pattern("v*") == "v*" and tag_pattern("releases/2026-*") == "releases/2026-*"


def test_a_tag_a_developer_shapes_to_tie_or_overflow_does_not_win_or_crash() -> None:
    refs = tags("v1.0.0", "v01.0.0", "v001.0.0", "v" + "9" * 5000, "v1.0.0\n")
    assert latest_tag(refs, "v*") == ("v1.0.0", refs["refs/tags/v1.0.0"])   # no leading zeros, no huge numbers
    assert next_tag(refs, "v*") == "v1.0.1"

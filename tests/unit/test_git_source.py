"""The git adapter over real repos made here (file:// remotes): what the cache holds is asked of the source's
own `git cat-file`, which also finds what a later fetch brought; one source starts its `git cat-file`
processes once, however many commits and files it reads."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from swarmops.adapters.git import GitSource
from swarmops.errors import SourceError


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.org", *args], cwd=cwd,
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-qm", f"{name}: {text}")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    return work


def source(work: Path) -> GitSource:
    return GitSource(f"file://{work}", "main", work.parent / "cache.git", None, 30, threading.Semaphore(1))


def test_the_cache_has_a_fetched_commit_and_no_missing_sha_tree_or_blob(work: Path) -> None:
    first = commit(work, "stack.yml", "v1")
    src = source(work)
    assert not src._has(first)   # nothing fetched yet
    src.ensure(first)
    assert src._has(first)
    tree, blob = git(work, "rev-parse", "HEAD^{tree}"), git(work, "rev-parse", "HEAD:stack.yml")
    for other in ("0" * 40, "1234567890" * 4, tree, blob, "deadbeef", "-x", first[:12] + "zz"):
        assert not src._has(other), other


def test_a_commit_fetched_after_the_sources_cat_file_started_is_found_and_read(work: Path) -> None:
    first = commit(work, "stack.yml", "v1")
    src = source(work)
    src.ensure(first)
    assert src.read(first, "stack.yml") == b"v1"   # its cat-file processes run from here on
    second = commit(work, "stack.yml", "v2")
    assert not src._has(second)
    src.ensure(second)
    assert src.read(second, "stack.yml") == b"v2" and src.info(second).message == "stack.yml: v2"


def test_one_source_starts_its_cat_file_processes_once(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = commit(work, "stack.yml", "v1")
    commit(work, ".env", "A=1")
    head = git(work, "rev-parse", "HEAD")
    src = source(work)
    started: list[list[str]] = []
    real = subprocess.Popen.__init__

    def counted(self: subprocess.Popen[bytes], args: list[str], *rest: Any, **kwargs: Any) -> None:
        started.append([str(a) for a in args])
        real(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", counted)
    src.ensure(first)
    src.ensure(head)
    for _ in range(3):
        src.info(head)
        src.read(head, "stack.yml")
        src.read(head, ".env")
        src.object_id(head, "")
    cat_files = [a[1:3] for a in started if "cat-file" in a]
    assert cat_files == [["cat-file", "--batch-check"], ["cat-file", "--batch"]], started


def test_a_source_following_tags_runs_the_highest_fetches_it_and_pushes_only_new_tags(work: Path) -> None:
    first = commit(work, "stack.yml", "v1")
    git(work, "tag", "v1.9.0")
    second = commit(work, "stack.yml", "v2")
    git(work, "tag", "-a", "-m", "release", "v1.10.0")   # annotated: the tag object is not what runs
    third = commit(work, "stack.yml", "v3 on main, not tagged")
    src = GitSource(f"file://{work}", "main", work.parent / "cache.git", None, 30, threading.Semaphore(1), tags="v*")
    assert src.head() == second
    src.ensure(second)
    assert src.read(second, "stack.yml") == b"v2" and src._has(first)
    with pytest.raises(SourceError, match="is not on tags v\\*"):
        src.ensure(third)   # main's head is no tag's
    git(work, "checkout", "-q", "--detach")   # a non-bare remote takes pushes to refs it has not checked out
    src.push(second, "refs/tags/v1.11.0")
    assert git(work, "rev-parse", "v1.11.0") == second and src.head() == second
    with pytest.raises(SourceError, match="already exists"):
        src.push(first, "refs/tags/v1.11.0")   # a tag is never moved
    with pytest.raises(SourceError, match="no tag matching prod-\\*"):
        GitSource(f"file://{work}", "main", work.parent / "c2.git", None, 30, tags="prod-*").head()

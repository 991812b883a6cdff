"""Unpacking a commit's tree: nothing may land outside the export, with or without Python's extraction
filters (Debian bookworm's Python 3.11.2 has none; the daemon runs on it in stacks/swarmops)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from swarmops.adapters.git import _extract


def tar_of(*members: tuple[str, bytes | None, str]) -> tarfile.TarFile:
    """(name, data, symlink target): data None makes a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@pytest.fixture(params=["with filters", "without filters"])
def python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "without filters":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_a_tree_with_files_and_an_inner_link_is_unpacked(tmp_path: Path, python: str) -> None:
    _extract(tar_of(("web/index.html", b"hi\n", ""), ("web/current", None, "index.html")), tmp_path)
    assert (tmp_path / "web" / "index.html").read_bytes() == b"hi\n"
    assert (tmp_path / "web" / "current").read_bytes() == b"hi\n"


@pytest.mark.parametrize("member", [("../evil", b"x", ""), ("/etc/evil", b"x", ""),
                                    ("web/out", None, "../../etc/passwd"), ("abs", None, "/etc/passwd")])
def test_nothing_is_written_outside_the_export(tmp_path: Path, python: str,
                                               member: tuple[str, bytes | None, str]) -> None:
    dest = tmp_path / "export"
    dest.mkdir()
    try:
        _extract(tar_of(member), dest)
    except tarfile.TarError:   # refused: the usual answer
        assert not any(dest.iterdir())
    else:                      # Python's filter may instead strip a leading "/": then it lands inside
        assert member[0].startswith("/") and (dest / member[0].lstrip("/")).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert not Path("/etc/evil").exists()

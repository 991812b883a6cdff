"""Child processes (git, the docker CLI) with only the environment they need, in their own process
group so that a signal to the daemon does not kill a half-done step, and always with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmops.errors import ProcessTimeout

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def minimal_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", BASE_PATH), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update(extra or {})
    return env


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float, cwd: Path | None = None) -> Result:
    """Run to completion or kill the whole process group at the deadline."""
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProcessTimeout(timeout) from None
    return Result(proc.returncode, out, err)


def run_bytes(argv: Sequence[str], env: Mapping[str, str], timeout: float, stdin: bytes,
              cwd: Path | None = None) -> tuple[int, bytes, str]:
    """As run(), with bytes in and out (sizes in `git cat-file --batch` output are in bytes)."""
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProcessTimeout(timeout) from None
    return proc.returncode, out, err.decode("utf-8", "replace")

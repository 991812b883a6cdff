"""The suite's order: the slowest lab files first, so that the parallel phase's workers finish together
(pytest-xdist's `--dist loadfile --no-loadscope-reorder` hands out files in collection order, and a long
file started last keeps the phase waiting for it). Measured in CI runs (scripts/test writes
test-output/junit-*.xml and timeline.tsv); a file not named keeps its place after these."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TIMELINE = os.environ.get("SWARMOPS_TIMELINE", "")   # scripts/test sets it: test-output/timeline.tsv

SLOWEST_FIRST = (   # seconds in the fresh-clone CI run of 6052215 (test-output/timeline.tsv)
    "tests/integration/test_polise.py",   # 437
    "tests/integration/test_templates_and_stacks.py",   # 381
    "tests/integration/test_safe_rollouts.py",   # 340
    "tests/integration/test_template_data.py",   # 364 then; about 200 since the go build cache
    "tests/integration/test_migrations.py",   # 219
    "tests/integration/test_volume_backups.py",   # about 200 with its schedule's waits (mostly idle)
    "tests/integration/test_drills.py",   # 197
    "tests/integration/test_sso.py",   # 196
    "tests/integration/test_http.py",   # 141
    "tests/integration/test_core.py",   # 139
    "tests/integration/test_backups.py",   # 54, twice since it runs on MariaDB too
    "tests/integration/test_faults.py",   # 107
    "tests/integration/test_bench.py",   # 96
    "tests/integration/test_policy_and_secrets.py",   # 93
    "tests/integration/test_daemon.py",   # 74
    "tests/integration/test_no_needless_restarts.py",   # 72
    "tests/integration/test_isolation.py",   # 68
    "tests/integration/test_hooks.py",   # 66
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))   # stable: the rest as collected


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Each test's worker, start and end (setup to teardown) in $SWARMOPS_TIMELINE, when scripts/test
    set it: where the parallel phase's workers wait is read from it (`python -m bench.timeline`)."""
    start, cpu = time.time(), os.times()
    yield
    if TIMELINE:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        now = os.times()
        # the CPU seconds of the worker itself and of the processes it ran and waited for (the swarmops CLI,
        # git, docker): the machine's two cores are what the parallel phase waits on
        own = now.user + now.system - cpu.user - cpu.system
        children = now.children_user + now.children_system - cpu.children_user - cpu.children_system
        with Path(TIMELINE).open("a") as out:   # one short line per write: the workers' lines do not interleave
            out.write(f"{worker}\t{start:.1f}\t{time.time():.1f}\t{item.nodeid}\t{own:.2f}\t{children:.2f}\n")

"""The status cache on the fakes: what pages and /metrics answer from, refreshed without a reconcile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from swarmops.daemon.statuscache import SNAPSHOT_MAX_AGE, StatusCache
from swarmops.domain.status import PROGRESSING
from tests.fakes import World
from tests.unit.test_reconciler import FILES


def cached(tmp_path: Path) -> tuple[World, StatusCache]:
    w = World(tmp_path)
    w.source.commit("first", FILES)
    cache = StatusCache(w.config, w.store, w.swarm)
    w.reconciler.observers.append(cache)
    return w, cache


def test_a_refresh_reads_every_app_once_and_answers_from_memory_after(tmp_path: Path) -> None:
    w, cache = cached(tmp_path)
    w.sync()
    reads = w.swarm.reads
    cache.refresh()
    assert w.swarm.reads == reads + 1
    status = cache.get("shop")
    assert status is not None and status.status == "Synced" and status.commit == w.source.heads[-1]
    for _ in range(100):
        assert cache.all() == [status]
    assert w.swarm.reads == reads + 1


def test_a_deploy_shows_progressing_then_its_outcome_refreshes_the_app(tmp_path: Path) -> None:
    w, cache = cached(tmp_path)
    cache.refresh()
    seen: list[str] = []
    cache.listeners.append(lambda old, new: seen.append(new.status))
    cache.on_deploy("shop", "c" * 40, "poll")
    current = cache.get("shop")
    assert current is not None and current.status == PROGRESSING and cache.snapshot("shop") is None
    # the outcome's own converged read is what the cache takes: no read of its own
    cache.reader = NoReads()   # type: ignore[assignment]
    outcome = w.sync()
    after = cache.get("shop")
    assert after is not None and after.status == "Synced" and seen[-1] == "Synced"
    assert outcome.live is not None and after.commit == outcome.commit
    with pytest.raises(AssertionError, match="read the Swarm"):   # an outcome without one: the cache reads
        cache.on_outcome(replace(outcome, live=None), "poll", 1.0)


class NoReads:
    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> None:
        raise AssertionError("the status cache read the Swarm")


def test_the_snapshot_is_used_by_the_next_check_only_while_it_is_recent(tmp_path: Path) -> None:
    w, cache = cached(tmp_path)
    w.sync()
    cache.refresh()
    assert cache.snapshot("shop") is not None
    cache._live_at -= SNAPSHOT_MAX_AGE + 1   # the refresh job stopped: no old data is handed out
    assert cache.snapshot("shop") is None


def test_a_listener_that_raises_does_not_stop_the_refresh(tmp_path: Path) -> None:
    _, cache = cached(tmp_path)

    def broken(old: object, new: object) -> None:
        raise RuntimeError("a bug")
    cache.listeners.append(broken)
    cache.refresh()
    assert cache.get("shop") is not None

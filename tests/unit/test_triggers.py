"""Webhook and API triggers: a burst for one app is one reconcile (plus one if it came while it ran)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from swarmops.daemon.triggers import Triggers
from swarmops.reconcile.events import Observer
from tests.fakes import World
from tests.unit.test_reconciler import FILES


def test_a_burst_of_triggers_while_one_waits_to_start_is_one_reconcile(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.source.commit("first", FILES)
    release, started = threading.Event(), threading.Event()
    runs: list[str] = []

    class Hold(Observer):
        def on_outcome(self, outcome: object, trigger: str, seconds: float) -> None:
            runs.append(trigger)
    w.reconciler.observers.append(Hold())
    with ThreadPoolExecutor(max_workers=4) as pool:
        def hold() -> bool:
            started.set()
            return release.wait(10)
        pool.submit(lambda: w.reconciler.when_idle("shop", hold))
        assert started.wait(10)
        triggers = Triggers(w.reconciler, pool)
        # the app is busy: the first trigger queues; the rest find it queued
        accepted = [triggers.trigger(w.app, "webhook") for _ in range(20)]
        release.set()
    assert accepted[0] and not any(accepted[1:])
    assert runs == ["webhook"] and w.live().deployed_commit() == w.source.heads[-1]

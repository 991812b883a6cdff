"""Run an app's reconcile now (webhooks, API actions): a burst of triggers for one app coalesces into
one reconcile, plus one more when a trigger arrives while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor

from swarmops.config.models import AppConfig
from swarmops.reconcile.reconciler import Reconciler


class Triggers:
    def __init__(self, reconciler: Reconciler, executor: Executor) -> None:
        self.reconciler = reconciler
        self.executor = executor
        self._queued: set[str] = set()
        self._lock = threading.Lock()

    def trigger(self, app: AppConfig, trigger: str, force: bool = False, actor: str = "") -> bool:
        """Queue a reconcile; False when one is already queued (not yet started) for this app. `actor`: who
        asked (an API token, a signed-in user), recorded with what it deploys."""
        with self._lock:
            if app.name in self._queued:
                return False
            self._queued.add(app.name)
        self.executor.submit(self._run, app, trigger, force, actor)
        return True

    def submit(self, work: Callable[[], object]) -> None:
        self.executor.submit(work)

    def _run(self, app: AppConfig, trigger: str, force: bool, actor: str) -> None:
        def started() -> None:
            with self._lock:
                self._queued.discard(app.name)

        self.reconciler.reconcile(app, trigger=trigger, force=force, on_start=started, actor=actor)

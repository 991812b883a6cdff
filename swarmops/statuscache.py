"""Every app's status in memory, so the HTTP API and /metrics answer without a Docker call: refreshed
from the live Swarm on an interval (a fixed number of API calls) and for one app after its reconcile."""

from __future__ import annotations

import logging
import threading

from swarmops.config.models import Config
from swarmops.domain.status import PROGRESSING, AppStatus, app_status
from swarmops.errors import SwarmopsError
from swarmops.reconciler import Observer, Outcome, Reconciler

log = logging.getLogger("swarmops.status")


class StatusCache(Observer):
    def __init__(self, config: Config, reconciler: Reconciler) -> None:
        self.config = config
        self.reconciler = reconciler
        self._lock = threading.Lock()
        self._statuses: dict[str, AppStatus] = {}

    def all(self) -> list[AppStatus]:
        with self._lock:
            return [self._statuses[a.name] for a in self.config.apps if a.name in self._statuses]

    def get(self, app: str) -> AppStatus | None:
        with self._lock:
            return self._statuses.get(app)

    def _status(self, app: str, live: object) -> AppStatus:
        store = self.reconciler.a.store
        last = store.last_deploy(app)
        state = store.app_state(app)
        return app_status(app, live, state.paused, last.result if last else None,  # type: ignore[arg-type]
                          last.ended if last else None, state.last_error, head=state.last_head or None,
                          drift=state.drift, error_kind=state.last_error_kind)

    def refresh(self) -> None:
        try:
            stacks = self.reconciler.a.reader.read_all()
            fresh = {a.name: self._status(a.name, stacks.get(a.name)) for a in self.config.apps}
        except SwarmopsError as e:
            log.warning("cannot refresh the status of the apps: %s", e)
            return
        with self._lock:
            self._statuses = fresh

    def refresh_app(self, app: str) -> None:
        try:
            status = self._status(app, self.reconciler.a.reader.read_app(app))
        except SwarmopsError as e:
            log.warning("cannot refresh the status of %s: %s", app, e)
            return
        with self._lock:
            self._statuses[app] = status

    def on_deploy(self, app: str, commit: str, trigger: str) -> None:
        with self._lock:
            current = self._statuses.get(app)
            if current is not None:
                self._statuses[app] = AppStatus(app, PROGRESSING, current.commit, current.deployed_at, "running",
                                                f"deploying {commit[:12]} ({trigger})", current.services)

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        if outcome.result != "noop" or outcome.app not in self._statuses:
            self.refresh_app(outcome.app)

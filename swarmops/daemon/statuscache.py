"""Every app's status in memory, so the HTTP API and /metrics answer without a Docker call: refreshed
from the live Swarm on an interval (a fixed number of API calls) and for one app after its reconcile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from swarmops.adapters.store import StateStore
from swarmops.config.models import AppConfig, Config
from swarmops.domain.live import LiveStack, SsoRoutes, sso_routes
from swarmops.domain.status import PROGRESSING, AppStatus, Deployed, app_status
from swarmops.errors import SwarmopsError
from swarmops.reconcile.events import Observer, Outcome
from swarmops.reconcile.ports import SwarmReader

log = logging.getLogger("swarmops.status")
REFRESH_SECONDS = 30.0   # every app's live state; a deploy refreshes its own app at once
SNAPSHOT_MAX_AGE = 2 * REFRESH_SECONDS   # a missed refresh falls back to per-app reads, never to old data


def status_from_store(store: StateStore, app: str, live: LiveStack | None, entry: AppConfig | None = None
                      ) -> AppStatus:
    """An app's status from its live stack and what the state store remembers (CLI and cache alike)."""
    last = store.last_deploy(app)
    state = store.app_state(app)
    commit = live.deployed_commit() if live else None
    record = store.deploy_of(app, commit) if commit else None
    deployed = Deployed(record.ended, record.author, record.message) if record else None
    status = app_status(app, live, state.paused, last.result if last else None, last.ended if last else None,
                        state.last_error, head=state.last_head or None, drift=state.drift,
                        error_kind=state.last_error_kind, deployed=deployed)
    backup, good = store.last_backup(app), store.last_good_backup(app)
    return replace(status, last_fault=state.last_fault, last_fault_at=state.last_fault_at or None,
                   fault_cleared_at=state.fault_cleared_at or None, backup_at=backup.started if backup else None,
                   backup_result=backup.result if backup else None, backup_message=backup.message if backup else "",
                   backup_ok_at=good.started if good else None, group=entry.group or "" if entry else "",
                   environment=entry.environment or "" if entry else "")


class StatusCache(Observer):
    def __init__(self, config: Config, store: StateStore, reader: SwarmReader) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self._lock = threading.Lock()
        self._statuses: dict[str, AppStatus] = {}
        self._live: dict[str, LiveStack] = {}   # the last refresh's live stacks, for the reconciler's checks
        self._live_at = 0.0
        # which apps' routers pass the SSO middleware: the last read of each app, kept through its deploys
        # (Polise asks this, and a deploy must not make an app look unprotected or unknown meanwhile)
        self._sso: dict[str, SsoRoutes] = {}
        self._read_once = False   # a full read of the Swarm has succeeded: until then no answer is known
        # told of every status word that changed (old is None the first time), outside the lock
        self.listeners: list[Callable[[AppStatus | None, AppStatus], None]] = []

    def all(self) -> list[AppStatus]:
        with self._lock:
            return [self._statuses[a.name] for a in self.config.apps if a.name in self._statuses]

    def get(self, app: str) -> AppStatus | None:
        with self._lock:
            return self._statuses.get(app)

    def _status(self, app: str, live: LiveStack | None) -> AppStatus:
        return status_from_store(self.store, app, live, self.config.app(app))

    def refresh(self) -> None:
        try:
            stacks = self.reader.read_all()
            fresh = {a.name: self._status(a.name, stacks.get(a.name)) for a in self.config.apps}
        except SwarmopsError as e:
            log.warning("cannot refresh the status of the apps: %s", e)
            return
        sso = {a.name: self._sso_of(stacks.get(a.name)) for a in self.config.apps}
        with self._lock:
            old, self._statuses = self._statuses, fresh
            self._live, self._live_at = stacks, time.monotonic()
            self._sso = sso
            self._read_once = True
        self._tell(old, fresh.values())

    @property
    def ready(self) -> bool:
        """True once a refresh has read every app from the Swarm (after that a failed one keeps the last)."""
        with self._lock:
            return self._read_once

    def snapshot(self, app: str) -> LiveStack | None:
        """The app's live stack from the last refresh, if it is recent; None sends the caller to the Engine."""
        with self._lock:
            if time.monotonic() - self._live_at > SNAPSHOT_MAX_AGE:
                return None
            return self._live.get(app)

    def public_url(self, app: str) -> str | None:
        """The app's public URL: its config's `url`, else the first host of its proxy rule."""
        entry = self.config.app(app)
        if entry is not None and entry.url:
            return entry.url
        with self._lock:
            live = self._live.get(app)
        hosts = live.public_hosts() if live else []
        return f"https://{hosts[0]}/" if hosts else None

    def _sso_of(self, live: LiveStack | None) -> SsoRoutes:
        return sso_routes(live, self.config.sso.middleware) if live else SsoRoutes()

    def sso(self, app: str) -> SsoRoutes:
        """The app's routers behind the shared SSO middleware, as last read (empty: none, or not read yet)."""
        with self._lock:
            return self._sso.get(app, SsoRoutes())

    def sso_apps(self) -> list[tuple[str, SsoRoutes]]:
        """Every configured app whose live routers pass the SSO middleware, in the config's order."""
        with self._lock:
            sso = dict(self._sso)
        return [(a.name, sso[a.name]) for a in self.config.apps if sso.get(a.name)]

    def refresh_app(self, app: str, live: LiveStack | None = None) -> None:
        """The app's status from `live` (a deploy's converged read), else from a read of the Swarm."""
        try:
            live = live or self.reader.read_app(app)
            status = self._status(app, live)
        except SwarmopsError as e:
            log.warning("cannot refresh the status of %s: %s", app, e)
            with self._lock:
                self._live.pop(app, None)
            return
        sso = self._sso_of(live)
        with self._lock:
            old = {app: self._statuses[app]} if app in self._statuses else {}
            self._statuses[app] = status
            self._live[app] = live
            self._sso[app] = sso
        self._tell(old, [status])

    def _tell(self, old: dict[str, AppStatus], fresh: Iterable[AppStatus]) -> None:
        for new in fresh:
            before = old.get(new.app)
            if before is not None and before.status == new.status:
                continue
            for listener in self.listeners:
                try:
                    listener(before, new)
                except Exception:   # a listener's bug must not stop the status refresh
                    log.exception("status listener failed for %s", new.app)

    def mark_progressing(self, app: str, message: str) -> None:
        """Shown until the reconcile's outcome refreshes the app (the page refreshes itself meanwhile)."""
        with self._lock:
            current = self._statuses.get(app)
            if current is not None:
                self._statuses[app] = replace(current, status=PROGRESSING, last_result="running", message=message)

    def on_deploy(self, app: str, commit: str, trigger: str) -> None:
        with self._lock:
            self._live.pop(app, None)   # about to change: checks read the Engine until the next refresh
        self.mark_progressing(app, f"deploying {commit[:12]} ({trigger})")

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        current = self.get(outcome.app)
        if outcome.result != "noop" or current is None or current.status == PROGRESSING:
            self.refresh_app(outcome.app, outcome.live)

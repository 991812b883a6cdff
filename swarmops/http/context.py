"""What the HTTP side is given by the daemon: the config, the reconciler, the store, the git sources, the
status cache, tokens, triggers and metrics; and the little state it keeps itself (deliveries seen,
sessions, diffs)."""

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from swarmops.adapters.store import StateStore
from swarmops.adapters.tokens import TokenStore
from swarmops.config.models import AppConfig, Config
from swarmops.daemon.metrics import Metrics
from swarmops.daemon.statuscache import StatusCache
from swarmops.daemon.triggers import Triggers
from swarmops.errors import BusyError, SwarmopsError
from swarmops.http.auth import Sessions
from swarmops.reconcile.ports import Source
from swarmops.reconcile.reconciler import Reconciler


class Diffs:
    """The last diff of each app, computed only on request (it fetches, decrypts and asks the registry) and
    at most once per app every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, app: str) -> dict[str, Any] | None:
        with self._lock:
            return self._last.get(app)

    def compute(self, app: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            last = self._last.get(app)
            if last and time.time() - last["at"] < self.every:
                raise HTTPException(429, f"a diff of {app} was made {time.time() - last['at']:.0f} s ago; "
                                    f"try again in {self.every:.0f} s", headers={"Retry-After": str(int(self.every))})
            self._last[app] = {"at": time.time(), "result": None, "error": "computing"}
        try:
            entry = {"at": time.time(), "result": work(), "error": "", "busy": False}
        except SwarmopsError as e:
            entry = {"at": time.time(), "result": None, "error": str(e), "busy": isinstance(e, BusyError)}
        with self._lock:
            self._last[app] = entry
        return entry


@dataclass
class HttpContext:
    config: Config
    reconciler: Reconciler
    store: StateStore
    sources: Callable[[AppConfig], Source]
    statuses: StatusCache
    tokens: TokenStore
    triggers: Triggers
    metrics: Metrics
    deliveries: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: Sessions = field(default_factory=Sessions)
    diffs: Diffs = field(default_factory=Diffs)

    def app(self, name: str) -> AppConfig:
        found = self.config.app(name)
        if found is None:
            raise HTTPException(404, f"no app named {name!r}")
        return found

    def seen(self, delivery: str) -> bool:
        """True for a delivery id seen before (the last 10,000 are remembered)."""
        with self.lock:
            if delivery in self.deliveries:
                return True
            self.deliveries[delivery] = None
            while len(self.deliveries) > 10_000:
                self.deliveries.popitem(last=False)
            return False

"""A copy of each app's recent deploy history in the Swarm's Raft store, so that it survives the loss of
the manager whose disk holds the state database.

One config object per app (`swarmops-history-<hash>-<ms>`, labelled with the app) holds its last
records as JSON. Configs are immutable: a finished deploy creates the next one and removes the older.
Raft replicates them to every manager, so when swarmops starts on another manager with an empty state
directory it reads the history back from here; what is deployed is read from the services' labels.

Engine calls: a load is one config list, for one app or for all of them (a daemon's start); a save creates the
new copy and removes the ones it replaces, listing them only when no load or save here has seen that app's
copies yet (a deploy's history is loaded before it decides, so its save lists nothing)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from typing import Any

import docker

from swarmops.errors import EngineError

log = logging.getLogger("swarmops.history")
LABEL = "io.swarmops.history"
KEPT = 30                   # records per app: the recent history, bounded (configs hold at most 500 KB)
MAX_FIELD = 2000            # an error message longer than this is cut in the copy (kept whole locally)


def config_prefix(app: str) -> str:
    return f"swarmops-history-{hashlib.sha256(app.encode()).hexdigest()[:16]}-"


class SwarmHistory:
    def __init__(self, api: docker.APIClient) -> None:
        self.api = api
        # the ids of each app's copies as the last load or save here saw them: what its next save replaces
        # (a copy another writer made meanwhile is left for the next list to find; loads pick the newest)
        self._seen: dict[str, list[str]] = {}
        self._last_ms = 0
        self._lock = threading.Lock()

    def save(self, app: str, records: list[dict[str, Any]]) -> None:
        """Replace the app's copy with `records` (newest first)."""
        data = json.dumps([_trim(r) for r in records[:KEPT]], separators=(",", ":")).encode()
        with self._lock:
            older = self._seen.pop(app, None)
            # names sort by time; two saves here within one millisecond still get two names (they are unique)
            self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
            name = f"{config_prefix(app)}{self._last_ms}"
        if older is None:
            older = [cfg["ID"] for cfg in self._configs(app)]
        try:
            new_id = self._engine(lambda: self.api.create_config(name, data, {LABEL: app})["ID"])
        except EngineError:
            self._remember(app, older)
            raise
        left = [new_id]
        for cfg_id in older:
            if cfg_id != new_id:
                try:
                    self.api.remove_config(cfg_id)
                except docker.errors.NotFound:   # another writer removed it first
                    pass
                except (docker.errors.DockerException, OSError) as e:
                    log.debug("history copy %s of %s not removed: %s", cfg_id, app, e)
                    left.append(cfg_id)
        self._remember(app, left)

    def load(self, apps: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The latest copy of each of `apps` (newest record first); apps without one are left out."""
        latest: dict[str, dict[str, Any]] = {}
        seen: dict[str, list[str]] = {app: [] for app in apps}
        # one app: only its copies cross the socket; several: one call for all of them
        label = f"{LABEL}={next(iter(apps))}" if len(apps) == 1 else LABEL
        for cfg in self._engine(lambda: self.api.configs(filters={"label": label})):
            app = (cfg["Spec"].get("Labels") or {}).get(LABEL, "")
            if app not in apps:
                continue
            if cfg["Spec"]["Name"].startswith(config_prefix(app)):
                seen[app].append(cfg["ID"])
            if app not in latest or cfg["Spec"]["Name"] > latest[app]["Spec"]["Name"]:
                latest[app] = cfg
        with self._lock:
            self._seen.update(seen)
        out: dict[str, list[dict[str, Any]]] = {}
        for app, cfg in latest.items():
            try:
                out[app] = list(json.loads(base64.b64decode(cfg["Spec"].get("Data", ""))))
            except ValueError as e:
                log.warning("the history copy of %s in the Swarm (%s) is unreadable: %s", app,
                            cfg["Spec"]["Name"], e)
        return out

    def remove(self, app: str) -> None:
        with self._lock:
            self._seen.pop(app, None)
        for cfg in self._configs(app):
            try:
                self.api.remove_config(cfg["ID"])
            except docker.errors.APIError as e:
                log.debug("history copy %s: %s", cfg["Spec"]["Name"], e.explanation or e)

    def _remember(self, app: str, ids: list[str]) -> None:
        with self._lock:
            self._seen[app] = ids

    def _configs(self, app: str) -> list[dict[str, Any]]:
        found = self._engine(lambda: self.api.configs(filters={"label": f"{LABEL}={app}"}))
        return [c for c in found if c["Spec"]["Name"].startswith(config_prefix(app))]

    def _engine(self, call: Any) -> Any:
        try:
            return call()
        except docker.errors.APIError as e:
            raise EngineError(f"cannot keep the deploy history in the Swarm: {e.explanation or e}") from e
        except (docker.errors.DockerException, OSError) as e:
            raise EngineError(f"cannot reach the Docker engine for the deploy history: {e}") from e


def _trim(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:MAX_FIELD] if isinstance(v, str) else v) for k, v in record.items()}

"""A copy of each app's recent deploy history in the Swarm's Raft store, so that it survives the loss of
the manager whose disk holds the state database.

One config object per app (`swarmops-history-<hash>-<ms>`, labelled with the app) holds its last
records as JSON. Configs are immutable: a finished deploy creates the next one and removes the older.
Raft replicates them to every manager, so when swarmops starts on another manager with an empty state
directory it reads the history back from here; what is deployed is read from the services' labels."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
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

    def save(self, app: str, records: list[dict[str, Any]]) -> None:
        """Replace the app's copy with `records` (newest first)."""
        data = json.dumps([_trim(r) for r in records[:KEPT]], separators=(",", ":")).encode()
        name = f"{config_prefix(app)}{time.time_ns() // 1_000_000}"
        older = self._configs(app)
        new_id = self._engine(lambda: self.api.create_config(name, data, {LABEL: app})["ID"])
        for cfg in older:
            if cfg["ID"] != new_id:
                try:
                    self.api.remove_config(cfg["ID"])
                except docker.errors.APIError as e:   # another writer removed it first
                    log.debug("history copy %s: %s", cfg["Spec"]["Name"], e.explanation or e)

    def load(self, apps: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The latest copy of each of `apps` (newest record first); apps without one are left out."""
        latest: dict[str, dict[str, Any]] = {}
        # one app: only its copies cross the socket; several: one call for all of them
        label = f"{LABEL}={next(iter(apps))}" if len(apps) == 1 else LABEL
        for cfg in self._engine(lambda: self.api.configs(filters={"label": label})):
            app = (cfg["Spec"].get("Labels") or {}).get(LABEL, "")
            if app in apps and (app not in latest or cfg["Spec"]["Name"] > latest[app]["Spec"]["Name"]):
                latest[app] = cfg
        out: dict[str, list[dict[str, Any]]] = {}
        for app, cfg in latest.items():
            try:
                out[app] = list(json.loads(base64.b64decode(cfg["Spec"].get("Data", ""))))
            except ValueError as e:
                log.warning("the history copy of %s in the Swarm (%s) is unreadable: %s", app,
                            cfg["Spec"]["Name"], e)
        return out

    def remove(self, app: str) -> None:
        for cfg in self._configs(app):
            try:
                self.api.remove_config(cfg["ID"])
            except docker.errors.APIError as e:
                log.debug("history copy %s: %s", cfg["Spec"]["Name"], e.explanation or e)

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

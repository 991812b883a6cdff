"""What the last successful deploy of each app left running (for drift detection): one JSON file per
app beside the database, written atomically, parsed again only when it changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmops.adapters.store.db import Database
from swarmops.errors import StateError


class Applied(Database):
    def __init__(self, path: Path) -> None:
        self._applied: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}   # one entry per app at most
        super().__init__(path)

    def applied_path(self, app: str) -> Path:
        return self.path.parent / "applied" / f"{app}.json"

    def save_applied(self, app: str, record: dict[str, Any]) -> None:
        """What the last successful deploy left running (for drift detection), written atomically."""
        path = self.applied_path(app)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, sort_keys=True))
            tmp.replace(path)
        except OSError as e:
            raise StateError(f"cannot write {path}: {e.strerror or e}") from e

    def load_applied(self, app: str) -> dict[str, Any]:
        """Read on every no-change check: parsed again only when the file changed (its stat says so)."""
        path = self.applied_path(app)
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
            cached = self._applied.get(app)
            if cached is not None and cached[0] == key:
                return dict(cached[1])
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        self._applied[app] = (key, data)
        return dict(data)

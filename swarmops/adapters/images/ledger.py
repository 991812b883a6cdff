"""What swarmops pushed: the digest of each image it built, by repository and fingerprint. A tag in the
registry is mutable and the registry takes pushes from the network, so an image is reused only when the
registry still holds the very manifest swarmops pushed (or the one the running service was deployed with)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from swarmops.errors import StateError


class ImageLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}   # unreadable: images are verified against the live services, or rebuilt
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, repo: str, fingerprint: str) -> str | None:
        with self._lock:
            return self._load().get(f"{repo}@{fingerprint}")

    def record(self, repo: str, fingerprint: str, digest: str) -> None:
        with self._lock:
            data = self._load()
            data[f"{repo}@{fingerprint}"] = digest
            tmp = self.path.with_suffix(".tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(data, sort_keys=True))
                os.replace(tmp, self.path)
            except OSError as e:
                raise StateError(f"cannot record the pushed image in {self.path}: {e.strerror}") from e

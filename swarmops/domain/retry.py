"""Retry with backoff for transient faults (Argo CD's defaults: 5 tries, 5 s doubling up to 3 min)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    limit: int = 5
    base: float = 5.0
    cap: float = 180.0

    def delay(self, attempt: int) -> float | None:
        """Seconds before retry number `attempt` (1-based), or None when the tries are used up."""
        if attempt < 1 or attempt > self.limit:
            return None
        return float(min(self.cap, self.base * 2 ** (attempt - 1)))

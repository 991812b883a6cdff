"""Drift: a live service that no longer matches what swarmops applied (a hand-made change)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from swarmops.domain.live import LiveService, LiveStack
from swarmops.domain.specdiff import Summary, diff_summaries, summarize_live


@dataclass(frozen=True)
class Drift:
    service: str
    kind: str          # changed | missing | unmanaged
    details: str

    def __str__(self) -> str:
        return f"{self.service}: {self.kind}: {self.details}" if self.details else f"{self.service}: {self.kind}"


def live_spec_hash(spec: dict[str, Any]) -> str:
    """Hash of what Docker runs for a live service: its spec without the service labels (which
    swarmops changes on every commit without restarting anything)."""
    body = {k: v for k, v in spec.items() if k != "Labels"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def applied_record(live: LiveStack) -> dict[str, dict[str, Any]]:
    """What to remember after a successful deploy: per service, the live spec hash and summary."""
    return {name: {"hash": live_spec_hash(svc.spec), "summary": summarize_live(svc.spec, live.networks)}
            for name, svc in live.services.items() if svc.managed}


def _changed(svc: LiveService, record: dict[str, Any], live: LiveStack) -> Drift | None:
    if live_spec_hash(svc.spec) == record.get("hash"):
        return None
    before: Summary = record.get("summary") or {}
    fields = diff_summaries(before, summarize_live(svc.spec, live.networks))
    details = ", ".join(f"{f} {a!r} -> {b!r}" for f, a, b in fields) or "spec changed outside the summary"
    return Drift(svc.short, "changed", details)


def find_drift(live: LiveStack, applied: dict[str, dict[str, Any]]) -> list[Drift]:
    """Every difference between the live services and what was applied; empty when nothing is known."""
    if not applied:
        return []
    drift: list[Drift] = []
    for name, svc in sorted(live.services.items()):
        if not svc.managed:
            drift.append(Drift(name, "unmanaged", "a service under the stack's name that swarmops did not create"))
        elif name in applied:
            found = _changed(svc, applied[name], live)
            if found:
                drift.append(found)
    drift += [Drift(name, "missing", "removed from the cluster by hand") for name in sorted(applied)
              if name not in live.services]
    return drift

"""Decide what one reconcile does: a pure function of the render, the live state and the images
already in the registry. Executing a plan makes no decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from swarmops.domain.live import LiveStack
from swarmops.domain.render import Rendered

Action = Literal["create", "update", "relabel", "unchanged", "remove"]


@dataclass(frozen=True)
class BuildStep:
    service: str
    image: str
    fingerprint: str
    reason: str
    replaced: str = ""    # the digest found in the registry instead of the one swarmops pushed
    alias: str = ""       # the fp-<fingerprint> tag pushed beside the commit's tag


@dataclass(frozen=True)
class ServiceChange:
    service: str
    action: Action
    reason: str


@dataclass(frozen=True)
class Plan:
    app: str
    commit: str
    builds: tuple[BuildStep, ...]
    changes: tuple[ServiceChange, ...]

    @property
    def deploy(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    @property
    def restarts(self) -> tuple[str, ...]:
        return tuple(c.service for c in self.changes if c.action in ("create", "update"))

    def summary(self) -> str:
        if not self.deploy:
            return "nothing to do: every service runs this commit's spec"
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        parts = [f"{n} {a}" for a, n in counts.items()]
        return f"{len(self.builds)} build(s); services: {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "commit": self.commit, "deploy": self.deploy,
                "builds": [asdict(b) for b in self.builds], "changes": [asdict(c) for c in self.changes]}


def make_plan(app: str, commit: str, rendered: Rendered, live: LiveStack,
              builds: tuple[BuildStep, ...]) -> Plan:
    changes: list[ServiceChange] = []
    for name, want in rendered.services.items():
        have = live.services.get(name)
        if have is None:
            changes.append(ServiceChange(name, "create", "new in the stack file"))
        elif have.spec_hash != want.spec_hash:
            why = "image changed" if have.image != want.image else "spec changed"
            changes.append(ServiceChange(name, "update", f"{why} (spec {have.spec_hash} -> {want.spec_hash})"))
        elif have.commit != commit:
            changes.append(ServiceChange(name, "relabel", f"same spec; commit label {have.commit} -> {commit}"))
        else:
            changes.append(ServiceChange(name, "unchanged", "spec and commit match"))
    for name in live.services:
        if name not in rendered.services:
            changes.append(ServiceChange(name, "remove", "no longer in the stack file (pruned)"))
    return Plan(app=app, commit=commit, builds=builds, changes=tuple(changes))

"""Judge a node from facts gathered over SSH and the Swarm's view of it: pure, one row per node."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeFacts:
    """What one SSH session found on a node; `error` is set when it could not be reached."""

    name: str
    address: str
    error: str = ""
    docker_version: str = ""
    swarm_state: str = ""
    node_id: str = ""
    docker_root: str = ""
    free_bytes: int | None = None
    clock_skew: float | None = None
    registry_status: str = ""


@dataclass(frozen=True)
class NodeRow:
    name: str
    address: str
    reachable: bool
    docker: str
    swarm: str
    role: str
    registry: str
    free_disk: str
    clock_skew: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def judge_node(facts: NodeFacts, expected_role: str, swarm_labels: dict[str, str] | None, role_label: str,
               max_skew: float, min_free_gb: float) -> NodeRow:
    """`swarm_labels`: the labels the manager has for this node id (None: the manager does not know it)."""
    if facts.error:
        return NodeRow(facts.name, facts.address, False, "-", "-", "-", "-", "-", "-", [facts.error])
    problems = []
    if facts.swarm_state != "active" or swarm_labels is None:
        problems.append(f"not an active member of this Swarm (state {facts.swarm_state or 'unknown'})")
    role = (swarm_labels or {}).get(role_label, "")
    if swarm_labels is not None and role != expected_role:
        problems.append(f"label {role_label}={role or '(none)'}, expected {expected_role} "
                        "(`swarmops nodes label` sets it)")
    if facts.registry_status not in ("200", "401"):
        problems.append(f"registry not reachable from the node ({facts.registry_status or 'no answer'})")
    free = "-" if facts.free_bytes is None else f"{facts.free_bytes / 1e9:.1f} GB"
    if facts.free_bytes is not None and facts.free_bytes < min_free_gb * 1e9:
        problems.append(f"only {free} free under {facts.docker_root} (want {min_free_gb:g} GB)")
    skew = "-" if facts.clock_skew is None else f"{facts.clock_skew:+.2f}s"
    if facts.clock_skew is not None and abs(facts.clock_skew) > max_skew:
        problems.append(f"clock off by {skew} (want within {max_skew:g}s): check NTP")
    return NodeRow(facts.name, facts.address, True, facts.docker_version, facts.swarm_state,
                   role or "-", facts.registry_status or "-", free, skew, problems)

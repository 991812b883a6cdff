"""Which nodes a service's placement constraints allow: how many tasks a global service should run."""

from __future__ import annotations

import re
from collections.abc import Iterable

from swarmops.domain.live import LiveNode

_EXPR = re.compile(r"^\s*([\w.\-]+)\s*(==|!=)\s*(.+?)\s*$")


def _value(node: LiveNode, key: str) -> str | None:
    if key.startswith("node.labels."):
        return node.labels.get(key[len("node.labels."):])
    return {"node.role": node.role, "node.hostname": node.hostname, "node.id": node.id}.get(key)


def matches(node: LiveNode, constraints: Iterable[str]) -> bool:
    """True when every constraint we can evaluate holds (engine labels and platform are not judged)."""
    for c in constraints:
        m = _EXPR.match(c)
        if not m:
            continue
        key, op, want = m.group(1), m.group(2), m.group(3).strip("\"'")
        if not (key.startswith("node.labels.") or key in ("node.role", "node.hostname", "node.id")):
            continue
        equal = _value(node, key) == want
        if equal != (op == "=="):
            return False
    return True


def eligible(nodes: Iterable[LiveNode], constraints: Iterable[str]) -> list[LiveNode]:
    constraints = list(constraints)
    return [n for n in nodes if n.state == "ready" and n.availability == "active" and matches(n, constraints)]

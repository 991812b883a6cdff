"""The live Swarm state of one app, as plain data read by the swarm adapter."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from swarmops.domain.render import APP_LABEL, COMMIT_LABEL, HOOKS_LABEL, SPEC_LABEL, parse_hooks_label
from swarmops.domain.ssolabels import read_routers
from swarmops.domain.traefikrule import HTTP_HOST_MATCHERS, parse_rule

_FRACTION = re.compile(r"\.(\d+)")
_HOST_RULE = re.compile(r"Host\(`([^`]+)`\)")


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 timestamps (nanoseconds) as aware datetimes."""
    if not value or value.startswith("0001-"):
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def strip_digest(image: str) -> str:
    """`repo:tag@sha256:...` -> `repo:tag`: stack deploy pins digests, tags are what we compare."""
    return image.split("@", 1)[0]


@dataclass(frozen=True)
class LiveNode:
    id: str
    hostname: str
    labels: dict[str, str]
    state: str
    availability: str
    role: str = "worker"


@dataclass(frozen=True)
class LiveTask:
    id: str
    service_id: str
    node_id: str | None
    slot: int | None
    desired: str
    state: str
    image: str
    force_update: int
    message: str
    error: str
    exit_code: int | None
    timestamp: datetime | None


@dataclass(frozen=True)
class LiveService:
    id: str
    name: str              # the Swarm service name, <app>_<service>
    short: str             # the stack file's service key
    labels: dict[str, str]
    image: str             # as written in the stack (tag, no digest)
    version: int
    replicas: int | None   # None for global services (and global jobs); a replicated job's completions
    update_state: str | None
    update_started: datetime | None
    update_message: str
    task_image: str
    force_update: int
    spec: dict[str, Any] = field(default_factory=dict, compare=False)
    mode: str = "replicated"   # replicated, global, replicated-job, global-job

    @property
    def job(self) -> bool:
        """A job's tasks run to completion: they are done when complete, not when running."""
        return self.mode.endswith("-job")

    @property
    def commit(self) -> str | None:
        return self.labels.get(COMMIT_LABEL)

    @property
    def spec_hash(self) -> str | None:
        return self.labels.get(SPEC_LABEL)

    @property
    def managed(self) -> bool:
        return APP_LABEL in self.labels


@dataclass(frozen=True)
class LiveStack:
    app: str
    services: dict[str, LiveService]
    tasks: list[LiveTask]
    nodes: dict[str, LiveNode]
    networks: dict[str, str] = field(default_factory=dict)   # id -> name

    def constraints_of(self, service: LiveService) -> list[str]:
        placement = (service.spec.get("TaskTemplate") or {}).get("Placement") or {}
        return [str(c) for c in placement.get("Constraints") or []]

    def tasks_of(self, service: LiveService) -> list[LiveTask]:
        return [t for t in self.tasks if t.service_id == service.id]

    def deployed_commit(self) -> str | None:
        """The commit most managed services carry; None when nothing of the app runs."""
        commits = Counter(s.commit for s in self.services.values() if s.managed and s.commit)
        return commits.most_common(1)[0][0] if commits else None

    def hook_specs(self) -> dict[str, str]:
        """The spec hash of each hook of the deployed commit, from its services' labels."""
        commit = self.deployed_commit()
        for svc in self.services.values():
            if svc.commit == commit and HOOKS_LABEL in svc.labels:
                return parse_hooks_label(svc.labels[HOOKS_LABEL])
        return {}

    def public_hosts(self) -> list[str]:
        """Hosts the proxy routes to this app, from its services' `Host(`...`)` router rules."""
        hosts = {h for svc in self.services.values() for key, rule in svc.labels.items()
                 if key.endswith(".rule") for h in _HOST_RULE.findall(rule)}
        return sorted(hosts)

    def node_name(self, node_id: str | None) -> str:
        node = self.nodes.get(node_id or "")
        return node.hostname if node else (node_id or "-")


@dataclass(frozen=True)
class SsoRoutes:
    """An app's HTTP routers that pass through the shared SSO middleware, and the hosts they match."""

    routers: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.routers)


def sso_routes(stack: LiveStack, middleware: str) -> SsoRoutes:
    """Which of the app's live routers name `middleware` (exactly, as `name@provider`), directly or through
    a chain the app's own labels define, and their hosts (lower-case, from their rules' Host() matchers).
    A service with `traefik.enable=false` has no routers."""
    routers = read_routers({svc.name: svc.labels for svc in stack.services.values()})
    behind = routers.behind(middleware)
    hosts = {h.lower().rstrip(".") for name in behind for h in rule_hosts(routers.attrs[name].get("rule", ""))}
    return SsoRoutes(tuple(behind), tuple(sorted(h for h in hosts if h)))


def rule_hosts(rule: str) -> list[str]:
    """The hosts a router rule's Host() and HostHeader() matchers name (not under a `!`), read by the policy's
    own reader (domain/traefikrule.py): `Host(` inside another matcher's quoted argument is text, and a rule
    that reader cannot read names no host (Polise then knows none, and refuses)."""
    try:
        return parse_rule(rule).hosts(HTTP_HOST_MATCHERS, negated=False)
    except ValueError:
        return []


def now() -> datetime:
    return datetime.now(UTC)

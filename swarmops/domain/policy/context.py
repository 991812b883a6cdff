"""What the policy knows of an app and the cluster, what a violation says, and who owns a name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RESTRICTED, PRIVILEGED = "restricted", "privileged"
# Docker's own networks, and swarmops' objects in the Swarm: no app stack may name them
DOCKER_NAMES = ("host", "bridge", "none", "ingress", "docker_gwbridge")
SWARMOPS_PREFIXES = ("swarmops_", "swarmops-")


@dataclass(frozen=True)
class PolicyContext:
    app: str
    profile: str
    registry: str
    role_label: str
    allowed_roles: tuple[str, ...]
    allowed_registries: tuple[str, ...] = ()
    allowed_cap_add: tuple[str, ...] = ()
    allowed_bind_mounts: tuple[str, ...] = ()
    port_range: tuple[int, int] = (1024, 65535)
    allowed_ports: tuple[int, ...] = ()
    ports_in_use: Mapping[int, str] = field(default_factory=dict)     # published port -> app using it
    allowed_external: tuple[str, ...] = ()
    allow_global: bool = False
    resource_limits: str = "warn"                                      # warn | deny | off
    apps: tuple[str, ...] = ()                   # every stack name in the config: who owns a name
    domain: str | None = None                    # apps answer at <app>.<domain>
    allowed_hosts: tuple[str, ...] = ()          # other hosts the app's routers may name
    max_replicas: int = 10
    allowed_middlewares: tuple[str, ...] = ()    # shared Traefik middlewares (name@provider) any app may use
    sso_middleware: str | None = None            # the shared SSO middleware (name@provider): any app may opt in
    lock_name: str = "swarmops-lock"


@dataclass(frozen=True)
class Violation:
    rule: str
    service: str
    key: str
    message: str
    fix: str
    severity: str = "deny"
    where: str = ""

    def __str__(self) -> str:
        at = f"{self.where}: " if self.where else ""
        return f"{at}service {self.service!r}, key {self.key}: [{self.rule}] {self.message}; fix: {self.fix}"


Where = Callable[[tuple[str | int, ...]], str]
Check = Callable[[str, dict[str, Any], dict[str, Any], PolicyContext], list[Violation]]


def violation(rule: str, svc: str, key: str, message: str, fix: str, severity: str = "deny") -> Violation:
    return Violation(rule, svc, f"services.{svc}.{key}", message, fix, severity)


def owner(name: str, apps: Iterable[str], separators: str = "_") -> str | None:
    """The stack a name belongs to: the longest stack name that prefixes it, followed by a separator
    (ruling 30: `_` for Swarm objects, `-` or `_` for Traefik names)."""
    best: str | None = None
    for app in apps:
        if any(name.startswith(app + sep) for sep in separators) and (best is None or len(app) > len(best)):
            best = app
    return best


def owns(ctx: PolicyContext, name: str, separators: str = "_") -> bool:
    """`name` is the app's under ruling 30; for Traefik names (separators `-_`) the app's name itself too."""
    if separators != "_" and name == ctx.app:
        return True
    return owner(name, {*ctx.apps, ctx.app}, separators) == ctx.app


def reserved(ctx: PolicyContext, name: str) -> bool:
    """Docker's own networks, the deploy lock, swarmops' history copies and stack."""
    return name in DOCKER_NAMES or name == ctx.lock_name or name.startswith(SWARMOPS_PREFIXES)

"""Policy on the rendered stack: what an app repo may ask of the cluster. A pure function of the
render (the effective model as the file handed to the CLI) and the app's policy settings; every
violation names its rule, service, key and fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmops.domain.policy.context import PRIVILEGED, RESTRICTED, PolicyContext, Violation, Where
from swarmops.domain.policy.objects import objects, service_labels
from swarmops.domain.policy.services import PRIVILEGED_RULES, RESTRICTED_RULES
from swarmops.domain.policy.traefik import traefik

__all__ = ["PRIVILEGED", "RESTRICTED", "PolicyContext", "Violation", "check", "published_ports"]


def published_ports(specs: Mapping[str, list[dict[str, Any]]]) -> dict[int, str]:
    """Published port -> app, from the live service specs of every app."""
    ports: dict[int, str] = {}
    for app, service_specs in specs.items():
        for spec in service_specs:
            for p in (spec.get("EndpointSpec") or {}).get("Ports") or []:
                if p.get("PublishedPort"):
                    ports.setdefault(int(p["PublishedPort"]), app)
    return ports


def check(doc: dict[str, Any], ctx: PolicyContext, where: Where | None = None) -> list[Violation]:
    """Every violation of the rendered stack `doc` (plain data), denials first."""
    rules = PRIVILEGED_RULES if ctx.profile == PRIVILEGED else (*RESTRICTED_RULES, service_labels, traefik)
    found: list[Violation] = []
    for name, svc in (doc.get("services") or {}).items():
        for rule in rules:
            found.extend(rule(str(name), svc or {}, doc, ctx))
    if ctx.profile != PRIVILEGED:
        found.extend(objects(doc, ctx))
    if where is not None:
        found = [_locate(v, where) for v in found]
    return sorted(found, key=lambda v: (v.severity != "deny", v.service, v.key))


def _locate(v: Violation, where: Where) -> Violation:
    path = tuple(int(p) if p.isdigit() else p for p in v.key.split("."))
    return Violation(v.rule, v.service, v.key, v.message, v.fix, v.severity, where(path))

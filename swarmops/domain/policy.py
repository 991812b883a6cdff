"""Policy on the rendered stack: what an app repo may ask of the cluster. A pure function of the
render and the app's policy settings; every violation names its rule, service, key and fix."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmops.domain.compose.model import Constraint
from swarmops.domain.compose.normalize import parse_constraint
from swarmops.errors import StackError

RESTRICTED, PRIVILEGED = "restricted", "privileged"
ALWAYS_FORBIDDEN_MOUNTS = ("/var/run/docker.sock", "/run/docker.sock", "/", "/etc", "/proc", "/sys",
                           "/var/lib/docker")
_UNCONFINED = re.compile(r"^(seccomp|apparmor)[:=]unconfined$|^label[:=]disable$|^no-new-privileges[:=]false$")


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


def _v(rule: str, svc: str, key: str, message: str, fix: str, severity: str = "deny") -> Violation:
    return Violation(rule, svc, f"services.{svc}.{key}", message, fix, severity)


def _host_modes(svc: str, s: dict[str, Any], _doc: dict[str, Any], _ctx: PolicyContext) -> list[Violation]:
    out = []
    if s.get("privileged"):
        out.append(_v("SO101", svc, "privileged", "privileged containers are root on the node", "remove privileged"))
    for key, rule in (("network_mode", "SO103"), ("pid", "SO104"), ("ipc", "SO105"), ("userns_mode", "SO106")):
        if str(s.get(key, "")).lower() == "host":
            out.append(_v(rule, svc, key, f"{key}: host shares the node's namespace", f"remove {key}"))
    if s.get("devices"):
        out.append(_v("SO107", svc, "devices", "host devices are not allowed", "remove devices"))
    for i, opt in enumerate(s.get("security_opt") or []):
        if _UNCONFINED.match(str(opt).replace(" ", "")):
            out.append(_v("SO108", svc, f"security_opt.{i}", f"{opt!r} turns off a kernel protection",
                          "remove it"))
    return out


def _caps(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    allowed = {c.upper().removeprefix("CAP_") for c in ctx.allowed_cap_add}
    return [_v("SO102", svc, f"cap_add.{i}", f"capability {cap} is not in the allow-list",
               f"remove it, or ask the ops team to allow it ({', '.join(sorted(allowed)) or 'none allowed'})")
            for i, cap in enumerate(s.get("cap_add") or [])
            if str(cap).upper().removeprefix("CAP_") not in allowed]


def _bind_source(volume: Any) -> str | None:
    if isinstance(volume, dict):
        return str(volume.get("source", "")) if volume.get("type") == "bind" else None
    source = str(volume).split(":", 1)[0] if ":" in str(volume) else None
    return source if source and (source.startswith(("/", ".", "~"))) else None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _mounts(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out = []
    for i, volume in enumerate(s.get("volumes") or []):
        source = _bind_source(volume)
        if source is None:
            continue
        path = posixpath.normpath(source) if source.startswith("/") else source
        if any(path == f for f in ALWAYS_FORBIDDEN_MOUNTS) or _under(path, "/var/lib/docker") or \
                _under(path, "/proc") or _under(path, "/sys"):
            out.append(_v("SO110", svc, f"volumes.{i}", f"bind mount of {source} gives control of the node",
                          "use a named volume"))
        elif not any(_under(path, root) for root in ctx.allowed_bind_mounts):
            out.append(_v("SO109", svc, f"volumes.{i}", f"bind mount of {source} is outside the allow-list",
                          "use a named volume, or ask the ops team to allow the path"))
    return out


_NODE_KEYS = ("node.role", "node.id", "node.hostname", "node.ip", "node.platform.")


def _placement(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """Constraints as swarmkit reads them: keys case-insensitive, values compared case-insensitively."""
    out = []
    placement = (s.get("deploy") or {}).get("placement") or {}
    role_key = f"node.labels.{ctx.role_label}"
    allowed = {r.lower() for r in ctx.allowed_roles}
    for i, text in enumerate(placement.get("constraints") or []):
        key = f"deploy.placement.constraints.{i}"
        c = _constraint(str(text))
        if c is None:
            out.append(_v("SO111", svc, key, f"constraint {text!r} is not one Swarm reads", "remove it"))
        elif c.key == role_key and (c.op != "==" or c.value.lower() not in allowed):
            out.append(_v("SO111", svc, key, f"role constraint {text!r} is not allowed for this app",
                          f"use {role_key} == one of {', '.join(ctx.allowed_roles)}, or ask the ops team to allow "
                          "the role"))
        elif c.key.startswith(_NODE_KEYS) or c.key.startswith("engine.labels."):
            out.append(_v("SO111", svc, key, f"constraint {text!r} targets managers or particular nodes",
                          f"place by role ({role_key})"))
    for i, pref in enumerate(placement.get("preferences") or []):
        spread = str((pref or {}).get("spread", "")) if isinstance(pref, dict) else str(pref)
        if spread.strip().lower().startswith((*_NODE_KEYS, "engine.labels.")):
            out.append(_v("SO111", svc, f"deploy.placement.preferences.{i}", f"preference {spread} targets nodes",
                          "remove it or spread over a node label"))
    return out


def _constraint(text: str) -> Constraint | None:
    try:
        return parse_constraint(text, StackError)
    except StackError:
        return None


def _image(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    image = str(s.get("image", ""))
    allowed = (ctx.registry, *ctx.allowed_registries)
    if any(image.startswith(r.rstrip("/") + "/") for r in allowed):
        return []
    return [_v("SO112", svc, "image", f"image {image!r} is not from the private registry {ctx.registry}",
               f"build it in the repo or push it to {ctx.registry}")]


def _port_numbers(port: Any) -> list[int]:
    if isinstance(port, dict):
        return [int(port["published"])] if port.get("published") not in (None, "") else []
    text = str(port).split("/")[0]
    if ":" not in text:
        return []
    published = text.rsplit(":", 1)[0].rsplit(":", 1)[-1]
    start, _, end = published.partition("-")
    try:
        return list(range(int(start), int(end or start) + 1))
    except ValueError:
        return []


def _ports(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out = []
    low, high = ctx.port_range
    for i, port in enumerate(s.get("ports") or []):
        for n in _port_numbers(port):
            if ctx.ports_in_use.get(n, ctx.app) != ctx.app:
                out.append(_v("SO114", svc, f"ports.{i}", f"port {n} is already published by app "
                              f"{ctx.ports_in_use[n]!r}", "publish another port, or route through the proxy"))
            elif ctx.profile != PRIVILEGED and not (low <= n <= high) and n not in ctx.allowed_ports:
                out.append(_v("SO113", svc, f"ports.{i}", f"port {n} is outside the app's range {low}-{high}",
                              "route through the proxy, or ask the ops team to allow the port"))
    return out


def _mode(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    if (s.get("deploy") or {}).get("mode") == "global" and not ctx.allow_global:
        return [_v("SO116", svc, "deploy.mode", "global services run on every node of the cluster",
                   "use replicas")]
    return []


def _limits(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    limits = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if ctx.resource_limits == "off" or (limits.get("cpus") and limits.get("memory")):
        return []
    return [_v("SO117", svc, "deploy.resources.limits", "no cpu and memory limits: one service can starve a node",
               "set deploy.resources.limits.cpus and .memory", "deny" if ctx.resource_limits == "deny" else "warn")]


def _externals(doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out = []
    for section in ("networks", "secrets", "configs"):
        for key, spec in (doc.get(section) or {}).items():
            if not isinstance(spec, dict) or not spec.get("external"):
                continue
            name = str(spec.get("name") or key)
            if not name.startswith(f"{ctx.app}_") and name not in ctx.allowed_external:
                out.append(Violation("SO115", "-", f"{section}.{key}", f"external {section[:-1]} {name!r} belongs "
                                     "to another app", f"declare your own {section[:-1]}, or ask the ops team "
                                     "to add it to policy.allowed_external"))
    return out


RESTRICTED_CHECKS: tuple[Check, ...] = (_host_modes, _caps, _mounts, _placement, _image, _ports, _mode, _limits)
PRIVILEGED_CHECKS: tuple[Check, ...] = (_ports,)


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
    checks = PRIVILEGED_CHECKS if ctx.profile == PRIVILEGED else RESTRICTED_CHECKS
    found: list[Violation] = []
    for name, svc in (doc.get("services") or {}).items():
        for rule in checks:
            found.extend(rule(str(name), svc or {}, doc, ctx))
    if ctx.profile != PRIVILEGED:
        found.extend(_externals(doc, ctx))
    if where is not None:
        found = [_locate(v, where) for v in found]
    return sorted(found, key=lambda v: (v.severity != "deny", v.service, v.key))


def _locate(v: Violation, where: Where) -> Violation:
    path = tuple(int(p) if p.isdigit() else p for p in v.key.split("."))
    return Violation(v.rule, v.service, v.key, v.message, v.fix, v.severity, where(path))

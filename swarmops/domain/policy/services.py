"""The rules for one service of the rendered stack. Under the restricted profile a service key is
either known here and checked, or refused (SO118): a key Docker adds in a future schema stays refused
until someone decides about it."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from swarmops.domain.compose.model import Constraint
from swarmops.domain.compose.shapes import parse_constraint
from swarmops.domain.policy.context import PRIVILEGED, PolicyContext, Violation, owns, reserved
from swarmops.domain.policy.context import violation as _v
from swarmops.errors import StackError

ALWAYS_FORBIDDEN_MOUNTS = ("/var/run/docker.sock", "/run/docker.sock", "/", "/etc", "/proc", "/sys",
                           "/var/lib/docker")
_UNCONFINED = re.compile(r"^(seccomp|apparmor)[:=]unconfined$|^label[:=]disable$|^no-new-privileges[:=]false$")
_NODE_KEYS = ("node.role", "node.id", "node.hostname", "node.ip", "node.platform.")

# keys a service may carry under the restricted profile: what Docker does with them stays inside the
# container (or is checked by a rule of its own below)
SERVICE_KEYS = frozenset((
    "image", "command", "entrypoint", "environment", "labels", "ports", "volumes", "secrets", "configs", "networks",
    "deploy", "healthcheck", "stop_grace_period", "stop_signal", "user", "working_dir", "init", "tty", "stdin_open",
    "read_only", "hostname", "expose", "depends_on", "container_name", "restart", "cap_add", "cap_drop", "tmpfs",
    "shm_size", "extra_hosts", "dns", "dns_search", "dns_opt", "ulimits", "sysctls", "logging", "privileged",
    "network_mode", "pid", "ipc", "userns_mode", "devices", "security_opt", "oom_score_adj"
))
DEPLOY_KEYS = frozenset((
    "mode", "replicas", "labels", "placement", "resources", "restart_policy", "update_config", "rollback_config",
    "endpoint_mode"
))
RESOURCE_KEYS = {"limits": frozenset({"cpus", "memory", "pids"}), "reservations": frozenset({"cpus", "memory"})}
LOG_DRIVERS = ("json-file", "local")


def allow_list(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out = [_unknown(svc, key) for key in s if key not in SERVICE_KEYS]
    deploy = s.get("deploy") or {}
    out += [_unknown(svc, f"deploy.{key}") for key in deploy if key not in DEPLOY_KEYS]
    for kind, keys in RESOURCE_KEYS.items():
        section = (deploy.get("resources") or {}).get(kind) or {}
        out += [_unknown(svc, f"deploy.resources.{kind}.{key}") for key in section if key not in keys]
    out += [_unknown(svc, f"deploy.resources.{key}") for key in deploy.get("resources") or {}
            if key not in RESOURCE_KEYS]
    for name in s.get("sysctls") or {}:
        if not str(name).startswith("net."):
            out.append(_v("SO118", svc, f"sysctls.{name}", f"sysctl {name} is not a network setting of the "
                          "container", "remove it; only net.* sysctls are allowed"))
    logging = s.get("logging")
    if logging is not None and (logging or {}).get("driver") not in LOG_DRIVERS:
        # without a driver, its options go to the daemon's default driver, whatever that is
        out.append(_v("SO118", svc, "logging.driver", f"log driver {(logging or {}).get('driver')!r} is not one "
                      "that keeps logs on the node", f"set driver: {' or '.join(LOG_DRIVERS)}, or remove logging"))
    if isinstance(s.get("oom_score_adj"), int) and s["oom_score_adj"] < 0:
        out.append(_v("SO118", svc, "oom_score_adj", "a negative oom_score_adj makes other apps die first",
                      "remove it"))
    return out


def _unknown(svc: str, key: str) -> Violation:
    return _v("SO118", svc, key, f"key {key} is not allowed under the restricted profile",
              "remove it, or ask the ops team (the privileged profile is for infrastructure stacks)")


def host_modes(svc: str, s: dict[str, Any], _doc: dict[str, Any], _ctx: PolicyContext) -> list[Violation]:
    out = []
    if s.get("privileged"):
        out.append(_v("SO101", svc, "privileged", "privileged containers are root on the node", "remove privileged"))
    for key, rule in (("network_mode", "SO103"), ("pid", "SO104"), ("ipc", "SO105"), ("userns_mode", "SO106")):
        if key in s and str(s[key]).strip().lower() not in ("", "private", "shareable"):
            out.append(_v(rule, svc, key, f"{key}: {s[key]} shares a namespace with the node or another "
                          "container", f"remove {key}"))
    if s.get("devices"):
        out.append(_v("SO107", svc, "devices", "host devices are not allowed", "remove devices"))
    for i, opt in enumerate(s.get("security_opt") or []):
        if _UNCONFINED.match(str(opt).replace(" ", "").lower()) or not str(opt).lower().startswith(
                ("no-new-privileges", "label:", "label=")):
            out.append(_v("SO108", svc, f"security_opt.{i}", f"{opt!r} changes a kernel protection", "remove it"))
    return out


def caps(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    allowed = {c.upper().removeprefix("CAP_") for c in ctx.allowed_cap_add}
    return [_v("SO102", svc, f"cap_add.{i}", f"capability {cap} is not in the allow-list",
               f"remove it, or ask the ops team to allow it ({', '.join(sorted(allowed)) or 'none allowed'})")
            for i, cap in enumerate(s.get("cap_add") or [])
            if str(cap).strip().upper().removeprefix("CAP_") not in allowed]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def mounts(svc: str, s: dict[str, Any], doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """A mount by its effective type and source: a named volume by its top-level driver and options."""
    out = []
    for i, mount in enumerate(s.get("volumes") or []):
        key = f"volumes.{i}"
        kind, source = _mount_kind(mount)
        if kind == "bind":
            out += _bind(svc, key, posixpath.normpath(source or "/"), ctx)
        elif kind == "volume" and source:
            spec = (doc.get("volumes") or {}).get(source) or {}
            if spec.get("driver") not in (None, "local") or spec.get("driver_opts"):
                out.append(_v("SO119", svc, key, f"volume {source!r} has driver {spec.get('driver') or 'local'} "
                              f"with options {sorted(spec.get('driver_opts') or {})}: it can mount host paths or "
                              "remote shares", "use a plain named volume (no driver, no driver_opts)"))
        elif kind not in ("volume", "tmpfs"):
            out.append(_v("SO118", svc, key, f"mount type {kind} is not allowed under the restricted profile",
                          "use a named volume or tmpfs"))
    return out


def _mount_kind(mount: Any) -> tuple[str, str | None]:
    if isinstance(mount, dict):
        return str(mount.get("type")), mount.get("source")
    source, sep, _ = str(mount).partition(":")
    if not sep:
        return "volume", None
    return ("bind" if source.startswith(("/", ".", "~")) else "volume"), source


NODE_CONTROL = ("/var/run/docker.sock", "/run/docker.sock", "/var/lib/docker", "/proc", "/sys",
                "/var/lib/swarmops", "/etc/swarmops", "/run/containerd", "/var/run/containerd")


def _bind(svc: str, key: str, path: str, ctx: PolicyContext) -> list[Violation]:
    # a path at, under or above one of them (binding /var or /run includes the socket)
    if path in ALWAYS_FORBIDDEN_MOUNTS or any(_under(path, p) or _under(p, path) for p in NODE_CONTROL):
        return [_v("SO110", svc, key, f"bind mount of {path} gives control of the node", "use a named volume")]
    if not any(_under(path, root) for root in ctx.allowed_bind_mounts):
        return [_v("SO109", svc, key, f"bind mount of {path} is outside the allow-list",
                   "use a named volume, or ask the ops team to allow the path")]
    return []


def placement(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """Constraints as swarmkit reads them: keys case-insensitive, values compared case-insensitively."""
    out = []
    where = (s.get("deploy") or {}).get("placement") or {}
    role_key = f"node.labels.{ctx.role_label}"
    allowed = {r.lower() for r in ctx.allowed_roles}
    for i, text in enumerate(where.get("constraints") or []):
        key = f"deploy.placement.constraints.{i}"
        c = _constraint(str(text))
        if c is None:
            out.append(_v("SO111", svc, key, f"constraint {text!r} is not one Swarm reads", "remove it"))
        elif c.key.lower() == role_key.lower() and (c.op != "==" or c.value.lower() not in allowed
                                                     or c.key != role_key):
            out.append(_v("SO111", svc, key, f"role constraint {text!r} is not allowed for this app",
                          f"use {role_key} == one of {', '.join(ctx.allowed_roles)}, or ask the ops team to allow "
                          "the role"))
        elif c.key.startswith(_NODE_KEYS) or c.key.startswith("engine.labels."):
            out.append(_v("SO111", svc, key, f"constraint {text!r} targets managers or particular nodes",
                          f"place by role ({role_key})"))
    for i, pref in enumerate(where.get("preferences") or []):
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


def image(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    name = str(s.get("image", ""))
    allowed = (ctx.registry, *ctx.allowed_registries)
    if any(name.startswith(r.rstrip("/") + "/") for r in allowed):
        return []
    return [_v("SO112", svc, "image", f"image {name!r} is not from the private registry {ctx.registry}",
               f"build it in the repo or push it to {ctx.registry}")]


def _port_numbers(port: Any) -> list[int]:
    if isinstance(port, dict):
        return [int(port["published"])] if isinstance(port.get("published"), int) else []
    text = str(port).split("/")[0]
    if ":" not in text:
        return []
    start, _, end = text.rsplit(":", 1)[0].partition("-")
    return list(range(int(start), int(end or start) + 1)) if start.isdigit() and (end or "0").isdigit() else []


def ports(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
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


def mode(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    deploy = s.get("deploy") or {}
    out = []
    if deploy.get("mode") in ("global", "global-job") and not ctx.allow_global:
        out.append(_v("SO116", svc, "deploy.mode", f"{deploy['mode']} services run on every node of the cluster",
                      "use replicas"))
    replicas = deploy.get("replicas")
    if isinstance(replicas, int) and replicas > ctx.max_replicas:
        out.append(_v("SO125", svc, "deploy.replicas", f"{replicas} replicas is more than this app may run "
                      f"({ctx.max_replicas})", "run fewer, or ask the ops team to raise policy.max_replicas"))
    return out


def limits(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    found = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if ctx.resource_limits == "off" or (found.get("cpus") and found.get("memory")):
        return []
    return [_v("SO117", svc, "deploy.resources.limits", "no cpu and memory limits: one service can starve a node",
               "set deploy.resources.limits.cpus and .memory", "deny" if ctx.resource_limits == "deny" else "warn")]


def attachments(svc: str, s: dict[str, Any], doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """On a network shared with other apps, the names this service answers to must be its app's."""
    out = []
    for key, spec in (s.get("networks") or {}).items():
        if not ((doc.get("networks") or {}).get(key) or {}).get("external"):
            continue
        for i, alias in enumerate((spec or {}).get("aliases") or []):
            if (alias != ctx.app and not owns(ctx, str(alias), "-_.")) or reserved(ctx, str(alias)):
                out.append(_v("SO124", svc, f"networks.{key}.aliases.{i}", f"alias {alias!r} on the shared "
                              f"network {key} is a name of another app or of the cluster",
                              f"use a name that starts with {ctx.app}-"))
        for option in ("ipv4_address", "ipv6_address"):
            if (spec or {}).get(option):
                out.append(_v("SO124", svc, f"networks.{key}.{option}", "a fixed address on a shared network "
                              "can take another app's", f"remove {option}"))
    return out


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    """(key path, text) of every string in a value (lists and mappings walked, keys and values)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in [(f"{key}.{k}", str(k)), *_strings(v, f"{key}.{k}")]]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _strings(v, f"{key}.{i}")]
    return []


# the fields swarmkit expands as Go templates on the node (template/expand.go), after the policy read them
TEMPLATED = ("environment", "hostname", "volumes", "tmpfs", "networks")


def templates(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """`{{...}}` in a field Swarm expands: `/srv/app/{{printf "%c%c" 46 46}}/...` passes a path check as
    written and names another path on the node (the Docker socket), so the policy would judge text that is
    not what Docker runs."""
    return [_v("SO133", svc, key, f"{{{{ in {key} is a Swarm template, expanded on the node after this check",
               "write the value itself (no {{ }})") for field in TEMPLATED if field in s
            for key, text in _strings(s[field], field) if "{{" in text]


RESTRICTED_RULES = (allow_list, host_modes, caps, mounts, placement, image, ports, mode, limits, attachments,
                    templates)
PRIVILEGED_RULES = (ports,)

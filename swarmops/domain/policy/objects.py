"""The rules for a stack's top-level networks, volumes, secrets and configs, and for labels on every
object: an app uses its own objects, the shared ones the ops team allows, and never Docker's or
swarmops' own."""

from __future__ import annotations

from typing import Any

from swarmops.domain.policy.context import PolicyContext, Violation, owns, reserved

RESERVED_LABELS = ("io.swarmops.", "com.docker.")
TRACKING = frozenset({"io.swarmops.app", "io.swarmops.commit", "io.swarmops.spec", "io.swarmops.fingerprint",
                      "io.swarmops.hook", "io.swarmops.hooks"})
OBJECT_KEYS = {
    "networks": frozenset({"external", "name", "driver", "driver_opts", "labels", "attachable", "internal"}),
    "volumes": frozenset({"external", "name", "driver", "driver_opts", "labels"}),
    "secrets": frozenset({"external", "name", "file", "labels"}),
    "configs": frozenset({"external", "name", "file", "labels"}),
}
NETWORK_OPTIONS = frozenset({"encrypted"})


def _object(rule: str, section: str, key: str, message: str, fix: str) -> Violation:
    return Violation(rule, "-", f"{section}.{key}", message, fix)


def objects(doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out: list[Violation] = []
    for section, allowed in OBJECT_KEYS.items():
        for key, spec in (doc.get(section) or {}).items():
            spec = spec or {}
            out += [_object("SO118", section, f"{key}.{k}", f"key {section}.{key}.{k} is not allowed under the "
                            "restricted profile", "remove it") for k in spec if k not in allowed]
            out += _name(section, key, spec, ctx)
            out += _labels(f"{section}.{key}.labels", "-", spec.get("labels"), ctx, tracking=False)
            if section == "networks" and (spec.get("driver") not in (None, "overlay")
                                          or set(spec.get("driver_opts") or {}) - NETWORK_OPTIONS):
                out.append(_object("SO128", section, key, f"network {key!r} asks for driver "
                                   f"{spec.get('driver')} with options {sorted(spec.get('driver_opts') or {})}",
                                   "use an overlay network (driver_opts: only encrypted)"))
    return out


def _name(section: str, key: str, spec: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """An external object, or one named explicitly, must be the app's own or an allowed shared one."""
    if not spec.get("external") and spec.get("name") is None:
        return []
    name = str(spec.get("name") or key)
    kind = section[:-1]
    if reserved(ctx, name):
        return [_object("SO127", section, key, f"{kind} {name!r} is Docker's or swarmops' own",
                        f"declare a {kind} of your own")]
    if owns(ctx, name) or name in ctx.allowed_external:
        return []
    return [_object("SO115", section, key, f"{'external ' if spec.get('external') else ''}{kind} {name!r} belongs "
                    "to another app", f"declare your own {kind} (names start with {ctx.app}_), or ask the ops team "
                    "to add it to policy.allowed_external")]


def _labels(key: str, service: str, labels: Any, ctx: PolicyContext, tracking: bool) -> list[Violation]:
    return [Violation("SO126", service, f"{key}.{label}", f"label {label} is swarmops' or Docker's own",
                      "remove it") for label in (labels or {})
            if str(label).startswith(RESERVED_LABELS) and not (tracking and label in TRACKING)]


def service_labels(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    """Container and service labels; the tracking labels the render sets on the service are its own."""
    return (_labels(f"services.{svc}.labels", svc, s.get("labels"), ctx, tracking=False)
            + _labels(f"services.{svc}.deploy.labels", svc, (s.get("deploy") or {}).get("labels"), ctx,
                      tracking=True))

"""A person-readable summary of a service spec, from the Compose render or from Docker's live spec,
and the field-by-field difference of two summaries (diff, drift)."""

from __future__ import annotations

import re
from typing import Any

Summary = dict[str, Any]

_OWN_LABELS = ("io.swarmops.", "com.docker.stack.")
_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_MEM_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _labels(raw: Any) -> dict[str, str]:
    if isinstance(raw, list):
        raw = dict(str(x).partition("=")[::2] for x in raw)
    return {str(k): str(v) for k, v in (raw or {}).items() if not str(k).startswith(_OWN_LABELS)}


def _env(raw: Any) -> dict[str, str]:
    if isinstance(raw, list):
        return dict(str(x).partition("=")[::2] for x in raw)
    return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (raw or {}).items()}


def _memory(value: Any) -> int | None:
    if value is None:
        return None
    m = _MEM.match(str(value))
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2).lower()]) if m else None


def _cpus(value: Any) -> int | None:
    return None if value is None else round(float(value) * 1e9)


def _resources(raw: dict[str, Any] | None) -> dict[str, int | None]:
    raw = raw or {}
    out = {}
    for kind in ("limits", "reservations"):
        r = raw.get(kind) or {}
        out[f"{kind}.cpus"] = _cpus(r.get("cpus"))
        out[f"{kind}.memory"] = _memory(r.get("memory"))
    return {k: v for k, v in out.items() if v}


def _compose_ports(raw: list[Any] | None) -> list[str]:
    ports = []
    for p in raw or []:
        if isinstance(p, dict):
            ports.append(f"{p.get('published', '')}:{p.get('target')}/{p.get('protocol', 'tcp')} "
                         f"{p.get('mode', 'ingress')}")
            continue
        text, _, proto = str(p).partition("/")
        published, _, target = text.rpartition(":")
        published = published.rpartition(":")[2]   # drop a host ip
        ports.append(f"{published}:{target}/{proto or 'tcp'} ingress")
    return sorted(ports)


def _object_names(app: str, refs: Any, top: dict[str, Any]) -> list[str]:
    names = []
    for ref in refs or []:
        key = str(ref.get("source")) if isinstance(ref, dict) else str(ref)
        spec = top.get(key) or {}
        names.append(str(spec.get("name") or (key if spec.get("external") else f"{app}_{key}")))
    return sorted(names)


def _networks(app: str, raw: Any, top: dict[str, Any]) -> list[str]:
    keys = list(raw) if raw else ["default"]
    names = []
    for key in keys:
        spec = top.get(key) or {}
        names.append(str(spec.get("name") or (key if spec.get("external") else f"{app}_{key}")))
    return sorted(names)


def summarize_compose(app: str, service: dict[str, Any], top: dict[str, Any]) -> Summary:
    """The summary of a rendered Compose service; `top` is the whole rendered document."""
    deploy = service.get("deploy") or {}
    mode = deploy.get("mode", "replicated")
    return {
        "image": str(service.get("image", "")).split("@", 1)[0],   # a reused image is written pinned
        "env": _env(service.get("environment")),
        "replicas": mode if mode in ("global", "global-job") else f"replicated-job x{deploy.get('replicas', 1)}"
        if mode == "replicated-job" else int(deploy.get("replicas", 1)),
        "constraints": sorted(str(c) for c in (deploy.get("placement") or {}).get("constraints") or []),
        "labels": _labels(deploy.get("labels")),
        "container_labels": _labels(service.get("labels")),
        "resources": _resources(deploy.get("resources")),
        "ports": _compose_ports(service.get("ports")),
        "secrets": _object_names(app, service.get("secrets"), top.get("secrets") or {}),
        "configs": _object_names(app, service.get("configs"), top.get("configs") or {}),
        "networks": _networks(app, service.get("networks"), top.get("networks") or {}),
    }


def summarize_live(spec: dict[str, Any], network_names: dict[str, str]) -> Summary:
    """The summary of Docker's live service spec (`Spec` of a service inspect)."""
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    mode = spec.get("Mode") or {}
    resources = template.get("Resources") or {}
    res: dict[str, int | None] = {}
    for kind, key in (("limits", "Limits"), ("reservations", "Reservations")):
        r = resources.get(key) or {}
        res[f"{kind}.cpus"] = r.get("NanoCPUs")
        res[f"{kind}.memory"] = r.get("MemoryBytes")
    ports = [f"{p.get('PublishedPort', '')}:{p.get('TargetPort')}/{p.get('Protocol', 'tcp')} "
             f"{p.get('PublishMode', 'ingress')}" for p in (spec.get("EndpointSpec") or {}).get("Ports") or []]
    nets = template.get("Networks") or spec.get("Networks") or []
    return {
        "image": str(container.get("Image", "")).split("@", 1)[0],
        "env": _env(container.get("Env")),
        "replicas": _replicas(mode),
        "constraints": sorted((template.get("Placement") or {}).get("Constraints") or []),
        "labels": _labels(spec.get("Labels")),
        "container_labels": _labels(container.get("Labels")),
        "resources": {k: v for k, v in res.items() if v},
        "ports": sorted(ports),
        "secrets": sorted(str(s.get("SecretName")) for s in container.get("Secrets") or []),
        "configs": sorted(str(c.get("ConfigName")) for c in container.get("Configs") or []),
        "networks": sorted(network_names.get(n.get("Target", ""), n.get("Target", "")) for n in nets),
    }


def _replicas(mode: dict[str, Any]) -> int | str:
    """Replicas as the stack file says them; a job by its mode (ruling 33: not taken for global)."""
    if "Global" in mode:
        return "global"
    if "GlobalJob" in mode:
        return "global-job"
    if "ReplicatedJob" in mode:
        return f"replicated-job x{(mode.get('ReplicatedJob') or {}).get('TotalCompletions', 1)}"
    return int((mode.get("Replicated") or {}).get("Replicas", 0))


def diff_summaries(want: Summary, have: Summary) -> list[tuple[str, Any, Any]]:
    """(field, wanted, live) for every field that differs; mappings are compared key by key."""
    out: list[tuple[str, Any, Any]] = []
    for field in want.keys() | have.keys():
        a, b = want.get(field), have.get(field)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                if a.get(key) != b.get(key):
                    out.append((f"{field}.{key}", a.get(key), b.get(key)))
        elif a != b:
            out.append((field, a, b))
    return sorted(out, key=lambda d: d[0])

"""The effective model written as the file handed to `docker stack deploy`: long syntax where the
file's version has it, every string quoted, every literal `$` written `$$`, no anchors or tags, so
the CLI reads back exactly the values the policy judged."""

from __future__ import annotations

import re
from typing import Any

import yaml

from swarmops.domain.compose.interpolate import escape
from swarmops.domain.compose.model import Mount, ObjectRef, Port, Service, Stack, TopObject, Version
from swarmops.errors import StackError

LONG_SYNTAX = (3, 2)


def service_doc(svc: Service, version: Version | None) -> dict[str, Any]:
    """One service as plain data (unescaped): what the policy, the diff and the spec hash read."""
    long = version is None or version >= LONG_SYNTAX
    out: dict[str, Any] = dict(svc.rest)
    if svc.image is not None:
        out["image"] = svc.image
    if svc.environment:
        out["environment"] = dict(sorted(svc.environment.items()))
    if svc.labels:
        out["labels"] = dict(sorted(svc.labels.items()))
    if svc.ports:
        out["ports"] = [_port(p, long) for p in svc.ports]
    if svc.volumes:
        out["volumes"] = [_mount(m, long) for m in svc.volumes]
    for section, refs in (("secrets", svc.secrets), ("configs", svc.configs)):
        if refs:
            out[section] = [_ref(r) for r in refs]
    if svc.networks is not None:
        out["networks"] = {n.key: ({"aliases": list(n.aliases)} if n.aliases else {}) | n.options or None
                           for n in svc.networks}
    deploy: dict[str, Any] = dict(svc.deploy.rest)
    if svc.deploy.mode is not None:
        deploy["mode"] = svc.deploy.mode
    if svc.deploy.replicas is not None:
        deploy["replicas"] = svc.deploy.replicas
    if svc.deploy.labels:
        deploy["labels"] = dict(sorted(svc.deploy.labels.items()))
    placement: dict[str, Any] = {}
    if svc.deploy.placement.constraints:
        placement["constraints"] = [f"{c.key} {c.op} {c.value}" for c in svc.deploy.placement.constraints]
    if svc.deploy.placement.preferences:
        placement["preferences"] = [{"spread": s} for s in svc.deploy.placement.preferences]
    if svc.deploy.placement.max_replicas_per_node is not None:
        placement["max_replicas_per_node"] = svc.deploy.placement.max_replicas_per_node
    if placement:
        deploy["placement"] = placement
    if deploy:
        out["deploy"] = deploy
    return out


def _port(p: Port, long: bool) -> Any:
    if long:
        return {k: v for k, v in p.model_dump().items() if v is not None}
    if p.mode == "host":
        raise StackError(f"port {p.target}: mode host needs version 3.2 or newer; raise version:")
    protocol = p.protocol or "tcp"
    return f"{p.published}:{p.target}/{protocol}" if p.published is not None else f"{p.target}/{protocol}"


def _mount(m: Mount, long: bool) -> Any:
    if long:
        out: dict[str, Any] = {"type": m.type}
        if m.source is not None:
            out["source"] = m.source
        out["target"] = m.target
        if m.read_only:
            out["read_only"] = True
        return out | m.options
    options = [opt for opt in (("ro" if m.read_only else ""),
                               ("nocopy" if (m.options.get("volume") or {}).get("nocopy") else ""),
                               str((m.options.get("bind") or {}).get("propagation") or "")) if opt]
    if m.type not in ("volume", "bind") or set(m.options) - {"volume", "bind"}:
        raise StackError(f"volume {m.target}: a {m.type} mount needs version 3.2 or newer; raise version:")
    head = f"{m.source}:{m.target}" if m.source else m.target
    return ":".join([head, ",".join(options)]) if options else head


def _ref(r: ObjectRef) -> dict[str, Any]:
    return {k: v for k, v in r.model_dump().items() if v is not None}


def object_doc(obj: TopObject) -> dict[str, Any] | None:
    if obj.external:
        return {"external": True}
    out: dict[str, Any] = dict(obj.rest)
    for key in ("name", "file", "driver"):
        if getattr(obj, key) is not None:
            out[key] = getattr(obj, key)
    if obj.driver_opts:
        out["driver_opts"] = dict(obj.driver_opts)
    if obj.labels:
        out["labels"] = dict(sorted(obj.labels.items()))
    return out or None


def stack_doc(stack: Stack, version: Version | None) -> dict[str, Any]:
    """The whole stack as plain data (unescaped), without `version`."""
    doc: dict[str, Any] = {"services": {name: service_doc(s, version) for name, s in stack.services.items()}}
    for section in ("networks", "volumes", "secrets", "configs"):
        objects = stack.section(section)
        if objects:
            doc[section] = {key: object_doc(obj) for key, obj in objects.items()}
    return doc


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _quoted(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')


def _mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    """Keys plain where that reads back as the same text (the emitter quotes `yes`, `1` and the like)."""
    pairs = [(yaml.ScalarNode("tag:yaml.org,2002:str", key, style=None if _plain(key) else '"'),
              dumper.represent_data(value)) for key, value in sorted(data.items())]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


def _plain(key: str) -> bool:
    return bool(_PLAIN_KEY.match(key)) and key not in ("y", "Y", "n", "N")


_Dumper.add_representer(str, _quoted)
_Dumper.add_representer(dict, _mapping)


def _escaped(node: Any) -> Any:
    if isinstance(node, str):
        return escape(node)
    if isinstance(node, dict):
        return {k: _escaped(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_escaped(v) for v in node]
    return node


def dump(doc: dict[str, Any], version: Version, header: str = "") -> str:
    """The file text: `version` first, then the rest with every value's `$` escaped for the CLI."""
    body = yaml.dump(_escaped(doc), Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=1 << 16,
                     default_flow_style=False)
    head = "".join(f"# {line}\n" for line in header.splitlines())
    return f'{head}version: "{version[0]}.{version[1]}"\n{body}'

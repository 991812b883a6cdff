"""Which stack-file keys each Compose file version allows, as `docker stack deploy` checks them.

A table of facts read off docker/cli's JSON schemas (cli/compose/schema/data/config_schema_v3.*.json):
Debian's docker.io 20.10 (tag v20.10.24) carries 3.0-3.9, docker 28 (v28.1.1 ... v28.5.2) 3.0-3.13, the
shared ones identical. Every key, once added, stays in all later versions, so one "since" per key suffices.
A file without `version:` is read as 3.13 by docker 28 and rejected by 20.10 ("unsupported Compose file
version: 1.0"); `version: "3"` means 3.13 to docker 28 but 3.0 to 20.10, so parse_version reads it as 3.0.

Only keys are checked, not value types. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

Version = tuple[int, int]

CLI_20_10: tuple[Version, ...] = tuple((3, minor) for minor in range(10))
CLI_28: tuple[Version, ...] = tuple((3, minor) for minor in range(14))

# A node maps a key to its entry: the minor version (3.N) that brought the key in, alone for a key whose value
# holds no keys, or paired with the node its mapping value (or its list items, under "[]") is checked against.
# Special keys: "*" a user-chosen name, "[]" a list item, "x-" extension fields, "..." any other key.
# _FREE is a node whose contents are not checked at all (labels, environment, driver_opts, ...).
_Entry: TypeAlias = "int | tuple[int, _Node]"
_Node: TypeAlias = "dict[str, _Entry]"

_FREE: _Node = {}


def _keys(since: int, names: str) -> _Node:
    return dict.fromkeys(names.split(), since)


_OPEN: _Entry = (0, _FREE)
_REF = _keys(0, "source target uid gid mode") | {"...": _OPEN}  # service secrets:/configs: long syntax
_UPDATE = _keys(0, "parallelism delay failure_action monitor max_failure_ratio") | {"order": 4}

_DEPLOY: _Node = _keys(0, "mode replicas") | {
    "endpoint_mode": 2,
    "labels": _OPEN,
    "update_config": (0, _UPDATE),
    "rollback_config": (7, _UPDATE),
    "restart_policy": (0, _keys(0, "condition delay max_attempts window")),
    "resources": (0, {
        "limits": (0, _keys(0, "cpus memory") | {"pids": 9}),
        "reservations": (0, _keys(0, "cpus memory") | {"generic_resources": (5, {"[]": (5, {
            "discrete_resource_spec": (5, _keys(5, "kind value"))})})}),
    }),
    "placement": (0, {"constraints": 0, "preferences": (3, {"[]": (3, {"spread": 3})}), "max_replicas_per_node": 8}),
}

_SERVICE: _Node = _keys(0, """cap_add cap_drop cgroup_parent command container_name depends_on devices dns dns_search
    domainname entrypoint env_file expose external_links hostname image ipc links mac_address network_mode pid
    privileged read_only restart security_opt shm_size stdin_open stop_grace_period stop_signal tmpfs tty user
    userns_mode working_dir""") | {
    "x-": (7, _FREE),
    "cgroupns_mode": 9, "init": 7, "isolation": 5, "oom_score_adj": 13,
    "environment": _OPEN, "extra_hosts": _OPEN, "labels": _OPEN, "sysctls": _OPEN,
    "build": (0, _keys(0, "context dockerfile") | _keys(4, "network target") | {
        "cache_from": 2, "shm_size": 5, "args": _OPEN, "labels": (3, _FREE), "extra_hosts": (9, _FREE),
        "...": (11, _FREE)}),
    "configs": (3, {"[]": (3, _REF)}),
    "secrets": (1, {"[]": (1, _REF)}),
    "credential_spec": (3, _keys(3, "file registry") | {"config": 8}),
    "deploy": (0, _DEPLOY),
    "healthcheck": (0, _keys(0, "disable interval retries test timeout") | {"start_period": 4, "start_interval": 12}),
    "logging": (0, {"driver": 0, "options": _OPEN}),
    "networks": (0, {"*": (0, _keys(0, "aliases ipv4_address ipv6_address") | {"driver_opts": (13, _FREE)})}),
    "ports": (0, {"[]": (2, _keys(0, "mode target published protocol"))}),
    "ulimits": (0, {"*": (0, _keys(0, "soft hard"))}),
    "volumes": (0, {"[]": (2, _keys(0, "type source target read_only consistency") | {
        "bind": (0, {"propagation": 0, "...": _OPEN}),
        "volume": (0, {"nocopy": 0, "...": _OPEN}),
        "tmpfs": (6, {"size": 0, "...": _OPEN}),
    })}),
}

_COMMON: _Node = {"x-": (7, _FREE), "labels": _OPEN, "name": 5}  # in networks, volumes, secrets, configs
_NETWORK = _COMMON | _keys(0, "driver internal") | {
    "attachable": 2, "driver_opts": _OPEN, "external": (0, {"name": 0}),
    "ipam": (0, {"driver": 0, "config": (0, {"[]": (0, {"subnet": 0})})}),
}
_VOLUME = _COMMON | {"name": 4, "driver": 0, "driver_opts": _OPEN, "external": (0, {"name": 0})}
_SECRET = _COMMON | {"file": 0, "external": (0, {"name": 0, "...": _OPEN}), "template_driver": 8,
                     "driver": 8, "driver_opts": (8, _FREE)}
_CONFIG = _COMMON | {"file": 0, "external": (0, {"name": 0, "...": _OPEN}), "template_driver": 8}

_ROOT: _Node = {
    "version": 0,
    "x-": (4, _FREE),
    "services": (0, {"*": (0, _SERVICE)}),
    "networks": (0, {"*": (0, _NETWORK)}),
    "volumes": (0, {"*": (0, _VOLUME)}),
    "secrets": (1, {"*": (1, _SECRET)}),
    "configs": (3, {"*": (3, _CONFIG)}),
}


def _show(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def parse_version(text: str) -> Version:
    """The schema version a `version:` value names: "3" is 3.0 (as 20.10 reads it; docker 28 reads 3.13)."""
    match = re.fullmatch(r"3(?:\.(0|[1-9][0-9]?))?", text)
    version = (3, int(match.group(1) or 0)) if match else None
    if version is None or version not in CLI_28:
        raise ValueError(f"Compose file version {text!r} is not one docker stack deploy knows "
                         f"(3.0 to {_show(CLI_28[-1])}; 20.10 up to {_show(CLI_20_10[-1])})")
    return version


def _lookup(node: _Node, key: str) -> _Entry | None:
    if key != "[]" and key in node:
        return node[key]
    if key.startswith("x-") and "x-" in node:
        return node["x-"]
    return node.get("*", node.get("..."))


def _split(entry: _Entry) -> tuple[int, _Node | None]:
    return (entry, None) if isinstance(entry, int) else entry


def min_version(path: tuple[str, ...]) -> Version | None:
    """The lowest schema version allowing the key at `path` ("*" a chosen name, "[]" a list item), None if none."""
    node: _Node | None = _ROOT
    need = 0
    for part in path:
        if node is _FREE:
            break
        entry = None if node is None else node.get("[]") if part == "[]" else _lookup(node, part)
        if entry is None:
            return None
        since, node = _split(entry)
        need = max(need, since)
    return (3, need)


def key_problems(tree: dict[str, Any], version: Version) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, message) for each key no version knows and each key `version` does not allow yet."""
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def walk(node: _Node, mapping: dict[Any, Any], path: tuple[str | int, ...], floor: int, need: int) -> None:
        for key, value in mapping.items():
            here = (*path, key if isinstance(key, str | int) else str(key))
            entry = _lookup(node, str(key))
            if entry is None:
                problems.append((here, f"key '{key}' is not a Compose key Docker knows; remove it"))
                continue
            since, child = _split(entry)
            since = max(since, floor)
            if since > need:
                problems.append((here, f"key '{key}' needs version {_show((3, since))} or newer; "
                                       f"this file says {_show(version)}: raise version"))
            below = max(need, since)
            if child is None or child is _FREE:
                continue
            if isinstance(value, dict):
                walk(child, value, here, since, below)
            elif isinstance(value, list) and "[]" in child:
                item_since, item_node = _split(child["[]"])
                for index, item in enumerate(value):
                    if isinstance(item, dict) and item_node is not None and item_node is not _FREE:
                        walk(item_node, item, (*here, index), max(since, item_since), below)

    if isinstance(tree, dict):
        walk(_ROOT, tree, (), 0, version[1])
    return problems


def lowest_version(tree: dict[str, Any], known: tuple[Version, ...]) -> Version | None:
    """The lowest version in `known` that allows every key of `tree`, None if none does."""
    return next((version for version in sorted(known) if not key_problems(tree, version)), None)

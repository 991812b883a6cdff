"""`swarmops nodes check` and `nodes label`: the inventory in the config, facts over SSH, labels
through the manager."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from swarmops.adapters.engine import api_client
from swarmops.adapters.swarm.nodes import SwarmNodes
from swarmops.config.models import Config
from swarmops.domain.nodecheck import NodeFacts, NodeRow, judge_node
from swarmops.errors import ConfigError


def _facts(config: Config) -> list[NodeFacts]:
    nodes = config.nodes
    if not nodes.inventory:
        raise ConfigError("no nodes.inventory in the config: list every node with name, address and role")
    if not nodes.ssh.known_hosts_file.is_file():
        raise ConfigError(f"nodes.ssh.known_hosts_file {nodes.ssh.known_hosts_file} does not exist; host keys "
                          "are checked against it and never accepted on first use")
    from swarmops.adapters.ssh import gather  # paramiko: loaded only by the commands that use ssh

    url = f"{'http' if config.registry_insecure else 'https'}://{config.registry}/v2/"
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda e: gather(e, nodes.ssh, url), nodes.inventory))


def check_nodes(config: Config) -> list[NodeRow]:
    facts = _facts(config)
    labels = SwarmNodes(api_client(config.docker_host, config.docker_timeout)).labels()
    roles = {e.name: e.role for e in config.nodes.inventory}
    return [judge_node(f, roles[f.name], labels.get(f.node_id) if f.node_id else None, config.role_label,
                       config.nodes.max_clock_skew, config.nodes.min_free_disk_gb) for f in facts]


@dataclass(frozen=True)
class LabelChange:
    node: str
    node_id: str
    before: str
    after: str


def label_nodes(config: Config, dry_run: bool = False) -> tuple[list[LabelChange], list[str]]:
    """Set each node's role label from the inventory; returns the changes and the nodes it could not reach."""
    swarm = SwarmNodes(api_client(config.docker_host, config.docker_timeout))
    labels = swarm.labels()
    changes, unreachable = [], []
    for facts, entry in zip(_facts(config), config.nodes.inventory, strict=True):
        if facts.error or facts.node_id not in labels:
            unreachable.append(f"{entry.name}: {facts.error or 'not a member of this Swarm'}")
            continue
        current = labels[facts.node_id].get(config.role_label, "")
        if current != entry.role:
            changes.append(LabelChange(entry.name, facts.node_id, current, entry.role))
            if not dry_run:
                swarm.set_label(facts.node_id, config.role_label, entry.role)
    return changes, unreachable

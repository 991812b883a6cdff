"""Node labels through the manager's Engine API."""

from __future__ import annotations

import docker
import requests

from swarmops.errors import EngineError


class SwarmNodes:
    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def labels(self) -> dict[str, dict[str, str]]:
        """Node id -> labels, for every node the manager knows."""
        try:
            return {n["ID"]: dict(n["Spec"].get("Labels") or {}) for n in self.api.nodes()}
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineError(f"cannot list the Swarm's nodes: {type(e).__name__}: {e}") from e

    def set_label(self, node_id: str, key: str, value: str) -> None:
        try:
            node = self.api.inspect_node(node_id)
            spec = dict(node["Spec"])
            spec["Labels"] = {**(spec.get("Labels") or {}), key: value}
            self.api.update_node(node_id, node["Version"]["Index"], spec)
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineError(f"cannot label node {node_id}: {type(e).__name__}: {e}") from e

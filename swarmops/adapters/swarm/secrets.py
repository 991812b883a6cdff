"""Swarm secrets of an app: created from memory through the Engine API, pruned when unused."""

from __future__ import annotations

import docker
import requests

from swarmops.domain.render import APP_LABEL
from swarmops.errors import EngineError


class SwarmSecrets:
    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def ensure(self, app: str, name: str, data: bytes) -> bool:
        """Create the secret unless it exists (names are content-derived); True when created."""
        try:
            if any(s["Spec"]["Name"] == name for s in self.api.secrets(filters={"name": name})):
                return False
            self.api.create_secret(name, data, labels={APP_LABEL: app})
            return True
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineError(f"cannot create secret {name}: {getattr(e, 'explanation', None) or type(e).__name__}") \
                from e

    def prune(self, app: str) -> list[str]:
        """Remove the app's secrets no service uses any more; returns their names. Only the app's own services
        and jobs are read (a call that does not grow with the apps in the Swarm), and none when the app has no
        secret: the Engine itself refuses to remove a secret any other service still uses."""
        try:
            secrets = self.api.secrets(filters={"label": f"{APP_LABEL}={app}"})
            if not secrets:
                return []
            own = self.api.services(filters={"label": f"{APP_LABEL}={app}"})
            specs = [(svc["Spec"].get("TaskTemplate") or {}).get("ContainerSpec") or {} for svc in own]
            used = {ref.get("SecretID") for spec in specs for ref in spec.get("Secrets") or []}
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineError(f"cannot list secrets: {type(e).__name__}") from e
        removed = []
        for s in secrets:
            if s["ID"] in used:
                continue
            try:
                self.api.remove_secret(s["ID"])
                removed.append(s["Spec"]["Name"])
            except docker.errors.APIError:
                pass   # taken into use meanwhile: kept, tried again after the next deploy
        return removed

    def names(self, app: str) -> list[str]:
        return sorted(s["Spec"]["Name"] for s in self.api.secrets(filters={"label": f"{APP_LABEL}={app}"}))

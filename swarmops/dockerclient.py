"""One docker-py client factory for the images and swarm adapters, always with a timeout."""

from __future__ import annotations

import os

import docker

from swarmops.errors import EngineError


def docker_host(configured: str | None) -> str:
    return configured or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def api_client(host: str | None, timeout: float) -> docker.APIClient:
    try:
        return docker.APIClient(base_url=docker_host(host), timeout=int(max(1, timeout)), version="auto")
    except docker.errors.DockerException as e:
        raise EngineError(f"cannot reach the Docker engine at {docker_host(host)}: {e}") from None

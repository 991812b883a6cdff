"""One docker-py client factory for the images and swarm adapters, always with a timeout."""

from __future__ import annotations

import os

import docker

from swarmops.errors import EngineError


def docker_host(configured: str | None) -> str:
    return configured or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _load_ssh_transport() -> None:
    """docker-py was imported without paramiko (see swarmops/__init__.py); give it its ssh transport now."""
    import docker.api.client as client

    if not hasattr(client, "SSHHTTPAdapter"):
        from docker.transport.sshconn import SSHHTTPAdapter

        client.SSHHTTPAdapter = SSHHTTPAdapter


def api_client(host: str | None, timeout: float) -> docker.APIClient:
    if docker_host(host).startswith("ssh://"):
        _load_ssh_transport()
    try:
        client = docker.APIClient(base_url=docker_host(host), timeout=int(max(1, timeout)), version="auto")
        client.trust_env = False   # the Engine API never goes through an HTTP proxy (and skips the env scan)
        return client
    except (docker.errors.DockerException, OSError) as e:
        raise EngineError(f"cannot reach the Docker engine at {docker_host(host)}: {e}") from e
    except Exception as e:   # the ssh transport raises paramiko's own errors (bad key, refused auth)
        if type(e).__module__.startswith("paramiko"):
            raise EngineError(f"cannot reach the Docker engine at {docker_host(host)}: {e}") from e
        raise

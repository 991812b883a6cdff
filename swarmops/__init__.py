"""swarmops: a GitOps deployer for Docker Swarm."""

import sys

__version__ = "0.1.0"


def _import_docker_without_ssh() -> None:
    """docker-py imports paramiko (about 20 MB of RSS with cryptography) for ssh:// engine URLs, which
    most setups never need: the daemon talks to the manager's socket. Keep it out of the daemon's memory;
    `dockerclient.api_client` loads docker-py's ssh transport when a host is ssh:// (remote builds), and
    swarmops' own ssh code (node checks) imports paramiko as usual."""
    if "docker" in sys.modules or "paramiko" in sys.modules:
        return
    sys.modules["paramiko"] = None  # type: ignore[assignment]   # makes `import paramiko` fail inside docker
    try:
        import docker  # noqa: F401
    finally:
        del sys.modules["paramiko"]


_import_docker_without_ssh()

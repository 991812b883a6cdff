"""`docker stack deploy` through the docker CLI: Docker's own reading of the Compose file."""

from __future__ import annotations

import re
from pathlib import Path

from swarmops.adapters.engine import docker_host
from swarmops.adapters.images.registry import docker_config_dir
from swarmops.domain.compose import schema
from swarmops.domain.compose.schema import Version
from swarmops.errors import DependencyError, DeployError, EngineError, ProcessTimeout
from swarmops.util import process
from swarmops.util.redact import redact_url

# the CLI's words when the Engine (or the Swarm's control plane) is not there: a fault of the moment
ENGINE_GONE = ("Cannot connect to the Docker daemon", "connection refused", "context deadline exceeded",
               "rpc error: code = Unavailable", "rpc error: code = DeadlineExceeded",
               "The swarm does not have a leader")


class StackDeployer:
    def __init__(self, host: str | None, timeout: float = 300.0) -> None:
        self.host = docker_host(host)
        self.timeout = timeout
        self._schema: tuple[Version, ...] | None = None
        self._env = process.minimal_env({"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(docker_config_dir()),
                                         "HOME": str(docker_config_dir().parent)})

    def _docker(self, *args: str, cwd: Path | None = None) -> process.Result:
        try:
            return process.run(["docker", *args], self._env, self.timeout, cwd=cwd)
        except FileNotFoundError:
            raise DeployError("the docker CLI is not installed on this host; install docker-ce-cli or "
                              "docker.io") from None
        except ProcessTimeout as e:
            raise DeployError(f"docker {args[0]} {args[1] if len(args) > 1 else ''}: {e}") from e

    def cli_version(self) -> str:
        res = self._docker("version", "--format", "{{.Client.Version}}")
        version = res.stdout.strip()
        if not re.match(r"^\d+\.\d+", version):
            raise DeployError(f"cannot read the docker CLI version: {res.stderr.strip() or 'no output'}")
        return version

    def schema_versions(self) -> tuple[Version, ...]:
        """The compose file versions this deploy CLI reads, detected once (ruling 9): Debian's 20.10 knows
        3.0-3.9; 28 knows 3.0-3.13. Releases in between are taken as 20.10, which refuses more, never less."""
        if self._schema is None:
            major = int(self.cli_version().split(".")[0])
            self._schema = schema.CLI_28 if major >= 28 else schema.CLI_20_10
        return self._schema

    def deploy(self, app: str, compose_file: Path) -> str:
        """Deploy; judged by the exit code (stderr carries warnings too)."""
        res = self._docker("stack", "deploy", "--with-registry-auth", "--prune", "-c", str(compose_file), app,
                           cwd=compose_file.parent)
        if res.returncode != 0:
            lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
            message = f"docker stack deploy {app} failed: {redact_url(lines[-1] if lines else 'no output')}"
            if "declared as external, but could not be found" in message:
                raise DependencyError(message)
            if any(words in message for words in ENGINE_GONE):
                raise EngineError(message)
            raise DeployError(message)
        return res.stdout

    def remove(self, app: str) -> None:
        res = self._docker("stack", "rm", app)
        if res.returncode != 0:
            raise DeployError(f"docker stack rm {app} failed: {res.stderr.strip()}")

"""Shared lab plumbing for benchmarks: real git repos, a config, an in-process reconciler."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker

from swarmops.config.models import Config
from swarmops.domain.live import LiveStack
from swarmops.reconcile.reconciler import Reconciler
from swarmops.runtime import make_reconciler

MANAGER = os.environ.get("LAB_DOCKER_HOST", "unix:///run/swarm-lab/manager.sock")
REGISTRY = os.environ.get("LAB_REGISTRY", "198.18.0.2:5000")
BASE_IMAGE = f"{REGISTRY}/base/busybox:1"
SERVE = """CMD ["sh", "-c", "httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait"]"""


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.org", *args],
                         cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Repo:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.bare, self.work = root / "remote.git", root / "work"
        git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        git("init", "-q", "-b", "main", str(self.work), cwd=root)

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, message: str, files: dict[str, str]) -> str:
        for rel, text in files.items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.work / rel).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", str(self.bare), "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def two_service_app(version: str) -> dict[str, str]:
    files = {"docs/USAGE.md": "# Usage\n"}
    for name in ("api", "ui"):
        files[f"{name}/Dockerfile"] = f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\n{SERVE}\n"
        files[f"{name}/index.html"] = f"{name} {version}\n"
    files["stack.yml"] = "version: \"3.8\"\nservices:\n" + "".join(
        f"  {n}:\n    build: ./{n}\n    stop_grace_period: 1s\n    deploy: {{update_config: {{monitor: 1s}}}}\n"
        for n in ("api", "ui"))
    return files


def config(state_dir: Path, apps: list[dict[str, Any]], **extra: Any) -> Config:
    base = {"registry": REGISTRY, "registry_insecure": True, "state_dir": str(state_dir), "docker_host": MANAGER,
            "settle": "1s", "deploy_timeout": "120s", "lock": {"name": f"bench-lock-{run_id()}"}}
    return Config.model_validate({**base, **extra, "apps": apps})


# what the daemon's status cache shares with every check: filled by a bench's cycle (one read of all apps)
SHARED: dict[str, LiveStack] = {}


def reconciler(cfg: Config) -> Reconciler:
    return make_reconciler(cfg, progress=lambda _m: None, snapshot=SHARED.get)


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def task_ids(api: docker.APIClient, app: str) -> set[str]:
    tasks = api.tasks(filters={"label": f"com.docker.stack.namespace={app}", "desired-state": "running"})
    return {t["ID"] for t in tasks}


def remove_stack(api: docker.APIClient, app: str) -> None:
    subprocess.run(["docker", "stack", "rm", app], env={**os.environ, "DOCKER_HOST": MANAGER},
                   capture_output=True, check=False)
    label = {"label": f"com.docker.stack.namespace={app}"}
    for cfg in api.configs(filters={"label": f"io.swarmops.history={app}"}):   # its history copy
        with contextlib.suppress(docker.errors.APIError):
            api.remove_config(cfg["ID"])
    for _ in range(120):
        if not api.services(filters=label):
            networks = api.networks(filters=label)
            if not networks:
                return
            for net in networks:   # stack rm gives up on a network whose endpoints were still going away
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_network(net["Id"])
        time.sleep(0.5)


class EngineCalls:
    """Every request docker-py sends from this process while `counting()`, by method and resource
    ("GET /services", "POST /configs"): the Engine calls of a piece of work, counted at docker-py's session.
    The `docker stack deploy` children are other processes and are not counted (a deploy is counted apart)."""

    def __init__(self) -> None:
        self.by_call: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.by_call.values())

    @contextlib.contextmanager
    def counting(self) -> Iterator[EngineCalls]:
        own = docker.APIClient.__dict__.get("send")
        inherited = docker.APIClient.send

        def send(client: docker.APIClient, request: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.by_call[_call_kind(request.method, request.url)] += 1
            return inherited(client, request, **kwargs)
        docker.APIClient.send = send
        try:
            yield self
        finally:
            if own is None:
                del docker.APIClient.send
            else:
                docker.APIClient.send = own


def _call_kind(method: str, url: str) -> str:
    path = re.sub(r"^/v[0-9.]+", "", urlsplit(url).path)
    return f"{method} /{path.strip('/').split('/')[0]}"

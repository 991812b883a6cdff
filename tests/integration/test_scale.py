"""Issue 11: reading the live state of every app costs a fixed number of Engine API calls, counted
through a counting transport around the real docker-py client, against the lab."""

from __future__ import annotations

import collections
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.types import ServiceMode, TaskTemplate

from bench.lab import remove_stack
from swarmops.adapters.swarm.live import SwarmReader
from tests.integration.conftest import BASE_IMAGE, MANAGER, Swarmops

pytestmark = pytest.mark.exclusive


class CountingClient(docker.APIClient):   # type: ignore[misc]
    """The real client; every HTTP request it sends is counted."""

    calls = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().send(request, **kwargs)


def make_stacks(lab: docker.APIClient, run_id: str, count: int, offset: int) -> list[str]:
    ids = []
    for i in range(offset, offset + count):
        app = f"scale{i}-{run_id}"
        ids.append(lab.create_service(
            TaskTemplate(container_spec=docker.types.ContainerSpec(BASE_IMAGE, ["sleep", "1000"])),
            name=f"{app}_web", mode=ServiceMode("replicated", replicas=0),
            labels={"com.docker.stack.namespace": app, "io.swarmops.app": app})["ID"])
    return ids


def calls_for_read_all() -> tuple[int, int]:
    client = CountingClient(base_url=MANAGER, timeout=30, version="auto")
    before = client.calls
    stacks = SwarmReader(client).read_all()
    return client.calls - before, len(stacks)


def test_reading_all_apps_costs_the_same_number_of_calls_for_3_or_30_apps(lab: docker.APIClient,
                                                                           run_id: str) -> None:
    created = make_stacks(lab, run_id, 3, 0)
    try:
        few_calls, few = calls_for_read_all()
        created += make_stacks(lab, run_id, 27, 3)
        many_calls, many = calls_for_read_all()
        assert many >= few + 27
        assert many_calls == few_calls <= 4
    finally:
        for sid in created:
            lab.remove_service(sid)


class GitCountingProxy:
    """A TCP proxy in front of the lab's `git daemon` that counts, at the server side of swarmops, the
    git connections open at once, the checks per repo and the fetches (protocol v2 `command=fetch`)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        self.active = self.max_active = 0
        self.per_repo: collections.Counter[str] = collections.Counter()
        self.fetched: collections.Counter[str] = collections.Counter()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.max_active = self.active
            self.per_repo.clear()
            self.fetched.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        upstream = socket.create_connection(self.target)
        seen = bytearray()
        done = threading.Event()

        def back() -> None:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
            done.set()

        threading.Thread(target=back, daemon=True).start()
        try:
            while chunk := client.recv(65536):
                if len(seen) < 65536:
                    seen += chunk
                upstream.sendall(chunk)
            upstream.shutdown(socket.SHUT_WR)
            done.wait(30)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
            repo = re.search(rb"git-upload-pack (\S+?)\x00", seen)
            name = repo.group(1).decode() if repo else "?"
            with self.lock:
                self.active -= 1
                self.per_repo[name] += 1
                if b"command=fetch" in seen or b"want " in seen:
                    self.fetched[name] += 1


def deploy_count(swarmops: Swarmops) -> int:
    with sqlite3.connect(swarmops.state_dir / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM deploys").fetchone()[0])


def test_fifty_unchanged_apps_are_each_checked_per_interval_within_the_git_limit_with_no_fetch_or_deploy(
        lab: docker.APIClient, swarmops: Swarmops, tmp_path: Path) -> None:
    from bench import scale

    n, limit, interval = 50, 3, 6.0
    served = tmp_path / "served"
    served.mkdir()
    scale.make_repos(served, n)
    with scale.git_daemon(served):
        proxy = GitCountingProxy((scale.GIT_HOST, scale.GIT_PORT))
        swarmops.extra.update(poll_interval=f"{interval:g}s", settle="0s", git={"concurrency": limit})
        apps = [swarmops.add_app(swarmops.name(f"fifty{i}"), f"git://127.0.0.1:{proxy.port}/app{i}.git")
                for i in range(n)]
        try:
            swarmops.run("daemon", "--once")                       # the first deploy fetches every repo
            assert sum(proxy.fetched.values()) == n
            deploys_before = deploy_count(swarmops)
            assert deploys_before == n
            proxy.reset()
            log = tmp_path / "daemon.log"
            proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                    stdout=log.open("wb"), stderr=subprocess.STDOUT)
            time.sleep(5 + 2 * interval + 1)   # first checks within 5 s, then two intervals
            proc.terminate()
            proc.wait(timeout=60)
            checks = {f"/app{i}.git": proxy.per_repo[f"/app{i}.git"] for i in range(n)}
            assert all(2 <= c <= 4 for c in checks.values()), checks
            assert proxy.max_active <= limit, proxy.max_active
            assert not proxy.fetched, proxy.fetched                # unchanged apps: no fetch
            assert deploy_count(swarmops) == deploys_before        # no deploy
            assert '"result": "deployed"' not in log.read_text()
        finally:
            scale.parallel(apps, lambda app: remove_stack(lab, app))

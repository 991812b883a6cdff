"""The jobs adapter's own logic against a small Engine double that keeps services and tasks as the Engine
API returns them (the real Engine is in tests/integration/test_hooks.py): secret ids, the deadline, the log
tail, and that the job is gone afterwards whatever happened."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from swarmops.adapters.swarm.jobs import SwarmJobs
from swarmops.errors import DependencyError

SPEC: dict[str, Any] = {
    "Name": "shop_hook-migrate", "Labels": {"io.swarmops.app": "shop", "io.swarmops.hook": "migrate"},
    "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    "TaskTemplate": {"RestartPolicy": {"Condition": "none"}, "ContainerSpec": {
        "Image": "reg/shop/web:1", "Secrets": [{"SecretName": "shop_pw_1", "File": {"Name": "pw"}}]}}}


class Engine:
    """Services, their one task (ending in `end` after `steps` reads), secrets, and a log."""

    def __init__(self, end: str = "complete", exit_code: int = 0, steps: int = 2) -> None:
        self.end, self.exit_code, self.steps = end, exit_code, steps
        self.made: dict[str, dict[str, Any]] = {}
        self.secret_list: list[dict[str, Any]] = [{"ID": "sec1", "Spec": {"Name": "shop_pw_1"}}]
        self.reads = 0
        self.log = b"".join(f"line {n}\n".encode() for n in range(30)) + b"\x1b[31mdone\x1b[0m\n"

    def secrets(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.secret_list if str(s["Spec"]["Name"]).startswith(filters["name"])]

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = dict(item.split("=", 1) for item in filters["label"])
        return [s for s in self.made.values() if all(s["Spec"]["Labels"].get(k) == v for k, v in wanted.items())]

    def create_service(self, task_template: dict[str, Any], name: str, labels: dict[str, str],
                       mode: dict[str, Any]) -> dict[str, str]:
        sid = f"svc{len(self.made) + 1}"
        self.made[sid] = {"ID": sid, "Spec": {"Name": name, "Labels": labels, "Mode": mode,
                                                  "TaskTemplate": task_template}}
        return {"ID": sid}

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.reads += 1
        state = self.end if self.reads >= self.steps else "running"
        return [{"ID": "t1", "Status": {"State": state, "Timestamp": f"2026-01-01T00:00:0{self.reads % 10}Z",
                                        "ContainerStatus": {"ExitCode": self.exit_code if state != "running" else None},
                                        "Err": "task: non-zero exit (3)" if state == "failed" else ""}}]

    def service_logs(self, service: str, **kwargs: Any) -> list[bytes]:
        assert kwargs["tail"] == 20 and not kwargs["follow"]
        return [self.log]

    def remove_service(self, service: str) -> None:
        self.made.pop(service)


def jobs(engine: Engine) -> SwarmJobs:
    api: Any = engine
    clock = iter(float(n) for n in range(10_000))
    return SwarmJobs(api, clock=lambda: next(clock))


def test_a_job_that_ends_gives_its_exit_code_and_log_tail_and_is_removed() -> None:
    engine = Engine(end="failed", exit_code=3)
    runner = jobs(engine)
    runner.POLL = 0.0
    result = runner.run("shop", SPEC, 60, threading.Event())
    assert (result.state, result.exit_code, result.message) == ("failed", 3, "task: non-zero exit (3)")
    assert len(result.log_tail) == 20 and result.log_tail[-1] == "[31mdone[0m"   # control characters dropped
    assert engine.made == {}


def test_a_job_past_its_deadline_is_removed_and_reported_as_a_timeout() -> None:
    engine = Engine(steps=10_000)
    runner = jobs(engine)
    runner.POLL = 0.0
    result = runner.run("shop", SPEC, 5, threading.Event())
    assert (result.state, result.exit_code) == ("timeout", None) and "task running" in result.message
    assert engine.made == {}


def test_a_missing_secret_is_named_and_no_job_is_made() -> None:
    engine = Engine()
    engine.secret_list = []
    with pytest.raises(DependencyError, match="shop_pw_1"):
        jobs(engine).run("shop", SPEC, 60, threading.Event())
    assert engine.made == {}


def test_a_job_an_earlier_run_left_behind_is_removed_first() -> None:
    engine = Engine()
    engine.create_service({}, "shop_hook-migrate", {"io.swarmops.app": "shop", "io.swarmops.hook": "migrate"}, {})
    runner = jobs(engine)
    runner.POLL = 0.0
    assert runner.run("shop", SPEC, 60, threading.Event()).ok and engine.made == {}

"""The deploy lock against a small fake of the Engine's config API: bounded retries, and a config of the
lock's name that a stack made is an error, not a lock to wait for or to fight over."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

from swarmops.adapters.swarm.lock import HOLDER, SwarmLock
from swarmops.errors import LockError


class FakeConfigs:
    """Swarm configs by name: a taken name is a 409; removal of one in use fails like the Engine's."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {}
        self.in_use: set[str] = set()
        self.creates = 0

    def create_config(self, name: str, data: bytes, labels: dict[str, str]) -> dict[str, str]:
        self.creates += 1
        if any(c["Spec"]["Name"] == name for c in self.configs.values()):
            raise docker.errors.APIError("conflict", response=_Response(409))
        cid = f"id{len(self.configs)}-{self.creates}"
        self.configs[cid] = {"ID": cid, "Spec": {"Name": name, "Labels": labels}, "Version": {"Index": 1}}
        return {"ID": cid}

    def configs_(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return [c for c in self.configs.values() if filters["name"] in c["Spec"]["Name"]]

    def remove_config(self, cid: str) -> None:
        if cid in self.in_use:
            raise docker.errors.APIError("in use", response=_Response(400))
        del self.configs[cid]


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "fake"


@pytest.fixture
def api() -> FakeConfigs:
    return FakeConfigs()


def patched(fake: FakeConfigs) -> Any:
    """The fake with docker.APIClient's method names (`configs` is the fake's own dict)."""
    class Api:
        create_config = staticmethod(fake.create_config)
        remove_config = staticmethod(fake.remove_config)

        @staticmethod
        def configs(filters: dict[str, str]) -> list[dict[str, Any]]:
            return fake.configs_(filters)
    return Api()


def test_a_free_lock_is_taken_and_a_held_one_names_its_holder(api: FakeConfigs) -> None:
    first = SwarmLock(patched(api), ttl=30, name="swarmops-lock", holder="a:1")
    second = SwarmLock(patched(api), ttl=30, name="swarmops-lock", holder="b:2")
    assert first.try_acquire() is None
    held = second.try_acquire()
    assert held is not None and held.holder == "a:1"


def test_a_lock_config_made_by_a_stack_is_an_error_not_a_recursion(api: FakeConfigs) -> None:
    api.configs["s"] = {"ID": "s", "Spec": {"Name": "swarmops-lock", "Labels": {
        "com.docker.stack.namespace": "evil", HOLDER: "forged", "io.swarmops.lock.expires": "0"}}}
    api.in_use.add("s")
    lock = SwarmLock(patched(api), ttl=30, name="swarmops-lock", holder="a:1")
    with pytest.raises(LockError, match=r"stack .evil. made it; remove that stack.s config, or set lock\.name"):
        lock.try_acquire()
    assert api.creates == 1


def test_an_expired_lock_that_cannot_be_removed_is_tried_a_bounded_number_of_times(api: FakeConfigs) -> None:
    api.configs["old"] = {"ID": "old", "Spec": {"Name": "swarmops-lock", "Labels": {
        HOLDER: "gone:9", "io.swarmops.lock.expires": f"{time.time() - 60:.3f}"}}}
    api.in_use.add("old")
    lock = SwarmLock(patched(api), ttl=30, name="swarmops-lock", holder="a:1")
    held = lock.try_acquire()
    assert held is not None and held.holder == "gone:9" and api.creates == 3

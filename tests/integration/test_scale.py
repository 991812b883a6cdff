"""Issue 11: reading the live state of every app costs a fixed number of Engine API calls, counted
through a counting transport around the real docker-py client, against the lab."""

from __future__ import annotations

from typing import Any

import docker
from docker.types import ServiceMode, TaskTemplate

from swarmops.swarm.live import SwarmReader
from tests.integration.conftest import BASE_IMAGE, MANAGER


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

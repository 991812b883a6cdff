from dataclasses import replace
from typing import Any

from swarmops.domain.drift import applied_record, find_drift
from swarmops.domain.live import LiveService
from tests.unit.fakes import service, stack

SPEC = {"Labels": {"io.swarmops.commit": "c1"}, "Mode": {"Replicated": {"Replicas": 2}},
        "TaskTemplate": {"ContainerSpec": {"Image": "reg/app/web:c1@sha256:1", "Env": ["A=1"]}}}


def web(spec: dict[str, Any]) -> LiveService:
    return replace(service("web"), spec=spec)


def test_no_drift_right_after_apply_even_when_service_labels_change() -> None:
    live = stack([web(SPEC)])
    applied = applied_record(live)
    relabelled = {**SPEC, "Labels": {"io.swarmops.commit": "c2"}}
    assert find_drift(stack([web(relabelled)]), applied) == []


def test_hand_scaling_and_env_changes_are_drift_with_the_fields_named() -> None:
    applied = applied_record(stack([web(SPEC)]))
    scaled = {**SPEC, "Mode": {"Replicated": {"Replicas": 5}},
              "TaskTemplate": {"ContainerSpec": {"Image": "reg/app/web:c1@sha256:1", "Env": ["A=2"]}}}
    [drift] = find_drift(stack([web(scaled)]), applied)
    assert drift.kind == "changed" and "replicas 2 -> 5" in drift.details and "env.A '1' -> '2'" in drift.details


def test_services_added_or_removed_by_hand_are_reported() -> None:
    applied = applied_record(stack([web(SPEC)]))
    intruder = replace(service("intruder"), labels={"com.docker.stack.namespace": "app"})
    kinds = {(d.service, d.kind) for d in find_drift(stack([intruder]), applied)}
    assert kinds == {("intruder", "unmanaged"), ("web", "missing")}


def test_nothing_is_drift_when_nothing_was_recorded() -> None:
    assert find_drift(stack([web(SPEC)]), {}) == []

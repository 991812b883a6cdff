"""Read the live state of stacks: a fixed number of Engine API calls whatever the number of apps."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import docker
import requests

from swarmops.domain.live import LiveNode, LiveService, LiveStack, LiveTask, parse_time, strip_digest
from swarmops.domain.render import STACK_NAMESPACE
from swarmops.errors import EngineError

STACK_IMAGE = "com.docker.stack.image"
# the Engine's service modes (ruling 33: a job is neither replicated nor global)
MODES = {"Replicated": "replicated", "Global": "global", "ReplicatedJob": "replicated-job", "GlobalJob": "global-job"}


def _mode(mode: dict[str, Any]) -> tuple[str, int | None]:
    """The service's mode and its replica count (a replicated job's completions; None when per node)."""
    kind = next((MODES[k] for k in MODES if k in mode), "replicated")
    if kind == "replicated":
        return kind, int((mode.get("Replicated") or {}).get("Replicas", 0))
    if kind == "replicated-job":
        return kind, int((mode.get("ReplicatedJob") or {}).get("TotalCompletions", 1) or 1)
    return kind, None


def _service(raw: dict[str, Any], app: str) -> LiveService:
    spec = raw.get("Spec") or {}
    labels = spec.get("Labels") or {}
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    mode = spec.get("Mode") or {}
    update = raw.get("UpdateStatus") or {}
    name = str(spec.get("Name", ""))
    # a reused image is written pinned (tag@digest): compared and shown by its tag
    image = strip_digest(str(labels.get(STACK_IMAGE) or container.get("Image", "")))
    kind, replicas = _mode(mode)
    return LiveService(
        id=raw["ID"], name=name, short=name.removeprefix(f"{app}_"), labels=dict(labels),
        image=image, version=int((raw.get("Version") or {}).get("Index", 0)), replicas=replicas,
        update_state=update.get("State"), update_started=parse_time(update.get("StartedAt")),
        update_message=str(update.get("Message", "")), task_image=str(container.get("Image", "")),
        force_update=int(template.get("ForceUpdate", 0)), spec=spec, mode=kind)


def _task(raw: dict[str, Any]) -> LiveTask:
    status = raw.get("Status") or {}
    spec = raw.get("Spec") or {}
    cstatus = status.get("ContainerStatus") or {}
    return LiveTask(
        id=raw["ID"], service_id=raw.get("ServiceID", ""), node_id=raw.get("NodeID"), slot=raw.get("Slot"),
        desired=str(raw.get("DesiredState", "")), state=str(status.get("State", "")),
        image=str((spec.get("ContainerSpec") or {}).get("Image", "")),
        force_update=int(spec.get("ForceUpdate", 0)), message=str(status.get("Message", "")),
        error=str(status.get("Err", "")), exit_code=cstatus.get("ExitCode"),
        timestamp=parse_time(status.get("Timestamp")))


def _node(raw: dict[str, Any]) -> LiveNode:
    spec = raw.get("Spec") or {}
    return LiveNode(id=raw["ID"], hostname=str((raw.get("Description") or {}).get("Hostname", "")),
                    labels=dict(spec.get("Labels") or {}), state=str((raw.get("Status") or {}).get("State", "")),
                    availability=str(spec.get("Availability", "")), role=str(spec.get("Role", "worker")))


class SwarmReader:
    # the node list is shared by every app's read, and nodes change far more slowly than a deploy is watched:
    # read at most once per this many seconds (a first deploy of N apps listed them about 4N times)
    NODES_TTL = 2.0

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api
        self._nodes: tuple[float, dict[str, LiveNode]] | None = None
        self._nodes_lock = threading.Lock()

    def _call(self, what: str, fn: Any, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            result: list[dict[str, Any]] = fn(**kwargs)
            return result
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            raise EngineError(f"Docker engine: cannot list {what}: {e}") from e

    def nodes(self) -> dict[str, LiveNode]:
        with self._nodes_lock:
            cached = self._nodes
            if cached is None or time.monotonic() - cached[0] > self.NODES_TTL:
                cached = (time.monotonic(), {n["ID"]: _node(n) for n in self._call("nodes", self.api.nodes)})
                self._nodes = cached
            return cached[1]

    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack:
        """Four calls: the app's services, their tasks, the nodes (cached), the stack's networks; one call with
        `services_only` (labels and specs: enough to see that nothing changed); no networks without
        `networks` (a convergence watch judges tasks, and reads them twice a second)."""
        services = self._call("services", self.api.services,
                              filters={"label": f"{STACK_NAMESPACE}={app}"}, status=False)
        if services_only:
            return LiveStack(app=app, services={svc.short: svc for svc in (_service(s, app) for s in services)},
                             tasks=[], nodes={})
        ids = [s["ID"] for s in services]
        tasks = self._call("tasks", self.api.tasks, filters={"service": ids}) if ids else []
        live = {svc.short: svc for svc in (_service(s, app) for s in services)}
        return LiveStack(app=app, services=live, tasks=[_task(t) for t in tasks], nodes=self.nodes(),
                         networks=self.networks(app) if networks else {})

    def networks(self, app: str) -> dict[str, str]:
        nets = self._call("networks", self.api.networks, filters={"label": f"{STACK_NAMESPACE}={app}"})
        return {n["Id"]: n["Name"] for n in nets}

    def read_all(self) -> dict[str, LiveStack]:
        """Every stack's live state from four calls, grouped by stack name."""
        services = self._call("services", self.api.services, filters={"label": STACK_NAMESPACE}, status=False)
        tasks = self._call("tasks", self.api.tasks)
        nodes = self.nodes()
        networks = self._call("networks", self.api.networks, filters={"label": STACK_NAMESPACE})
        nets = {n["Id"]: n["Name"] for n in networks}
        by_app: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in services:
            by_app[((s.get("Spec") or {}).get("Labels") or {}).get(STACK_NAMESPACE, "")].append(s)
        owner = {s["ID"]: app for app, group in by_app.items() for s in group}
        tasks_by_app: dict[str, list[LiveTask]] = defaultdict(list)
        for t in tasks:
            if t.get("ServiceID") in owner:
                tasks_by_app[owner[t["ServiceID"]]].append(_task(t))
        return {app: LiveStack(app=app, services={x.short: x for x in (_service(s, app) for s in group)},
                               tasks=tasks_by_app[app], nodes=nodes, networks=nets)
                for app, group in by_app.items()}

"""Small builders of live Swarm state for pure-logic tests (the shapes the swarm adapter returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from swarmops.domain.live import LiveNode, LiveService, LiveStack, LiveTask

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def service(short: str, spec_hash: str = "h1", commit: str = "c1", image: str = "reg/app/web:c1",
            replicas: int | None = 1, force: int = 0, update_state: str | None = None,
            update_started: datetime | None = None, sid: str | None = None) -> LiveService:
    labels = {"io.swarmops.app": "app", "io.swarmops.commit": commit, "io.swarmops.spec": spec_hash}
    return LiveService(id=sid or f"id-{short}", name=f"app_{short}", short=short, labels=labels, image=image,
                       version=10, replicas=replicas, update_state=update_state, update_started=update_started,
                       update_message="update paused due to failure", task_image=image + "@sha256:1",
                       force_update=force)


def task(svc: LiveService, state: str = "running", desired: str = "running", image: str | None = None,
         at: float = 1.0, error: str = "", exit_code: int | None = None, node: str = "n1") -> LiveTask:
    return LiveTask(id=f"t{at}{state}", service_id=svc.id, node_id=node, slot=1, desired=desired, state=state,
                    image=image or svc.task_image, force_update=svc.force_update, message=state, error=error,
                    exit_code=exit_code, timestamp=T0 + timedelta(seconds=at))


def stack(services: list[LiveService], tasks: list[LiveTask] | None = None) -> LiveStack:
    nodes = {"n1": LiveNode("n1", "vm", {"role": "app"}, "ready", "active")}
    return LiveStack(app="app", services={s.short: s for s in services}, tasks=tasks or [], nodes=nodes)

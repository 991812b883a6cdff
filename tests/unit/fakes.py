"""Small builders for pure-logic tests: live Swarm state (the shapes the swarm adapter returns) and stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from swarmops.domain.compose.model import Stack
from swarmops.domain.live import LiveNode, LiveService, LiveStack, LiveTask
from swarmops.domain.stackfile import Variables, load_stack
from swarmops.errors import StackError

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


def stack_of(text: str, filename: str = "stack.yml", variables: dict[str, str] | None = None,
             files: dict[str, bytes] | None = None, dotenv: dict[str, str] | None = None,
             allow_empty: bool = False) -> Stack:
    """A stack file's effective model, with the variables and repo files given (nothing from this process)."""
    repo = files or {}

    def read(rel: str) -> bytes:
        if rel not in repo:
            raise StackError(f"{rel}: not in the test repo")
        return repo[rel]
    declared = Variables({"SWARMOPS_REGISTRY": "reg:5000", "SWARMOPS_APP": "demo", "SWARMOPS_STACK": "demo"},
                         variables or {}, dotenv or {})
    return load_stack(text, filename, declared, read, allow_empty)

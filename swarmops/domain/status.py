"""An app's status in one word, computed from the live Swarm and the last deploy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from swarmops.domain.convergence import desired_tasks, task_problem
from swarmops.domain.live import LiveStack, LiveTask

SYNCED, OUT_OF_SYNC, PROGRESSING, DEGRADED, FAILED, SUSPENDED, MISSING, POLICY = (
    "Synced", "OutOfSync", "Progressing", "Degraded", "Failed", "Suspended", "Missing", "PolicyViolation")


TASKS_SHOWN_ENDED = 3   # per service, beside the current tasks: enough to see why, bounded at 1,000 apps


@dataclass(frozen=True)
class TaskStatus:
    id: str
    slot: int | None
    node: str
    state: str
    desired: str
    error: str       # in Docker's words
    since: str       # ISO 8601, as Docker reported the state change


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    image: str
    running: int
    desired: int | None
    nodes: list[str]
    last_error: str
    tasks: list[TaskStatus] = field(default_factory=list)


@dataclass(frozen=True)
class AppStatus:
    app: str
    status: str
    commit: str | None
    deployed_at: float | None
    last_result: str | None
    message: str
    services: list[ServiceStatus] = field(default_factory=list)
    author: str = ""    # of the running commit, from its deploy record
    title: str = ""     # the running commit's message, first line
    last_fault: str = ""            # the last fault seen, even after it cleared
    last_fault_at: float | None = None
    fault_cleared_at: float | None = None   # None while it lasts
    backup_at: float | None = None          # the last backup run's start (None: none ran, or no backup entry)
    backup_result: str | None = None        # succeeded, failed
    backup_message: str = ""                # what failed, or the snapshots it took
    backup_ok_at: float | None = None       # the last backup run that succeeded: its start
    group: str = ""                         # the app an environment belongs to (issue 27); "" for a plain app
    environment: str = ""                   # staging, production ...

    @property
    def label(self) -> str:
        """APP/ENV for an environment, else the app's name: how the CLI takes it back."""
        return f"{self.group}/{self.environment}" if self.environment else self.app

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def service_statuses(live: LiveStack) -> list[ServiceStatus]:
    out = []
    for name, svc in sorted(live.services.items()):
        tasks = live.tasks_of(svc)
        running = [t for t in tasks if t.desired == "running" and t.state == "running"]
        desired = None if svc.job else desired_tasks(live, svc)   # a job's tasks end: none is missing
        troubled = sorted((t for t in tasks if t.state not in ("running", "shutdown", "complete")
                           or t.error), key=lambda t: t.timestamp.timestamp() if t.timestamp else 0.0)
        out.append(ServiceStatus(
            name=name, image=svc.image, running=len(running), desired=desired,
            nodes=sorted(live.node_name(t.node_id) for t in running),
            last_error=task_problem(troubled[-1]) if troubled else "", tasks=_tasks(live, tasks)))
    return out


def _tasks(live: LiveStack, tasks: list[LiveTask]) -> list[TaskStatus]:
    def when(t: LiveTask) -> float:
        return t.timestamp.timestamp() if t.timestamp else 0.0

    current = [t for t in tasks if t.desired == "running"]
    ended = sorted((t for t in tasks if t.desired != "running"), key=when)[-TASKS_SHOWN_ENDED:]
    return [TaskStatus(id=t.id[:12], slot=t.slot, node=live.node_name(t.node_id), state=t.state, desired=t.desired,
                       error=task_problem(t) if t.error or t.state not in ("running", "shutdown") else "",
                       since=t.timestamp.isoformat() if t.timestamp else "")
            for t in sorted(current, key=lambda t: (t.slot or 0, when(t))) + ended[::-1]]


@dataclass(frozen=True)
class Deployed:
    """What the history says of the running commit."""
    at: float | None = None
    author: str = ""
    message: str = ""


def app_status(app: str, live: LiveStack | None, paused: bool, last_result: str | None,
               last_ended: float | None, last_error: str, head: str | None = None, drift: str = "",
               error_kind: str = "", deployed: Deployed | None = None) -> AppStatus:
    services = service_statuses(live) if live else []
    commit = live.deployed_commit() if live else None
    if paused:
        word = SUSPENDED
    elif last_result == "running":
        word = PROGRESSING
    elif last_error:
        word = POLICY if error_kind == "PolicyError" else FAILED
    elif not services:
        word = MISSING
    elif any(s.desired is not None and s.running < s.desired for s in services):
        word = DEGRADED
    elif (head and commit != head) or drift:
        word = OUT_OF_SYNC
    else:
        word = SYNCED
    deployed = deployed or Deployed(at=last_ended)
    return AppStatus(app=app, status=word, commit=commit, deployed_at=deployed.at or last_ended,
                     last_result=last_result, message=last_error or (f"drift: {drift}" if drift else ""),
                     services=services, author=deployed.author, title=deployed.message.split("\n", 1)[0])


def removed_apps(stacks: Mapping[str, LiveStack], known: set[str], deployed_here: Callable[[str], bool]) -> list[str]:
    """The stacks swarmops deployed for apps no longer in the config: a stack of its services (their labels)
    that this swarmops' own history knows. Another swarmops sharing the Swarm (another state directory, a
    staging one, a test's) has apps this config does not name: they are its own, never reported or pruned."""
    return sorted(app for app, live in stacks.items()
                  if app not in known and any(s.managed for s in live.services.values()) and deployed_here(app))

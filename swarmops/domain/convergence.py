"""Has a deploy converged? Decided from tasks, not from UpdateStatus (null on new services and
after label-only updates)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from swarmops.domain.live import LiveService, LiveStack, LiveTask
from swarmops.domain.placement import eligible

FAILED_STATES = {"failed", "rejected"}
# a task of a long-running service that ends by itself failed too (a container stopped for a failing
# healthcheck after trapping SIGTERM ends "complete" with exit code 0)
ENDED_STATES = FAILED_STATES | {"complete"}
BAD_UPDATE_STATES = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}
# a task Swarm has placed on a node and is bringing up ("pending" is not one: the scheduler found no node)
COMING_STATES = {"new", "allocated", "assigned", "accepted", "preparing", "ready", "starting"}


@dataclass(frozen=True)
class Verdict:
    state: Literal["converged", "progressing", "failed"]
    reason: str


def task_problem(task: LiveTask) -> str:
    """The task's trouble in Docker's own words."""
    text = task.error or task.message or task.state
    if task.state == "complete":
        return f"task ended by itself ({task.message or 'finished'}, exit code {task.exit_code or 0}): " \
               "the process exited or its healthcheck failed"
    if task.exit_code not in (None, 0) and "exit" not in text:
        text = f"{text} (exit code {task.exit_code})"
    return text


def desired_tasks(live: LiveStack, service: LiveService) -> int:
    """Replicas (a replicated job's completions), or for a global service (or job) the number of ready
    nodes its constraints allow."""
    if service.replicas is not None:
        return service.replicas
    return len(eligible(live.nodes.values(), live.constraints_of(service)))


def _current(service: LiveService, task: LiveTask) -> bool:
    return task.image == service.task_image and task.force_update == service.force_update


def judge_job(live: LiveStack, service: LiveService, since: datetime, failure_threshold: int) -> Verdict:
    """A job (ruling 33) has converged when its tasks at the current spec have completed, as many as it
    asks for; it failed when they fail. Its tasks never stay running."""
    tasks = [t for t in live.tasks_of(service) if _current(service, t)]
    failures = [t for t in tasks if t.state in FAILED_STATES and t.timestamp and t.timestamp >= since]
    if failures and len(failures) >= min(failure_threshold, desired_tasks(live, service)):
        last = max(failures, key=lambda t: t.timestamp or since)
        return Verdict("failed", f"{service.short}: job task failed ({task_problem(last)})")
    done, expected = sum(t.state == "complete" for t in tasks), desired_tasks(live, service)
    if done >= expected:
        return Verdict("converged", f"{service.short}: job completed ({done}/{expected})")
    return Verdict("progressing", f"{service.short}: job {done}/{expected} completed")


def judge_service(live: LiveStack, service: LiveService, since: datetime, failure_threshold: int) -> Verdict:
    if service.job:
        return judge_job(live, service, since, failure_threshold)
    tasks = live.tasks_of(service)
    started = service.update_started
    failures = [t for t in tasks if t.state in ENDED_STATES and t.timestamp and t.timestamp >= since]
    cause = f" (last task: {task_problem(max(failures, key=lambda t: t.timestamp or since))})" if failures else ""
    if service.update_state in BAD_UPDATE_STATES and started and started >= since:
        return Verdict("failed", f"{service.short}: Swarm update {service.update_state}: "
                                 f"{service.update_message or 'update failed'}{cause}")
    current_failures = [t for t in failures if _current(service, t)]
    if len(current_failures) >= failure_threshold:
        return Verdict("failed", f"{service.short}: {len(current_failures)} tasks failed{cause}")
    wanted = [t for t in tasks if t.desired == "running"]
    stale = [t for t in wanted if not _current(service, t)]
    if stale:
        return Verdict("progressing", f"{service.short}: {len(stale)} task(s) still on the previous spec")
    not_running = [t for t in wanted if t.state != "running"]
    if not_running:
        t = not_running[0]
        return Verdict("progressing", f"{service.short}: task {t.state}: {task_problem(t)}")
    expected = desired_tasks(live, service)
    if len(wanted) != expected:
        mode = "" if service.replicas is not None else " (global: one per eligible node)"
        return Verdict("progressing", f"{service.short}: {len(wanted)}/{expected} tasks scheduled{mode}")
    return Verdict("converged", f"{service.short}: {len(wanted)} running")


def judge(live: LiveStack, services: Iterable[str], since: datetime, failure_threshold: int) -> Verdict:
    """Failed if any service failed; progressing if any still moves; converged when all are done."""
    verdicts = []
    for name in services:
        service = live.services.get(name)
        if service is None:
            verdicts.append(Verdict("progressing", f"{name}: service not created yet"))
            continue
        verdicts.append(judge_service(live, service, since, failure_threshold))
    for state in ("failed", "progressing"):
        found = [v for v in verdicts if v.state == state]
        if found:
            return Verdict(found[0].state, "; ".join(v.reason for v in found))
    return Verdict("converged", "; ".join(v.reason for v in verdicts) or "no services")


def _recovering(live: LiveStack, service: LiveService, since: datetime | None) -> str | None:
    if service.job:   # a job's tasks end by design: nothing is being brought back
        return None
    tasks = live.tasks_of(service)
    if since is not None and any(t.state in ENDED_STATES and t.timestamp and t.timestamp >= since for t in tasks):
        return None   # failing, not recovering: waiting would not help, the update may be the fix
    wanted = [t for t in tasks if t.desired == "running"]
    running = sum(t.state == "running" for t in wanted)
    expected = desired_tasks(live, service)
    if running >= expected:
        return None
    coming = [t for t in wanted if t.state in COMING_STATES]
    if coming:
        t = coming[0]
        return f"{service.short}: {running}/{expected} running, a task {t.state} on {live.node_name(t.node_id)}"
    if len(wanted) < expected:   # a task ended and its replacement is not created yet
        return f"{service.short}: {running}/{expected} running, Swarm is replacing a task"
    return None   # the missing ones are pending: no node can take them, waiting would not help


def recovering(live: LiveStack, services: Iterable[str], since: datetime | None) -> str | None:
    """Why a rolling update of `services` should wait: Swarm is still bringing back a replica (say on a
    node whose engine just restarted). A stop-first update would take down a serving replica while that
    one is not up yet. None when every replica runs, or when the missing ones are not coming (pending
    on no suitable node) or keep failing (a task ended since `since`, the wait's start; None: a read made
    before any wait, where no task can have ended since)."""
    reasons = [r for name in services if (svc := live.services.get(name)) is not None
               and (r := _recovering(live, svc, since))]
    return "; ".join(reasons) or None

"""The scheduler's retry wiring, with a fake reconciler that honours the reconcile() interface."""

from __future__ import annotations

from typing import Any

from swarmops.config.models import AppConfig, Config
from swarmops.daemon.scheduler import AppScheduler
from swarmops.reconcile.events import Outcome

CONFIG = Config.model_validate({"registry": "r:5000", "apps": [{"name": "a", "repo": "file:///x"}]})


class FakeReconciler:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, str]] = []

    def reconcile(self, app: AppConfig, trigger: str = "poll", **_: Any) -> Outcome:
        self.calls.append((app.name, trigger))
        return self.outcome


def scheduler_with(outcome: Outcome) -> tuple[AppScheduler, FakeReconciler]:
    fake = FakeReconciler(outcome)
    sched = AppScheduler(CONFIG, fake)  # type: ignore[arg-type]
    sched.scheduler.start(paused=True)
    return sched, fake


def test_a_transient_failure_schedules_one_retry_job() -> None:
    sched, fake = scheduler_with(Outcome("a", "failed", None, "registry down", retry_in=5.0))
    try:
        sched.run(CONFIG.apps[0])
        sched.run(CONFIG.apps[0])
        retries = [j for j in sched.scheduler.get_jobs() if j.id == "retry:a"]
        assert len(retries) == 1 and retries[0].kwargs == {"trigger": "retry"}
        assert fake.calls == [("a", "poll"), ("a", "poll")]
    finally:
        sched.scheduler.shutdown(wait=False)


def test_success_or_a_lasting_failure_schedules_no_retry() -> None:
    for outcome in (Outcome("a", "deployed", "c", "ok"), Outcome("a", "failed", "c", "build failed")):
        sched, _ = scheduler_with(outcome)
        try:
            sched.run(CONFIG.apps[0])
            assert [j.id for j in sched.scheduler.get_jobs()] == []
        finally:
            sched.scheduler.shutdown(wait=False)


def test_every_app_gets_one_interval_job_with_jitter() -> None:
    sched, _ = scheduler_with(Outcome("a", "noop", "c", "in sync"))
    try:
        sched.add_app(CONFIG.apps[0], __import__("datetime").datetime.now().astimezone())
        [job] = sched.scheduler.get_jobs()
        assert job.id == "reconcile:a" and job.max_instances == 1 and job.trigger.jitter == 6.0
    finally:
        sched.scheduler.shutdown(wait=False)

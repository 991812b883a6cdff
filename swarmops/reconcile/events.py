"""What a reconcile reports: its typed outcome, and the events observers (metrics, the status cache,
notifications, forge statuses, the history copy) are told of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from swarmops.domain.decide import Decision
from swarmops.domain.drift import Drift
from swarmops.domain.hooks import HookRun
from swarmops.domain.live import LiveStack
from swarmops.domain.plan import Plan

Result = Literal["noop", "deployed", "healed", "drift", "skipped", "planned", "rolled_back", "failed"]
OK_RESULTS: frozenset[Result] = frozenset({"noop", "deployed", "healed", "drift", "skipped", "planned",
                                           "rolled_back"})


@dataclass(frozen=True)
class Outcome:
    app: str
    result: Result
    commit: str | None
    message: str
    plan: Plan | None = None
    retry_in: float | None = None
    drift: tuple[Drift, ...] = ()
    error_kind: str = ""          # the error's class when the result is failed: PolicyError, ConvergenceError ...
    transient: bool = False       # a fault of the infrastructure, retried with backoff
    rolled_back_to: str = ""      # the commit a failed deploy was rolled back to
    attempted: bool = False       # a deploy of the commit was started (a history entry exists for it)
    decision: Decision | None = None
    hooks: tuple[HookRun, ...] = ()   # the deploy hooks that ran, with their results
    live: LiveStack | None = field(default=None, repr=False, compare=False)   # as the deploy converged
    actor: str = ""               # who asked for it (an API token, a signed-in user, the CLI's user)

    @property
    def ok(self) -> bool:
        return self.result in OK_RESULTS


class Observer:
    """What watches reconciles; every method is a no-op here."""

    def on_deploy(self, app: str, commit: str, trigger: str) -> None: ...

    def on_phase(self, app: str, phase: Literal["build", "convergence"], seconds: float) -> None: ...

    def on_git(self, app: str, ok: bool) -> None: ...

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None: ...

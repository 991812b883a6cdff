"""One app's reconcile: gather the facts, decide (pure), carry the decision out, report the outcome.
The per-app boundary: whatever happens inside is recorded and returned, never raised."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from swarmops.config.models import AppConfig, Config
from swarmops.domain.decide import (
    Decision,
    Deploy,
    Facts,
    InSync,
    Need,
    Refuse,
    Resolve,
    Skip,
    decide,
    decide_rollback,
    describe,
    render_candidate,
)
from swarmops.domain.live import LiveStack
from swarmops.domain.plan import Plan, make_plan
from swarmops.domain.render import Rendered
from swarmops.domain.retry import Backoff
from swarmops.errors import BusyError, SourceError, SwarmopsError
from swarmops.reconcile.events import Observer, Outcome
from swarmops.reconcile.execute import Executor
from swarmops.reconcile.gather import Gatherer
from swarmops.reconcile.ports import (
    Backups,
    Builder,
    Clock,
    Deployer,
    HistoryCopy,
    Jobs,
    Ledger,
    NoBackups,
    NoHistoryCopy,
    NoJobs,
    Registry,
    Secrets,
    Source,
    Store,
    SwarmReader,
    VolumeStore,
)
from swarmops.reconcile.rollout import Rollout

log = logging.getLogger("swarmops.reconcile")
T = TypeVar("T")
ROUNDS = 6   # facts asked for at most: live, candidate, rollback, after a resolution again


@dataclass
class Adapters:
    """The edges one reconciler talks to (wired in runtime.py, or fakes in the unit tests)."""

    store: Store
    reader: SwarmReader
    deployer: Deployer
    registry: Registry
    builder: Builder
    secrets: Secrets
    ledger: Ledger
    sources: Callable[[AppConfig], Source]
    history: HistoryCopy = NoHistoryCopy()   # noqa: RUF009 (a stateless default)
    jobs: Jobs = NoJobs()                    # noqa: RUF009 (a stateless default)
    backups: Backups = NoBackups()           # noqa: RUF009 (a stateless default)
    volumes: VolumeStore | None = None       # the S3 store of volume archives, when the config names one


@dataclass(frozen=True)
class Preview:
    """What git renders now for an app, beside what runs (swarmops diff)."""

    head: str
    live: LiveStack
    rendered: Rendered
    plan: Plan


class Reconciler:
    def __init__(self, config: Config, adapters: Adapters, cancel: threading.Event | None = None,
                 progress: Callable[[str], None] | None = None, clock: Clock | None = None,
                 snapshot: Callable[[str], LiveStack | None] = lambda _app: None) -> None:
        self.config = config
        self.store = adapters.store
        self.sources = adapters.sources
        self.cancel = cancel or threading.Event()
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.observers: list[Observer] = []
        self.gather = Gatherer(config, adapters.store, adapters.reader, adapters.registry, adapters.ledger,
                               adapters.sources, adapters.history, adapters.deployer.schema_versions, snapshot)
        rollout = Rollout(config, adapters.store, adapters.reader, adapters.deployer, self.cancel, self.progress,
                          clock)
        self.execute = Executor(adapters.store, adapters.reader, rollout, adapters.builder, adapters.secrets,
                                adapters.ledger, adapters.sources, adapters.history,
                                threading.Semaphore(config.build.concurrency), self.progress, self._emit,
                                adapters.jobs, adapters.backups)
        self.reader = adapters.reader
        self.attempts: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def when_idle(self, app: str, work: Callable[[], T]) -> T:
        """Run `work` under the app's lock if no reconcile of it runs, else raise BusyError (never wait)."""
        lock = self._lock(app)
        if not lock.acquire(blocking=False):
            raise BusyError(f"a reconcile of {app} is running; try again when it ends", app=app)
        try:
            return work()
        finally:
            lock.release()

    def busy(self) -> bool:
        """True while any app's reconcile runs."""
        with self._locks_guard:
            return any(lock.locked() for lock in self._locks.values())

    def reconcile(self, app: AppConfig, trigger: str = "poll", dry_run: bool = False,
                  force: bool = False, on_start: Callable[[], None] | None = None, actor: str = "") -> Outcome:
        """`force`: `sync APP`, make the cluster match git now (deploy, retry a failed commit, heal drift).
        `on_start` runs once this app's lock is held (webhook coalescing uses it). `actor`: who asked, recorded
        with the deploy, in the log line and on the outcome."""
        return self._guarded(app, trigger, lambda: self._reconcile(app, trigger, dry_run, force, actor), on_start,
                             record=not dry_run, actor=actor)

    def roll_back_to(self, app: AppConfig, commit: str | None, across_migrations: bool = False,
                     actor: str = "") -> Outcome:
        """Deploy an earlier good commit's rendered stack and suspend auto-sync until resume."""
        return self._guarded(app, "rollback", lambda: self._manual_rollback(app, commit, across_migrations, actor),
                             actor=actor)

    def preview(self, app: AppConfig) -> Preview:
        """The branch head rendered against what runs, for a diff; nothing is written."""
        head = self.sources(app).head()
        live = self.reader.read_app(app.name)
        c = self.gather.candidate(app, head, live)
        rendered, builds = render_candidate(self.config, app, c)
        return Preview(head, live, rendered, make_plan(app.name, head, rendered, live, builds))

    def _emit(self, event: str, *args: object) -> None:
        for o in self.observers:
            try:
                getattr(o, event)(*args)
            except Exception:   # an observer's bug never fails a reconcile
                log.exception("observer %s failed on %s", type(o).__name__, event)

    def _guarded(self, app: AppConfig, trigger: str, work: Callable[[], Outcome],
                 on_start: Callable[[], None] | None = None, record: bool = True, actor: str = "") -> Outcome:
        """`record`: note a failure in the store (a dry run writes nothing)."""
        with self._lock(app.name):
            started = time.monotonic()
            if on_start:
                on_start()
            try:
                outcome = work()
            except SwarmopsError as e:
                outcome = Outcome(app.name, "failed", None, str(e), error_kind=e.kind, transient=e.transient)
                if record:
                    self._note_error(app.name, str(e), e.kind)
            except Exception as e:   # a bug must not stop the daemon or the other apps; it is recorded too
                log.exception("reconcile of %s crashed", app.name)
                outcome = Outcome(app.name, "failed", None, f"internal error: {type(e).__name__}: {e}",
                                  error_kind="InternalError")
                if record:
                    self._note_error(app.name, outcome.message, "InternalError")
            if outcome.result == "failed":
                outcome = replace(outcome, retry_in=self._retry(app, outcome))
            else:
                self.attempts.pop(app.name, None)
            if actor:
                outcome = replace(outcome, actor=actor)
            self._emit("on_outcome", outcome, trigger, time.monotonic() - started)
        # a no-change check is the common case (1,000 apps: 1,000 a minute): debug, not the journal's noise
        log.log(logging.DEBUG if outcome.result == "noop" else logging.INFO, "reconcile", extra={"fields": {
            "app": app.name, "trigger": trigger, "result": outcome.result, "commit": outcome.commit,
            "duration_s": round(time.monotonic() - started, 3), "message": outcome.message,
            **({"error_kind": outcome.error_kind} if outcome.error_kind else {}),
            **({"actor": actor} if actor else {})}})
        return outcome

    def _retry(self, app: AppConfig, outcome: Outcome) -> float | None:
        """Seconds until the next try of a transient fault; None when it is not one or tries are used up."""
        if not outcome.transient:
            return None
        settings = self.config.retry_for(app)
        self.attempts[app.name] = self.attempts.get(app.name, 0) + 1
        return Backoff(settings.limit, settings.backoff, settings.max_backoff).delay(self.attempts[app.name])

    def _note_error(self, app: str, message: str, kind: str) -> None:
        try:
            self.store.set_app(app, last_error=message, last_error_kind=kind, last_error_at=time.time())
        except SwarmopsError as e:
            log.error("cannot record the error of %s: %s", app, e)

    def _head(self, app: AppConfig) -> str:
        try:
            head = self.sources(app).head()
        except SourceError:
            self._emit("on_git", app.name, False)
            raise
        self._emit("on_git", app.name, True)
        return head

    def _reconcile(self, app: AppConfig, trigger: str, dry_run: bool, force: bool, actor: str = "") -> Outcome:
        state = self.store.app_state(app.name)   # read once: the common check is 1,000 apps a minute
        if trigger in ("poll", "retry") and state.paused:   # no git call for a paused app
            return self.execute.run(app, Skip("auto-sync is suspended; `swarmops resume` to sync again"), {})
        head = self._head(app)
        if not dry_run and state.last_head != head:   # the common check finds the same head: no write
            self.store.set_app(app.name, last_head=head)
        facts = self.gather.facts(app, head, trigger, force, state, read_only=dry_run)
        notes: list[str] = []
        for _ in range(ROUNDS):
            d = decide(facts)
            if isinstance(d, Need):
                facts = self._satisfy(facts, d, dry_run)
            elif isinstance(d, Resolve) and dry_run:   # a dry run writes, resolves and deploys nothing
                notes.append(f"would resolve interrupted deploy {d.pending.deploy_id} first; ")
                facts = replace(facts, stored=replace(facts.stored, pending=None))
            elif isinstance(d, Resolve):   # resolved before anything else, then decided again
                self.execute.resolve(app, d)
                facts = self.gather.facts(app, head, trigger, force, self.store.app_state(app.name))
            else:
                break
        else:
            raise SwarmopsError(f"{app.name}: the reconcile did not reach a decision in {ROUNDS} rounds")
        if dry_run:
            return self._planned(app, d, "".join(notes))
        if isinstance(d, Deploy):
            for note in d.work.notes:
                self.progress(f"{app.name}: {note}")
        values = dict(facts.candidate.secret_values) if facts.candidate else {}
        return self.execute.run(app, d, values, actor)

    def _satisfy(self, facts: Facts, need: Need, dry_run: bool) -> Facts:
        try:
            return self.gather.satisfy(facts, need, read_only=dry_run)
        except SwarmopsError as e:   # a commit that cannot be read or rendered: not read again on every poll
            if need.what == "candidate" and not e.transient and not dry_run:
                self.store.set_app(facts.app.name, failed_commit=need.commit or facts.head)
            raise

    def _planned(self, app: AppConfig, d: Decision, notes: str) -> Outcome:
        """A dry run's outcome: the decision, printed; a refusal or a skip keeps its own result."""
        if isinstance(d, Skip):
            return Outcome(app.name, "skipped", d.commit, notes + d.reason, decision=d)
        if isinstance(d, Refuse):
            return Outcome(app.name, "failed", d.commit, notes + d.message, error_kind=d.error_kind, decision=d)
        plan = d.work.plan if isinstance(d, Deploy) else d.plan if isinstance(d, InSync) else None
        drift = d.drift if isinstance(d, InSync) else d.heal if isinstance(d, Deploy) else ()
        commit = d.work.commit if isinstance(d, Deploy) else d.commit if isinstance(d, InSync) else None
        return Outcome(app.name, "planned", commit, notes + describe(d), plan, drift=drift, decision=d)

    def _manual_rollback(self, app: AppConfig, commit: str | None, across_migrations: bool,
                         actor: str = "") -> Outcome:
        f = self.gather.rollback_facts(app)
        d = decide_rollback(f.good, f.authors, f.live, commit, f.migrations, across_migrations)
        if isinstance(d, str):
            raise SwarmopsError(d, app=app.name)
        return self.execute.run(app, d, {}, actor)

"""One app's reconcile: detect -> fetch -> render -> plan -> build -> deploy -> watch -> record.
Decisions come from domain functions; this module wires the adapters around them."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from swarmops.config.models import AppConfig, Config
from swarmops.domain.drift import Drift, applied_record, find_drift
from swarmops.domain.live import LiveStack
from swarmops.domain.plan import Plan
from swarmops.domain.render import (
    FINGERPRINT_LABEL,
)
from swarmops.domain.retry import Backoff
from swarmops.errors import BusyError, SourceError, SwarmopsError
from swarmops.images.builder import ImageBuilder
from swarmops.images.registry import FINGERPRINT_TAG, SOURCE_TAG_LABEL, Registry
from swarmops.prepare import FILE_LIMIT, Prepared, Preparer
from swarmops.rollout import Interrupted, Rollout, deploy_dir, write_deploy_dir
from swarmops.source.git import GitSource
from swarmops.state import FAILED, INTERRUPTED, SUCCEEDED, StateStore
from swarmops.swarm.deploy import StackDeployer
from swarmops.swarm.live import SwarmReader
from swarmops.swarm.secrets import SwarmSecrets

log = logging.getLogger("swarmops.reconcile")
T = TypeVar("T")
OK_RESULTS = ("noop", "deployed", "healed", "drift", "skipped", "planned", "rolled_back")


@dataclass(frozen=True)
class Outcome:
    app: str
    result: str            # one of OK_RESULTS, or failed
    commit: str | None
    message: str
    plan: Plan | None = None
    retry_in: float | None = None
    drift: tuple[Drift, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.result in OK_RESULTS


class Observer:
    """Hooks for what watches reconciles (metrics, the status cache, notifications); all no-ops here."""

    def on_start(self, app: str, trigger: str) -> None: ...

    def on_deploy(self, app: str, commit: str, trigger: str) -> None: ...

    def on_phase(self, app: str, phase: str, seconds: float) -> None: ...

    def on_git(self, app: str, ok: bool) -> None: ...

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None: ...


@dataclass
class Adapters:
    store: StateStore
    reader: SwarmReader
    deployer: StackDeployer
    registry: Registry
    builder: ImageBuilder
    secrets: SwarmSecrets


class Reconciler:
    def __init__(self, config: Config, adapters: Adapters, cancel: threading.Event | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.a = adapters
        self.cancel = cancel or threading.Event()
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.rollout = Rollout(config, adapters.store, adapters.reader, adapters.deployer, self.cancel,
                               self.progress)
        self.build_slots = threading.Semaphore(config.build.concurrency)
        self.preparer = Preparer(config, adapters.reader, adapters.registry,
                                 threading.Semaphore(config.git.concurrency), self.progress,
                                 adapters.deployer.schema_versions)
        self.attempts: dict[str, int] = {}
        self.observers: list[Observer] = []
        self._locks: dict[str, threading.Lock] = {}
        # a recent read of an app's live stack shared by every check (the daemon's status cache), or None
        self.snapshot: Callable[[str], LiveStack | None] = lambda _app: None
        self._locks_guard = threading.Lock()

    def source(self, app: AppConfig) -> GitSource:
        return self.preparer.source(app)

    def prepare(self, app: AppConfig, commit: str, live: LiveStack) -> Prepared:
        return self.preparer.prepare(app, commit, live)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def when_idle(self, app: str, work: Callable[[], T]) -> T:
        """Run `work` under the app's lock if no reconcile of it runs, else raise BusyError (never wait)."""
        lock = self._lock(app)
        if not lock.acquire(blocking=False):
            raise BusyError(f"a reconcile of {app} is running; try again when it ends")
        try:
            return work()
        finally:
            lock.release()

    def busy(self) -> bool:
        """True while any app's reconcile runs."""
        with self._locks_guard:
            return any(lock.locked() for lock in self._locks.values())

    def reconcile(self, app: AppConfig, trigger: str = "poll", dry_run: bool = False,
                  force: bool = False, on_start: Callable[[], None] | None = None) -> Outcome:
        """The per-app boundary: whatever happens, it is recorded and returned, never raised.
        `on_start` runs once this app's lock is held (webhook coalescing uses it)."""
        return self._guarded(app, trigger, lambda: self._reconcile(app, trigger, dry_run, force), on_start)

    def _emit(self, event: str, *args: object) -> None:
        for o in self.observers:
            try:
                getattr(o, event)(*args)
            except Exception:   # an observer's bug never fails a reconcile
                log.exception("observer %s failed on %s", type(o).__name__, event)

    def roll_back_to(self, app: AppConfig, commit: str | None) -> Outcome:
        """Deploy an earlier good commit's rendered stack and suspend auto-sync until resume."""
        return self._guarded(app, "rollback", lambda: self._manual_rollback(app, commit))

    def _guarded(self, app: AppConfig, trigger: str, work: Callable[[], Outcome],
                 on_start: Callable[[], None] | None = None) -> Outcome:
        with self._lock(app.name):
            started = time.monotonic()
            if on_start:
                on_start()
            self._emit("on_start", app.name, trigger)
            try:
                outcome = work()
            except SwarmopsError as e:
                outcome = Outcome(app.name, "failed", None, str(e), retry_in=self._retry(app.name, e))
                self._note_error(app.name, e)
            except Exception as e:   # a bug must not stop the daemon or the other apps
                log.exception("reconcile of %s crashed", app.name)
                outcome = Outcome(app.name, "failed", None, f"internal error: {type(e).__name__}: {e}")
            if outcome.result != "failed":
                self.attempts.pop(app.name, None)
            self._emit("on_outcome", outcome, trigger, time.monotonic() - started)
        # a no-change check is the common case (1,000 apps: 1,000 a minute): debug, not the journal's noise
        log.log(logging.DEBUG if outcome.result == "noop" else logging.INFO, "reconcile", extra={"fields": {
            "app": app.name, "trigger": trigger, "result": outcome.result, "commit": outcome.commit,
            "duration_s": round(time.monotonic() - started, 3), "message": outcome.message}})
        return outcome

    def _retry(self, app: str, error: SwarmopsError) -> float | None:
        """Seconds until the next try of a transient fault; None when it is not one or tries are used up."""
        entry = self.config.app(app)
        if not error.transient or entry is None:
            return None
        settings = self.config.retry_for(entry)
        self.attempts[app] = self.attempts.get(app, 0) + 1
        return Backoff(settings.limit, settings.backoff, settings.max_backoff).delay(self.attempts[app])

    def _note_error(self, app: str, error: SwarmopsError) -> None:
        try:
            self.a.store.set_app(app, last_error=str(error), last_error_kind=type(error).__name__,
                                 last_error_at=time.time())
        except SwarmopsError as e:
            log.error("cannot record the error of %s: %s", app, e)

    def _reconcile(self, app: AppConfig, trigger: str, dry_run: bool, force: bool) -> Outcome:
        store = self.a.store
        state = store.app_state(app.name)
        if state.paused and trigger in ("poll", "retry"):
            return Outcome(app.name, "skipped", None, "auto-sync is suspended; `swarmops resume` to sync again")
        try:
            head = self.source(app).head()
        except SourceError:
            self._emit("on_git", app.name, False)
            raise
        self._emit("on_git", app.name, True)
        if state.last_head != head and not dry_run:   # the common check finds the same head: no write
            store.set_app(app.name, last_head=head)
        pending = ""
        orphans = store.orphaned(app.name)
        if (orphans or state.pending_check) and dry_run:   # a dry run writes, resolves and deploys nothing
            pending = f"would resolve interrupted deploy {(orphans or [state.pending_check])[0]} first; "
        elif orphans:   # left running by a process that is gone: resolved before anything else
            for deploy_id in orphans:
                store.interrupt(deploy_id)
            store.set_app(app.name, pending_check=orphans[-1])
            state = store.app_state(app.name)
        if state.pending_check and not dry_run:
            self._resolve_interrupted(app, state.pending_check, self.a.reader.read_app(app.name))
            state = store.app_state(app.name)
        # the no-change check needs only the services' labels and specs: the daemon's shared snapshot of
        # every app (a fixed number of Engine calls per refresh), else one Engine call
        live = (None if force else self.snapshot(app.name)) or self.a.reader.read_app(app.name, services_only=True)
        heal = "manual" if force else "self-heal"   # `sync APP` means: make the cluster match git now
        if _unchanged(live, head):
            return self._no_change(app, head, live, dry_run, heal, pending)
        live = self.a.reader.read_app(app.name)
        if _unchanged(live, head):   # the snapshot was older than the last deploy
            return self._no_change(app, head, live, dry_run, heal, pending)
        if not force and trigger == "poll" and state.failed_commit == head:
            return Outcome(app.name, "skipped", head, f"commit {head[:12]} failed before; push a new commit or "
                                                      f"run `swarmops sync {app.name}`")
        try:
            prep = self.prepare(app, head, live)
        except SwarmopsError as e:   # a bad stack or a policy violation: not parsed again on every poll
            if not e.transient and not dry_run:
                store.set_app(app.name, failed_commit=head)
            raise
        if dry_run:
            return Outcome(app.name, "planned", head, pending + prep.plan.summary(), prep.plan)
        if not prep.plan.deploy:
            store.set_app(app.name, last_error="", drift="")
            return Outcome(app.name, "noop", head, prep.plan.summary(), prep.plan)
        return self.execute(app, prep, live, trigger, prep.plan.restarts)

    def _no_change(self, app: AppConfig, head: str, live: LiveStack, dry_run: bool, heal: str = "self-heal",
                   pending: str = "") -> Outcome:
        applied = self.a.store.load_applied(app.name)
        drift = find_drift(live, applied)
        if drift:   # rare: a fresh full read, so that drift names networks and heals with tasks in view
            live = self.a.reader.read_app(app.name)
            drift = find_drift(live, applied)
        outcome = self._check_drift(app, head, live, drift, dry_run, heal)
        return replace(outcome, message=pending + outcome.message) if pending else outcome

    def _resolve_interrupted(self, app: AppConfig, deploy_id: int, live: LiveStack) -> None:
        """A deploy the previous process left unfinished: finish watching it, or roll it back."""
        store = self.a.store
        deploy = store.get_deploy(deploy_id)
        store.set_app(app.name, pending_check=0)
        if deploy is None:
            return
        if live.deployed_commit() != deploy.commit_sha:
            store.annotate(deploy_id, f"{deploy.error}; the stack had not been deployed, nothing changed")
            return
        since = datetime.fromtimestamp(deploy.started, UTC)
        self.progress(f"{app.name}: resuming the watch of interrupted deploy {deploy_id}")
        verdict = self.rollout.watch(app, tuple(live.services), since)
        if verdict.state == "converged":
            store.save_applied(app.name, applied_record(self.a.reader.read_app(app.name)))
            store.annotate(deploy_id, f"{deploy.error}; after the restart the services had converged")
            return
        commit, note = self.rollout.roll_back(app, deploy.commit_sha, None, tuple(live.services))
        store.annotate(deploy_id, f"{deploy.error}; after the restart: {verdict.reason}{note}", commit)
        store.set_app(app.name, failed_commit=deploy.commit_sha)

    def _check_drift(self, app: AppConfig, head: str, live: LiveStack, drift: list[Drift],
                     dry_run: bool, heal: str = "self-heal") -> Outcome:
        text = "; ".join(str(d) for d in drift)
        if not drift or dry_run:
            if not dry_run:
                self.a.store.set_app(app.name, last_error="", drift="")
            return Outcome(app.name, "planned" if dry_run else "noop", head, text or "in sync", drift=tuple(drift))
        self.a.store.set_app(app.name, drift=text)
        log.warning("drift in %s: %s", app.name, text)
        if not app.self_heal and heal == "self-heal":   # an operator's `sync` heals whatever self_heal says
            return Outcome(app.name, "drift", head, f"drift (self_heal is off): {text}", drift=tuple(drift))
        prep = self.prepare(app, head, live)
        outcome = self.execute(app, prep, live, heal, tuple(d.service for d in drift if d.kind != "unmanaged"))
        if outcome.result == "deployed":
            self.a.store.set_app(app.name, drift="")
            return Outcome(app.name, "healed", head, f"healed drift: {text}", drift=tuple(drift))
        return outcome

    def execute(self, app: AppConfig, prep: Prepared, live: LiveStack, trigger: str,
                watch: tuple[str, ...]) -> Outcome:
        store = self.a.store
        deploy_id = store.start_deploy(app.name, prep.commit, prep.info.author, prep.info.title, trigger,
                                       str(prep.deploy_dir))
        builds = ",".join(f"{b.service}:{b.fingerprint[:12]}" + (f" (the registry held {b.replaced} instead of "
                                                                  "the image swarmops pushed; rebuilt)" if b.replaced
                                                                  else "") for b in prep.plan.builds)
        self._emit("on_deploy", app.name, prep.commit, trigger)
        deployed = False
        try:
            t0 = time.monotonic()
            self._build(app, prep)
            if prep.plan.builds:
                self._emit("on_phase", app.name, "build", time.monotonic() - t0)
            for name, value in prep.secret_values.items():
                self.a.secrets.ensure(app.name, name, value)
            src = self.source(app)
            write_deploy_dir(prep.deploy_dir, prep.rendered.text,
                             ((rel, src.read(prep.commit, rel)) for rel in prep.rendered.files))
            self.rollout.await_replicas(app, watch)
            self.progress(f"{app.name}: docker stack deploy ({prep.plan.summary()})")
            deployed = True
            t0 = time.monotonic()
            self.rollout.apply(app, prep.deploy_dir / "stack.yml", watch)
            self._emit("on_phase", app.name, "convergence", time.monotonic() - t0)
        except Interrupted as e:
            store.finish_deploy(deploy_id, INTERRUPTED, str(e), builds=builds)
            store.set_app(app.name, pending_check=deploy_id)   # the next start finishes the watch
            return Outcome(app.name, "failed", prep.commit, str(e), prep.plan)
        except SwarmopsError as e:
            rollback_to, note = ("", "")
            if deployed:
                self._render_again(app, live.deployed_commit(), live)
                rollback_to, note = self.rollout.roll_back(app, prep.commit, live.deployed_commit(),
                                                           tuple(live.services))
            error = f"{e}{note}"
            store.finish_deploy(deploy_id, FAILED, error, rollback_to=rollback_to, builds=builds)
            if not e.transient:
                store.set_app(app.name, failed_commit=prep.commit)
            store.set_app(app.name, last_error=error, last_error_kind=type(e).__name__, last_error_at=time.time())
            return Outcome(app.name, "failed", prep.commit, error, prep.plan, retry_in=self._retry(app.name, e))
        store.finish_deploy(deploy_id, SUCCEEDED, builds=builds, restarted=",".join(prep.plan.restarts))
        store.set_app(app.name, failed_commit="", last_error="")
        self._prune_secrets(app)
        return Outcome(app.name, "deployed", prep.commit, prep.plan.summary(), prep.plan)

    def _render_again(self, app: AppConfig, commit: str | None, live: LiveStack) -> None:
        """The rendered stack of what ran before, rendered again from git when this manager's disk does not
        have it (swarmops moved here from a lost manager, or state_dir was lost), so that a rollback can
        still redeploy it. Its images are already in the registry."""
        if not commit or (deploy_dir(self.config, app.name, commit) / "stack.yml").is_file():
            return
        try:
            prep = self.prepare(app, commit, live)
            src = self.source(app)
            write_deploy_dir(prep.deploy_dir, prep.rendered.text,
                             ((rel, src.read(commit, rel)) for rel in prep.rendered.files))
        except SwarmopsError as e:
            log.warning("cannot render %s of %s again for the rollback: %s", commit[:12], app.name, e)

    def _prune_secrets(self, app: AppConfig) -> None:
        try:
            removed = self.a.secrets.prune(app.name)
        except SwarmopsError as e:
            log.warning("cannot prune old secrets of %s: %s", app.name, e)
            return
        if removed:
            self.progress(f"{app.name}: removed unused secret versions {', '.join(removed)}")

    def _build(self, app: AppConfig, prep: Prepared) -> None:
        if not prep.plan.builds:
            return
        src = self.source(app)
        with self.build_slots, tempfile.TemporaryDirectory(prefix=f"swarmops-{app.name}-") as tmp:
            for step in prep.plan.builds:
                spec = prep.specs[step.service]
                self.progress(f"{app.name}: building {step.service} -> {step.image}")
                context = src.export(prep.commit, spec.context, Path(tmp) / step.service)
                dockerfile = Path(tmp) / f"{step.service}.Dockerfile"
                dockerfile.write_bytes(src.read(prep.commit, spec.dockerfile, FILE_LIMIT))
                tag = step.image.rpartition(":")[2]
                self.a.builder.build(context, dockerfile, step.image, dict(spec.args), spec.target,
                                     {SOURCE_TAG_LABEL: tag, FINGERPRINT_LABEL: step.fingerprint})
                self.progress(f"{app.name}: pushing {step.image}")
                digest = self.a.builder.push(step.image)
                fp_ref = f"{step.image.rpartition(':')[0]}:{FINGERPRINT_TAG.format(step.fingerprint)}"
                self.a.builder.tag(step.image, fp_ref)
                self.a.builder.push(fp_ref)
                if digest:   # what a later commit with the same build inputs may reuse, and nothing else
                    repo = step.image.rpartition(":")[0].split("/", 1)[1]
                    self.preparer.ledger.record(repo, step.fingerprint, digest)

    def _manual_rollback(self, app: AppConfig, commit: str | None) -> Outcome:
        store = self.a.store
        store.refresh_app(app.name)   # the targets another manager deployed count too
        live = self.a.reader.read_app(app.name)
        current = live.deployed_commit()
        good = [d for d in store.history(app.name, 500) if d.result == SUCCEEDED]
        if commit:
            target = next((d for d in good if d.commit_sha.startswith(commit)), None)
            if target is None:
                raise SwarmopsError(f"no successful deploy of commit {commit} in the history of {app.name}; "
                                    f"`swarmops history {app.name}` lists the rollback targets")
        else:
            target = next((d for d in good if d.commit_sha != current), None)
            if target is None:
                raise SwarmopsError(f"{app.name} has no earlier good deploy to roll back to")
        stack_file = Path(target.render_dir) / "stack.yml"
        if not stack_file.is_file():
            raise SwarmopsError(f"the rendered stack of {target.commit_sha[:12]} is gone from {stack_file.parent}")
        store.set_app(app.name, paused=True)
        deploy_id = store.start_deploy(app.name, target.commit_sha, target.author, target.message, "rollback",
                                       target.render_dir)
        self.progress(f"{app.name}: rolling back to {target.commit_sha[:12]} (auto-sync suspended)")
        try:
            self.rollout.apply(app, stack_file, tuple(live.services))
        except SwarmopsError as e:
            store.finish_deploy(deploy_id, FAILED, str(e))
            return Outcome(app.name, "failed", target.commit_sha, str(e))
        store.finish_deploy(deploy_id, SUCCEEDED, rollback_to=target.commit_sha)
        store.set_app(app.name, last_error="", drift="")
        return Outcome(app.name, "rolled_back", target.commit_sha,
                       f"running {target.commit_sha[:12]}; auto-sync suspended until `swarmops resume {app.name}`")


def _unchanged(live: LiveStack, head: str) -> bool:
    """What runs is `head`, deployed by swarmops (every service carries its spec hash)."""
    return live.deployed_commit() == head and all(s.spec_hash for s in live.services.values())

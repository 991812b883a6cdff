"""Carry out a decision: build, push, create secrets, write the deploy directory, deploy, watch, roll back
to the decision's target on failure, and record it. No choice is made here beyond failure handling."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from swarmops.adapters.images.registry import SOURCE_TAG_LABEL
from swarmops.adapters.store import FAILED, INTERRUPTED, SUCCEEDED
from swarmops.config.models import AppConfig
from swarmops.domain.decide import Decision, Deploy, DeployWork, InSync, Refuse, Resolve, RollBack, Skip
from swarmops.domain.drift import applied_record
from swarmops.domain.hooks import HookRun, RenderedHook, runs_to_json
from swarmops.domain.migrations import (
    BeforeRollback,
    Migrated,
    Snapshot,
    before_rollback,
    database_of,
    snapshot_id,
    snapshots_to_json,
)
from swarmops.domain.render import FINGERPRINT_LABEL
from swarmops.errors import BackupError, HookError, Interrupted, SwarmopsError
from swarmops.reconcile.events import Outcome
from swarmops.reconcile.gather import FILE_LIMIT
from swarmops.reconcile.ports import Backups, Builder, HistoryCopy, Jobs, Ledger, Secrets, Source, Store, SwarmReader
from swarmops.reconcile.rollout import Rollout, write_deploy_dir
from swarmops.util.redact import redact

log = logging.getLogger("swarmops.reconcile")
Emit = Callable[..., None]


class Executor:
    def __init__(self, store: Store, reader: SwarmReader, rollout: Rollout, builder: Builder, secrets: Secrets,
                 ledger: Ledger, sources: Callable[[AppConfig], Source], history: HistoryCopy,
                 build_slots: threading.Semaphore, progress: Callable[[str], None], emit: Emit,
                 jobs: Jobs, backups: Backups) -> None:
        self.store = store
        self.jobs = jobs
        self.backups = backups
        self.reader = reader
        self.rollout = rollout
        self.builder = builder
        self.secrets = secrets
        self.ledger = ledger
        self.sources = sources
        self.history = history
        self.build_slots = build_slots
        self.progress = progress
        self.emit = emit

    def run(self, app: AppConfig, d: Decision, values: dict[str, bytes], actor: str = "") -> Outcome:
        """`values`: the plaintext of the decision's secrets, kept in memory only; `actor`: who asked, kept
        with the deploy in the history."""
        match d:
            case Skip():
                return Outcome(app.name, "skipped", d.commit, d.reason, decision=d)
            case InSync():
                return self._in_sync(app, d)
            case Refuse():
                self.store.set_app(app.name, failed_commit=d.commit, last_error=d.message,
                                   last_error_kind=d.error_kind, last_error_at=time.time())
                return Outcome(app.name, "failed", d.commit, d.message, error_kind=d.error_kind, decision=d)
            case Deploy():
                return self._deploy(app, d, values, actor)
            case RollBack():
                return self._roll_back(app, d, actor)
            case Resolve():
                self.resolve(app, d)
                return Outcome(app.name, "noop", d.pending.commit, "resolved an interrupted deploy", decision=d)
        raise AssertionError(d)

    def _in_sync(self, app: AppConfig, d: InSync) -> Outcome:
        if d.drift:
            text = "; ".join(str(x) for x in d.drift)
            self.store.set_app(app.name, drift=text)
            log.warning("drift in %s: %s", app.name, text)
            return Outcome(app.name, "drift", d.commit, d.message, drift=d.drift, decision=d)
        # a commit that failed and was not rolled back (a migration stood in the way) keeps its error
        self.store.set_app(app.name, drift="", **({} if d.failed else {"last_error": ""}))
        return Outcome(app.name, "noop", d.commit, d.message, d.plan, decision=d)

    def resolve(self, app: AppConfig, d: Resolve) -> None:
        """A deploy the previous process left unfinished: finish watching it, or roll it back."""
        p = d.pending
        for deploy_id in p.orphaned:
            self.store.interrupt(deploy_id)
        if p.orphaned:   # a stop during the watch below leaves it to the next start
            self.store.set_app(app.name, pending_check=p.deploy_id)
        if not p.commit:   # its entry is gone
            self.store.set_app(app.name, pending_check=0)
            return
        if not d.deployed:
            self.store.annotate(p.deploy_id, f"{p.error}; the stack had not been deployed, nothing changed")
        else:
            self.progress(f"{app.name}: resuming the watch of interrupted deploy {p.deploy_id}")
            verdict = self.rollout.watch(app, d.watch, datetime.fromtimestamp(p.started, UTC))
            if verdict.state == "converged":
                self.store.save_applied(app.name, applied_record(self.reader.read_app(app.name)))
                self.store.annotate(p.deploy_id, f"{p.error}; after the restart the services had converged")
            elif d.rollback is not None and (stop := before_rollback(d.guard, []).stop):
                self.store.annotate(p.deploy_id, f"{stop}; {p.error}; after the restart: {verdict.reason}")
                self.store.set_app(app.name, failed_commit=p.commit, last_error=stop,
                                   last_error_kind="ConvergenceError", last_error_at=time.time())
            else:
                commit, note = self.rollout.roll_back(app, d.rollback, d.watch)
                self.store.annotate(p.deploy_id, f"{p.error}; after the restart: {verdict.reason}{note}", commit)
                self.store.set_app(app.name, failed_commit=p.commit)
        self.store.set_app(app.name, pending_check=0)   # only now: resolved
        self.history.save(app.name)

    def _deploy(self, app: AppConfig, d: Deploy, values: dict[str, bytes], actor: str = "") -> Outcome:
        w = d.work
        if d.heal:
            text = "; ".join(str(x) for x in d.heal)
            self.store.set_app(app.name, drift=text)
            log.warning("drift in %s: %s", app.name, text)
        deploy_id = self.store.start_deploy(app.name, w.commit, w.meta.author, w.meta.title, w.trigger, w.deploy_dir,
                                            actor)
        builds = ",".join(f"{b.service}:{b.fingerprint[:12]}" + (f" (the registry held {b.replaced} instead of "
                                                                  "the image swarmops pushed; rebuilt)" if b.replaced
                                                                  else "") for b in w.builds)
        self.emit("on_deploy", app.name, w.commit, w.trigger)
        deployed = False
        runs: list[HookRun] = []
        snaps: list[Snapshot] = []
        hooks = _DeployHooks(deploy_id, runs, snaps, values)
        try:
            t0 = time.monotonic()
            self._build(app, w)
            if w.builds:
                self.emit("on_phase", app.name, "build", time.monotonic() - t0)
            for name in w.secrets:
                self.secrets.ensure(app.name, name, values[name])
            src = self.sources(app)
            write_deploy_dir(Path(w.deploy_dir), w.rendered.text,
                             ((rel, src.read(w.commit, rel, FILE_LIMIT)) for rel in w.rendered.files))
            for step in w.hooks:   # every hook's secrets and configs exist before the first hook runs
                if step.run:
                    self.jobs.check(app.name, step.hook.job)
            self._hooks(app, w, "pre-deploy", hooks)
            if w.recovering or w.builds or runs:   # else the decision's read, a moment old, said go ahead
                self.rollout.await_replicas(app, w.watch)
            self.progress(f"{app.name}: docker stack deploy ({w.plan.summary()})")
            deployed = True
            t0 = time.monotonic()
            converged = self.rollout.apply(app, Path(w.deploy_dir) / "stack.yml", w.watch)
            self.emit("on_phase", app.name, "convergence", time.monotonic() - t0)
            self._hooks(app, w, "post-deploy", hooks)
        except Interrupted as e:
            self.store.finish_deploy(deploy_id, INTERRUPTED, str(e), builds=builds)
            self.store.set_app(app.name, pending_check=deploy_id)   # the next start finishes the watch
            self.history.save(app.name)
            return Outcome(app.name, "failed", w.commit, str(e), w.plan, error_kind=e.kind, attempted=True,
                           decision=d, hooks=tuple(runs))
        except Exception as e:   # a bug after the entry was written fails this deploy like any other fault
            if not isinstance(e, SwarmopsError):
                log.exception("deploy of %s crashed", app.name)
            kind = e.kind if isinstance(e, SwarmopsError) else "InternalError"
            transient = isinstance(e, SwarmopsError) and e.transient
            rolled_back_to, note, stop = self._roll_back_guarded(app, w, hooks) if deployed else ("", "", "")
            error = f"{e}{note}" if isinstance(e, SwarmopsError) else f"internal error: {type(e).__name__}: {e}{note}"
            if stop:   # the new version keeps running: the operator restores the snapshot, or fixes forward
                error = f"{stop}; {error}"
            self.store.finish_deploy(deploy_id, FAILED, error, rollback_to=rolled_back_to, builds=builds)
            if not transient:
                self.store.set_app(app.name, failed_commit=w.commit)
            self.store.set_app(app.name, last_error=error, last_error_kind=kind, last_error_at=time.time())
            self.history.save(app.name)
            return Outcome(app.name, "failed", w.commit, error, w.plan, error_kind=kind, transient=transient,
                           rolled_back_to=rolled_back_to, attempted=True, decision=d, hooks=tuple(runs))
        self.store.finish_deploy(deploy_id, SUCCEEDED, builds=builds, restarted=",".join(w.plan.restarts))
        self.store.set_app(app.name, failed_commit="", last_error="", **({"drift": ""} if d.heal else {}))
        self.history.save(app.name)
        self._prune_secrets(app)
        if d.heal:
            return Outcome(app.name, "healed", w.commit, "healed drift: " + "; ".join(str(x) for x in d.heal),
                           w.plan, drift=d.heal, attempted=True, decision=d)
        ran = "".join(f"; {r.kind} hook {r.name} passed in {r.result.seconds:.1f}s" for r in runs)
        # a post-deploy job ran after the converged read: the status cache reads the app again then
        live = None if any(r.kind == "post-deploy" for r in runs) else converged
        return Outcome(app.name, "deployed", w.commit, w.plan.summary() + ran, w.plan, attempted=True, decision=d,
                       hooks=tuple(runs), live=live)

    def _hooks(self, app: AppConfig, w: DeployWork, kind: str, hooks: _DeployHooks) -> None:
        """Run the decision's hooks of `kind` in order; the first that does not succeed fails the deploy
        (a pre-deploy hook before anything is deployed, a post-deploy one before the deploy is called good).
        A migration's snapshot is taken just before it; one that fails stops the deploy there."""
        for step in w.hooks:
            if step.hook.kind != kind:
                continue
            if not step.run:
                self.progress(f"{app.name}: {kind} hook {step.hook.name} does not run: {step.why}")
                continue
            if step.hook.migrates:
                self._snapshot(app, w, step.hook, hooks)
            run = self._run_hook(app, w, step.hook, step.why, hooks)
            if not run.result.ok:
                r = run.result
                raise HookError(run.failure(deployed_before=bool(w.before)), hook=run.name, kind=kind,
                                exit_code=r.exit_code, state=r.state, log_tail=list(r.log_tail))
            if step.hook.migrates:
                hooks.snaps[-1] = replace(hooks.snaps[-1], migrated=True)
                self.store.record_snapshots(hooks.deploy_id, snapshots_to_json(hooks.snaps))

    def _run_hook(self, app: AppConfig, w: DeployWork, hook: RenderedHook, why: str, hooks: _DeployHooks) -> HookRun:
        """One hook's job, its result kept in the history at once. What it printed is kept without URL
        credentials and without the app's secret values: it reaches history, status and the API."""
        self.progress(f"{app.name}: running {hook.kind} hook {hook.name} ({why}), at most {hook.timeout:g}s")
        result = self.jobs.run(app.name, hook.job, hook.timeout, self.rollout.cancel)
        result = replace(result, log_tail=tuple(redact(line, hooks.hidden) for line in result.log_tail),
                         message=redact(result.message, hooks.hidden))
        run = HookRun(hook.name, hook.kind, w.commit, result)
        hooks.runs.append(run)
        self.store.record_hooks(hooks.deploy_id, runs_to_json(hooks.runs))
        if result.ok:
            self.progress(f"{app.name}: {hook.kind} hook {hook.name} passed in {result.seconds:.1f}s")
        return run

    def _snapshot(self, app: AppConfig, w: DeployWork, hook: RenderedHook, hooks: _DeployHooks) -> None:
        """The migration's database, dumped into the backup store and recorded before the hook runs."""
        db = database_of(hook)
        sid = snapshot_id(self.rollout.clock.now(), w.commit)
        where = self.backups.where(app.name, sid)
        self.progress(f"{app.name}: snapshot {sid} of database {db.name} before migration {hook.name} ({where})")
        result = self.backups.snapshot(app.name, db, sid, self.rollout.cancel)
        if not result.ok:
            shown = " | ".join(redact(line, hooks.hidden) for line in result.log_tail[-5:] if line.strip())
            raise BackupError(f"the snapshot of database {db.name} before migration {hook.name} failed "
                              f"({result.state}, exit code {result.exit_code}); nothing of {w.commit[:12]} was "
                              f"deployed and the migration did not run; last log lines: {shown or result.message}",
                              action="snapshot", state=result.state, exit_code=result.exit_code)
        hooks.snaps.append(Snapshot(sid, w.commit, hook.name, db, where))
        self.store.record_snapshots(hooks.deploy_id, snapshots_to_json(hooks.snaps))

    def _roll_back_guarded(self, app: AppConfig, w: DeployWork, hooks: _DeployHooks) -> tuple[str, str, str]:
        """The rollback of a failed deploy, unless it would cross a migration: (rolled back to, note for the
        error, the sentence it stopped with). Down hooks the decision named run first."""
        migrated = [Migrated(s.commit, s.hook, s.id, hooks.deploy_id) for s in hooks.snaps if s.migrated]
        first = before_rollback(w.guard, migrated) if w.rollback is not None else BeforeRollback()
        if first.stop:
            self.progress(f"{app.name}: not rolling back: {first.stop}")
            return "", "", first.stop
        for down in first.down:
            self.jobs.check(app.name, down.job)
            run = self._run_hook(app, w, down, "undoing its migration before the rollback", hooks)
            if not run.result.ok:
                return "", f"; {run.failure(deployed_before=True)}", first.if_down_fails
        rolled_back_to, note = self.rollout.roll_back(app, w.rollback, w.before)
        return rolled_back_to, note, ""

    def _prune_secrets(self, app: AppConfig) -> None:
        try:
            removed = self.secrets.prune(app.name)
        except SwarmopsError as e:
            log.warning("cannot prune old secrets of %s: %s", app.name, e)
            return
        if removed:
            self.progress(f"{app.name}: removed unused secret versions {', '.join(removed)}")

    def _build(self, app: AppConfig, w: DeployWork) -> None:
        if not w.builds:
            return
        src = self.sources(app)
        with self.build_slots, tempfile.TemporaryDirectory(prefix=f"swarmops-{app.name}-") as tmp:
            for step in w.builds:
                spec = w.specs[step.service]
                if step.replaced:
                    self.progress(f"{app.name}: {step.reason}")
                self.progress(f"{app.name}: building {step.service} -> {step.image}")
                context = src.export(w.commit, spec.context, Path(tmp) / step.service)
                dockerfile = Path(tmp) / f"{step.service}.Dockerfile"
                dockerfile.write_bytes(src.read(w.commit, spec.dockerfile, FILE_LIMIT))
                labels = {SOURCE_TAG_LABEL: step.image.rpartition(":")[2], FINGERPRINT_LABEL: step.fingerprint}
                self.builder.build(context, dockerfile, step.image, dict(spec.args), spec.target, labels)
                self.progress(f"{app.name}: pushing {step.image}")
                digest = self.builder.push(step.image)
                self.builder.tag(step.image, step.alias)
                self.builder.push(step.alias)
                if digest:   # what a later commit with the same build inputs may reuse, and nothing else
                    self.ledger.record(f"{app.name}/{step.service}", step.fingerprint, digest)

    def _roll_back(self, app: AppConfig, d: RollBack, actor: str = "") -> Outcome:
        target = d.target
        self.store.set_app(app.name, paused=True)
        deploy_id = self.store.start_deploy(app.name, target.commit, d.author, d.message, "rollback",
                                            str(Path(target.stack_file).parent), actor)
        self.progress(f"{app.name}: rolling back to {target.commit[:12]} (auto-sync suspended)")
        try:
            self.rollout.apply(app, Path(target.stack_file), d.watch)
        except SwarmopsError as e:
            self.store.finish_deploy(deploy_id, FAILED, str(e))
            self.history.save(app.name)
            return Outcome(app.name, "failed", target.commit, str(e), error_kind=e.kind, transient=e.transient,
                           decision=d)
        self.store.finish_deploy(deploy_id, SUCCEEDED, rollback_to=target.commit)
        self.store.set_app(app.name, last_error="", drift="")
        self.history.save(app.name)
        return Outcome(app.name, "rolled_back", target.commit,
                       f"running {target.commit[:12]}; auto-sync suspended until `swarmops resume {app.name}`",
                       decision=d)


class _DeployHooks:
    """What the hooks of one deploy share: its history entry, what ran, the snapshots taken, and the app's
    secret values to keep out of what a hook printed (in memory only)."""

    def __init__(self, deploy_id: int, runs: list[HookRun], snaps: list[Snapshot], values: dict[str, bytes]) -> None:
        self.deploy_id = deploy_id
        self.runs = runs
        self.snaps = snaps
        self.hidden = tuple(v for v in (b.decode(errors="ignore").strip() for b in values.values()) if len(v) >= 4)

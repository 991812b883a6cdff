"""One app's reconcile: detect -> fetch -> render -> plan -> build -> deploy -> watch -> record.
Decisions come from domain functions; this module wires the adapters around them."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swarmops.config.models import AppConfig, Config
from swarmops.domain.convergence import Verdict, judge
from swarmops.domain.fingerprint import fingerprint
from swarmops.domain.live import LiveStack, now
from swarmops.domain.plan import BuildStep, Plan, make_plan
from swarmops.domain.render import FINGERPRINT_LABEL, Rendered, RenderRequest, referenced_files, render_stack
from swarmops.domain.stackfile import BuildSpec, Stack, build_specs, load_stack
from swarmops.errors import DeployError, SourceError, StackError, SwarmopsError
from swarmops.images.builder import ImageBuilder
from swarmops.images.registry import FINGERPRINT_TAG, SOURCE_TAG_LABEL, Registry
from swarmops.source.git import CommitInfo, GitSource
from swarmops.state import FAILED, INTERRUPTED, SUCCEEDED, StateStore
from swarmops.swarm.deploy import StackDeployer
from swarmops.swarm.live import SwarmReader

log = logging.getLogger("swarmops.reconcile")


class Interrupted(SwarmopsError):
    """The daemon is shutting down and the grace period is over."""


@dataclass(frozen=True)
class Outcome:
    app: str
    result: str            # noop | deployed | failed | skipped | planned
    commit: str | None
    message: str
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("noop", "deployed", "skipped", "planned")


@dataclass
class Prepared:
    commit: str
    info: CommitInfo
    stack: Stack
    specs: dict[str, BuildSpec]
    rendered: Rendered
    plan: Plan
    deploy_dir: Path


@dataclass
class Adapters:
    store: StateStore
    reader: SwarmReader
    deployer: StackDeployer
    registry: Registry
    builder: ImageBuilder


class Reconciler:
    def __init__(self, config: Config, adapters: Adapters, cancel: threading.Event | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.a = adapters
        self.cancel = cancel or threading.Event()
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self.build_slots = threading.Semaphore(config.build.concurrency)
        self.git_slots = threading.Semaphore(config.git.concurrency)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def source(self, app: AppConfig) -> GitSource:
        return GitSource(app.repo, app.branch, self.config.state_dir / "repos" / f"{app.name}.git",
                         self.config.auth_for(app), self.config.git.timeout, self.git_slots)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def busy(self) -> bool:
        """True while any app's reconcile runs."""
        with self._locks_guard:
            return any(lock.locked() for lock in self._locks.values())

    def reconcile(self, app: AppConfig, trigger: str = "poll", dry_run: bool = False,
                  force: bool = False) -> Outcome:
        """The per-app boundary: whatever happens, it is recorded and returned, never raised."""
        started = time.monotonic()
        with self._lock(app.name):
            try:
                outcome = self._reconcile(app, trigger, dry_run, force)
            except SwarmopsError as e:
                outcome = Outcome(app.name, "failed", None, str(e))
                self._note_error(app.name, str(e))
            except Exception as e:   # a bug must not stop the daemon or the other apps
                log.exception("reconcile of %s crashed", app.name)
                outcome = Outcome(app.name, "failed", None, f"internal error: {type(e).__name__}: {e}")
        log.info("reconcile", extra={"fields": {
            "app": app.name, "trigger": trigger, "result": outcome.result, "commit": outcome.commit,
            "duration_s": round(time.monotonic() - started, 3), "message": outcome.message}})
        return outcome

    def _note_error(self, app: str, error: str) -> None:
        try:
            if self.a.store.app_state(app).last_error != error:   # no write per poll for the same fault
                self.a.store.set_app(app, last_error=error, last_error_at=time.time())
        except SwarmopsError as e:
            log.error("cannot record the error of %s: %s", app, e)

    def _reconcile(self, app: AppConfig, trigger: str, dry_run: bool, force: bool) -> Outcome:
        state = self.a.store.app_state(app.name)
        if state.paused and trigger == "poll":
            return Outcome(app.name, "skipped", None, "paused; `swarmops resume` to sync again")
        head = self.source(app).head()
        live = self.a.reader.read_app(app.name)
        if not force and live.deployed_commit() == head and all(s.spec_hash for s in live.services.values()):
            if state.last_error:
                self.a.store.set_app(app.name, last_error="")
            return Outcome(app.name, "noop", head, "in sync")
        if not force and state.failed_commit == head:
            return Outcome(app.name, "skipped", head,
                           f"commit {head[:12]} failed before; push a new commit or run `swarmops sync {app.name}`")
        prep = self.prepare(app, head, live)
        if dry_run:
            return Outcome(app.name, "planned", head, prep.plan.summary(), prep.plan)
        if not prep.plan.deploy:
            return Outcome(app.name, "noop", head, prep.plan.summary(), prep.plan)
        return self.execute(app, prep, live, trigger)

    def prepare(self, app: AppConfig, commit: str, live: LiveStack) -> Prepared:
        """Everything the decision needs, read from git and the registry; then the pure plan."""
        src = self.source(app)
        src.ensure(commit)
        info = src.info(commit)
        try:
            text = src.read(commit, app.stack).decode("utf-8")
        except SourceError:
            raise StackError(f"{app.stack}: not found in commit {commit[:12]}; a deploy without it would "
                             "remove every service, so it is refused") from None
        except UnicodeDecodeError:
            raise StackError(f"{app.stack}: not UTF-8 text") from None
        stack = load_stack(text, app.stack, allow_empty=app.allow_empty)
        specs = build_specs(stack)
        images, fingerprints, builds = self._resolve_images(app, commit, src, specs)
        digests = {p: hashlib.sha256(src.read(commit, p)).hexdigest() for p in referenced_files(stack)}
        deploy_dir = self.config.state_dir / "deploys" / app.name / commit[:12]
        rendered = render_stack(stack, RenderRequest(
            app=app.name, commit=commit, role=app.role, allowed_roles=app.roles(),
            role_label=self.config.role_label, images=images, fingerprints=fingerprints,
            file_digests=digests, deploy_dir=str(deploy_dir)))
        plan = make_plan(app.name, commit, rendered, live, tuple(builds))
        return Prepared(commit, info, stack, specs, rendered, plan, deploy_dir)

    def _resolve_images(self, app: AppConfig, commit: str, src: GitSource, specs: dict[str, BuildSpec]
                        ) -> tuple[dict[str, str], dict[str, str], list[BuildStep]]:
        images: dict[str, str] = {}
        fingerprints: dict[str, str] = {}
        builds: list[BuildStep] = []
        for name, spec in specs.items():
            fp = fingerprint(spec, src.object_id(commit, spec.context), src.object_id(commit, spec.dockerfile),
                             src.read(commit, spec.dockerfile).decode("utf-8", "replace"))
            fingerprints[name] = fp
            existing = self.a.registry.find_fingerprint(f"{app.name}/{name}", fp)
            if existing:
                images[name] = existing
                continue
            images[name] = f"{self.config.registry}/{app.name}/{name}:{commit[:12]}"
            builds.append(BuildStep(name, images[name], fp, "no image with these build inputs in the registry"))
        return images, fingerprints, builds

    def execute(self, app: AppConfig, prep: Prepared, live: LiveStack, trigger: str) -> Outcome:
        store = self.a.store
        deploy_id = store.start_deploy(app.name, prep.commit, prep.info.author, prep.info.title, trigger,
                                       str(prep.deploy_dir))
        since = now()
        builds = ",".join(f"{b.service}:{b.fingerprint[:12]}" for b in prep.plan.builds)
        deployed = False
        try:
            self._build(app, prep)
            self._write_deploy_dir(app, prep)
            self.progress(f"{app.name}: docker stack deploy ({prep.plan.summary()})")
            deployed = True
            self.a.deployer.deploy(app.name, prep.deploy_dir / "stack.yml")
            verdict = self._watch(app, prep.plan.restarts, since)
            if verdict.state != "converged":
                raise DeployError(f"did not converge: {verdict.reason}")
        except Interrupted as e:
            store.finish_deploy(deploy_id, INTERRUPTED, str(e), builds=builds)
            return Outcome(app.name, "failed", prep.commit, str(e), prep.plan)
        except SwarmopsError as e:
            rollback_to, note = self._rollback(app, prep.commit, live) if deployed else ("", "")
            error = f"{e}{note}"
            store.finish_deploy(deploy_id, FAILED, error, rollback_to=rollback_to, builds=builds)
            store.set_app(app.name, failed_commit=prep.commit, last_error=error, last_error_at=time.time())
            return Outcome(app.name, "failed", prep.commit, error, prep.plan)
        store.finish_deploy(deploy_id, SUCCEEDED, builds=builds, restarted=",".join(prep.plan.restarts))
        store.set_app(app.name, failed_commit="", last_error="")
        return Outcome(app.name, "deployed", prep.commit, prep.plan.summary(), prep.plan)

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
                dockerfile.write_bytes(src.read(prep.commit, spec.dockerfile))
                tag = step.image.rpartition(":")[2]
                self.a.builder.build(context, dockerfile, step.image, dict(spec.args), spec.target,
                                     {SOURCE_TAG_LABEL: tag, FINGERPRINT_LABEL: step.fingerprint})
                self.progress(f"{app.name}: pushing {step.image}")
                self.a.builder.push(step.image)
                fp_ref = f"{step.image.rpartition(':')[0]}:{FINGERPRINT_TAG.format(step.fingerprint)}"
                self.a.builder.tag(step.image, fp_ref)
                self.a.builder.push(fp_ref)

    def _write_deploy_dir(self, app: AppConfig, prep: Prepared) -> None:
        """The deploy's own directory: the rendered stack and a copy of every file it references."""
        src = self.source(app)
        target = prep.deploy_dir
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for rel in prep.rendered.files:
                dest = tmp / "files" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(src.read(prep.commit, rel))
            (tmp / "stack.yml").write_text(prep.rendered.text, encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DeployError(f"cannot write {target}: {e.strerror or e}") from None

    def _watch(self, app: AppConfig, services: tuple[str, ...], since: object) -> Verdict:
        """Wait until the changed services converge and stay so for the settle period."""
        timeout = self.config.timeout_for(app)
        settle = self.config.settle_for(app)
        deadline = time.monotonic() + timeout
        converged_at: float | None = None
        if not services:
            return Verdict("converged", "no service restarted")
        while True:
            if self.cancel.is_set():
                raise Interrupted("the daemon stopped while this deploy was converging")
            verdict = judge(self.a.reader.read_app(app.name), services, since, app.failure_threshold)  # type: ignore[arg-type]
            if verdict.state == "failed":
                return verdict
            if verdict.state == "converged":
                converged_at = converged_at or time.monotonic()
                if time.monotonic() - converged_at >= settle:
                    return verdict
            else:
                converged_at = None
            if time.monotonic() > deadline:
                return Verdict("failed", f"not converged within {timeout:g}s: {verdict.reason}")
            self.cancel.wait(1.0)

    def _rollback(self, app: AppConfig, failed: str, before: LiveStack) -> tuple[str, str]:
        """Redeploy the last good rendered stack; returns (commit, note for the error)."""
        last = self.a.store.last_good(app.name, before_commit=failed)
        previous = before.deployed_commit()
        candidates = [(last.commit_sha, Path(last.render_dir))] if last else []
        if previous and previous != failed:
            candidates.append((previous, self.config.state_dir / "deploys" / app.name / previous[:12]))
        for commit, directory in candidates:
            if (directory / "stack.yml").is_file():
                self.progress(f"{app.name}: rolling back to {commit[:12]}")
                try:
                    self.a.deployer.deploy(app.name, directory / "stack.yml")
                    verdict = self._watch(app, tuple(before.services), now())
                except SwarmopsError as e:
                    return commit, f"; rollback to {commit[:12]} failed too: {e}"
                if verdict.state == "converged":
                    return commit, f"; rolled back to {commit[:12]}"
                return commit, f"; rollback to {commit[:12]} did not converge: {verdict.reason}"
        return "", "; no earlier good deploy to roll back to"

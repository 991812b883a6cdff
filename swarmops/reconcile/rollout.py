"""Put a rendered stack on the Swarm and wait for it: write the deploy directory, run
`docker stack deploy`, watch convergence, remember what was applied, roll back to a given target."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from swarmops.config.models import AppConfig, Config
from swarmops.domain.convergence import Verdict, judge, recovering
from swarmops.domain.decide import RollbackTarget
from swarmops.domain.drift import applied_record
from swarmops.domain.live import LiveStack
from swarmops.errors import ConvergenceError, DeployError, Interrupted, SwarmopsError
from swarmops.reconcile.ports import Clock, Deployer, Store, SwarmReader, SystemClock

log = logging.getLogger("swarmops.rollout")


def deploy_dir(config: Config, app: str, commit: str) -> Path:
    return config.state_dir / "deploys" / app / commit[:12]


def write_deploy_dir(target: Path, stack_text: str, files: Iterable[tuple[str, bytes]]) -> None:
    """The deploy's own directory, replaced atomically: the rendered stack and the files it references."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for rel, data in files:
            dest = tmp / "files" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (tmp / "stack.yml").write_text(stack_text, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DeployError(f"cannot write {target}: {e.strerror or e}") from e


class Rollout:
    def __init__(self, config: Config, store: Store, reader: SwarmReader, deployer: Deployer,
                 cancel: threading.Event, progress: Callable[[str], None], clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.deployer = deployer
        self.cancel = cancel
        self.progress = progress
        self.clock: Clock = clock or SystemClock()

    def await_replicas(self, app: AppConfig, services: tuple[str, ...]) -> None:
        """Before a rolling update, let Swarm finish bringing back replicas of the services it will update,
        within the deploy timeout; past it the update goes ahead (git stays the truth) with a warning."""
        since, deadline = self.clock.now(), self.clock.monotonic() + self.config.timeout_for(app)
        told = False
        while services and (reason := recovering(self.reader.read_app(app.name, networks=False), services, since)):
            if self.cancel.is_set():
                raise Interrupted("the daemon stopped while waiting for replicas to come back")
            if self.clock.monotonic() > deadline:
                log.warning("%s: updating although Swarm has not brought back every replica: %s", app.name, reason)
                return
            if not told:
                self.progress(f"{app.name}: waiting for Swarm to bring back replicas before the update: {reason}")
                told = True
            self.clock.wait(self.cancel, 0.5)

    def apply(self, app: AppConfig, stack_file: Path, watch: Iterable[str]) -> LiveStack:
        """Deploy and wait; raises ConvergenceError with Docker's words when it does not converge. Returns the
        app's live state as converged: the watch's last read with the stack's networks, which the applied
        record and the status cache are made from (not one more read of every service and task)."""
        since = self.clock.now()
        self.deployer.deploy(app.name, stack_file)
        self.progress(f"{app.name}: watching {', '.join(watch) or 'nothing'} converge")
        verdict, last = self._watch(app, tuple(watch), since)
        if verdict.state != "converged":
            raise ConvergenceError(f"did not converge: {verdict.reason}", reason=verdict.reason)
        live = replace(last or self.reader.read_app(app.name, networks=False), networks=self.reader.networks(app.name))
        self.store.save_applied(app.name, applied_record(live))
        return live

    def watch(self, app: AppConfig, services: tuple[str, ...], since: datetime) -> Verdict:
        """Wait until `services` converge and stay so for the settle period, or fail, or time out."""
        return self._watch(app, services, since)[0]

    def _watch(self, app: AppConfig, services: tuple[str, ...], since: datetime) -> tuple[Verdict, LiveStack | None]:
        if not services:
            return Verdict("converged", "no service restarted"), None
        timeout, settle = self.config.timeout_for(app), self.config.settle_for(app)
        deadline = self.clock.monotonic() + timeout
        converged_at: float | None = None
        pause = 0.1   # short at first (most updates land in a few seconds), then at most 0.5 s between reads
        while True:
            if self.cancel.is_set():
                raise Interrupted("the daemon stopped while this deploy was converging")
            live = self.reader.read_app(app.name, networks=False)
            verdict = judge(live, services, since, app.failure_threshold)
            if verdict.state == "failed":
                return verdict, live
            if verdict.state == "converged":
                converged_at = converged_at or self.clock.monotonic()
                if self.clock.monotonic() - converged_at >= settle:
                    return verdict, live
            else:
                converged_at = None
            if self.clock.monotonic() > deadline:
                return Verdict("failed", f"not converged within {timeout:g}s: {verdict.reason}"), live
            self.clock.wait(self.cancel, pause)
            pause = min(0.5, pause * 1.5)

    def roll_back(self, app: AppConfig, target: RollbackTarget | None, services: Iterable[str]) -> tuple[str, str]:
        """Redeploy the given good rendered stack; returns (its commit, a note for the error)."""
        if target is None:
            return "", "; no earlier good deploy to roll back to"
        stack_file = Path(target.stack_file)
        self.progress(f"{app.name}: rolling back to {target.commit[:12]}")
        try:
            if target.text is not None and not stack_file.is_file():   # rendered again from git
                write_deploy_dir(stack_file.parent, target.text, target.files)
            self.apply(app, stack_file, services)
        except SwarmopsError as e:
            return target.commit, f"; rollback to {target.commit[:12]} failed too: {e}"
        return target.commit, f"; rolled back to {target.commit[:12]}"

"""The backup store on named volumes of the db node, one per app (`swarmops-backups-<app>`, holding
`<app>/<snapshot-id>.sql.gz`). Every action is a one-off Swarm job on that node (domain/backups.py makes its
spec), run by the jobs adapter: nothing runs on the node outside the Swarm. An S3 store (issue 25, item 3;
not built yet) would honour the same port.

A volume per app, not one for all: a dump job talks to the server the app's stack names, which may be a
server of the app's own making (a "rogue MySQL server" asks the client for local files), and a restore
replays what that server said; the job then reaches the app's own snapshots and secret, nothing of another
app's."""

from __future__ import annotations

import threading

from swarmops.domain.backups import Action, SnapshotFile, parse_listing, store_job
from swarmops.domain.hooks import JobResult
from swarmops.domain.migrations import Database
from swarmops.errors import BackupError
from swarmops.reconcile.ports import Jobs

VOLUME = "swarmops-backups"
IMAGES = {"postgres": "base/postgres:15", "mysql": "base/mariadb:10.11"}   # lab/base-images, in the registry
TIMEOUT = 1800.0   # seconds a dump or a restore may take
LIST_TIMEOUT = 120.0


class VolumeBackups:
    def __init__(self, jobs: Jobs, registry: str, role_label: str = "role", db_role: str = "db",
                 volume: str = VOLUME) -> None:
        self.jobs = jobs
        self.registry = registry
        self.constraint = f"node.labels.{role_label} == {db_role}"
        self.volume = volume

    def where(self, app: str, snapshot: str) -> str:
        return f"volume {self.volume_of(app)} on the db node, {app}/{snapshot}.sql.gz"

    def volume_of(self, app: str) -> str:
        return f"{self.volume}-{app}"

    def snapshot(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        return self._run("snapshot", app, db, snapshot, cancel)

    def restore(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        return self._run("restore", app, db, snapshot, cancel)

    def list(self, app: str, cancel: threading.Event) -> list[SnapshotFile]:
        spec = store_job("list", app, self._image("postgres"), self.volume_of(app), self.constraint)
        result = self.jobs.run(app, spec, LIST_TIMEOUT, cancel)
        if not result.ok:
            said = " | ".join(result.log_tail[-3:]) or result.message
            raise BackupError(f"cannot list the snapshots of {app} in volume {self.volume_of(app)}: job "
                              f"{result.state}, exit code {result.exit_code}: {said}",
                              action="list", state=result.state, exit_code=result.exit_code)
        return parse_listing(result.log_tail)

    def prune(self, app: str, db: Database, keep: int, cancel: threading.Event) -> JobResult:
        spec = store_job("prune", app, self._image(db.engine), self.volume_of(app), self.constraint, db, keep=keep)
        return self.jobs.run(app, spec, LIST_TIMEOUT, cancel)

    def _run(self, action: Action, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        spec = store_job(action, app, self._image(db.engine), self.volume_of(app), self.constraint, db, snapshot)
        return self.jobs.run(app, spec, TIMEOUT, cancel)

    def _image(self, engine: str) -> str:
        return f"{self.registry}/{IMAGES[engine]}"

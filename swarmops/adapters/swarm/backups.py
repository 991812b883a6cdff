"""The backup store on named volumes of the db node, one per app (`swarmops-backups-<app>`, holding
`<app>/<snapshot-id>.sql.gz`). Every action is a one-off Swarm job on that node (domain/backups.py makes its
spec), run by the jobs adapter: nothing runs on the node outside the Swarm. Volumes go to the S3 store
(S3VolumeStore, below).

A volume per app, not one for all: a dump job talks to the server the app's stack names, which may be a
server of the app's own making (a "rogue MySQL server" asks the client for local files), and a restore
replays what that server said; the job then reaches the app's own snapshots and secret, nothing of another
app's."""

from __future__ import annotations

import hashlib
import json
import threading
from importlib.resources import files
from typing import Any

from swarmops.adapters.swarm.secrets import SwarmSecrets
from swarmops.config.models import BackupS3, S3StoreSettings
from swarmops.domain.backups import Action, S3Target, SnapshotFile, VolumeAction, parse_listing, store_job, volume_job
from swarmops.domain.hooks import JobResult
from swarmops.domain.migrations import Database
from swarmops.errors import BackupError, DependencyError
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


PROGRAM = files("swarmops.adapters.swarm").joinpath("s3job.py").read_text()
PYTHON_IMAGE = "base/python:3.11"   # lab/base-images: Debian's python3-boto3


class S3VolumeStore:
    """Backups of an app's named volumes in the S3 store, a bucket per app: each action is a one-off job
    (domain/backups.volume_job) running s3job.py with the app's backup account, which swarmops keeps as a
    Swarm secret `swarmops-s3-<app>-<digest>` made from the key files the app's entry names (content-derived:
    new keys make a new secret; the app's secret prune removes the old one once no job uses it)."""

    def __init__(self, jobs: Jobs, secrets: SwarmSecrets, registry: str, store: S3StoreSettings,
                 role_label: str = "role") -> None:
        self.jobs = jobs
        self.secrets = secrets
        self.image = f"{registry}/{PYTHON_IMAGE}"
        self.store = store
        self.role_label = role_label

    def where(self, app: str, bucket: BackupS3, archive: str) -> str:
        return f"bucket {bucket.bucket} of the S3 store, {archive}.tar.gz"

    def backup(self, app: str, bucket: BackupS3, source: str, node: str, archive: str,
               cancel: threading.Event) -> JobResult:
        return self._run("volume-backup", app, bucket, f"node.id == {node}", TIMEOUT, cancel, source=source,
                         archive=archive)

    def restore(self, app: str, bucket: BackupS3, source: str, node: str, archive: str, volume: str,
                cancel: threading.Event) -> JobResult:
        return self._run("volume-restore", app, bucket, f"node.id == {node}", TIMEOUT, cancel, source=source,
                         archive=archive, volume=volume)

    def prune(self, app: str, bucket: BackupS3, volume: str, keep: int, cancel: threading.Event) -> JobResult:
        return self._run("volume-prune", app, bucket, "", LIST_TIMEOUT, cancel, volume=volume,
                         keep=keep)

    def list(self, app: str, bucket: BackupS3, cancel: threading.Event) -> list[SnapshotFile]:
        result = self._run("volume-list", app, bucket, "", LIST_TIMEOUT, cancel)
        if not result.ok:
            said = " | ".join(result.log_tail[-3:]) or result.message
            raise BackupError(f"cannot list the volume archives of {app} in bucket {bucket.bucket}: job "
                              f"{result.state}, exit code {result.exit_code}: {said}",
                              action="list", state=result.state, exit_code=result.exit_code)
        return parse_listing(result.log_tail)

    def _run(self, action: VolumeAction, app: str, bucket: BackupS3, constraint: str, timeout: float,
             cancel: threading.Event, source: str = "", archive: str = "", volume: str = "",
             keep: int = 0) -> JobResult:
        target = S3Target(self.store.endpoint, self.store.network, self.store.region, bucket.bucket,
                          self.store.max_archive_bytes)
        def spec() -> dict[str, Any]:
            return volume_job(action, app, self.image, PROGRAM, target, self._account(app, bucket), constraint,
                              source=source, archive=archive, volume=volume, keep=keep)
        try:
            return self.jobs.run(app, spec(), timeout, cancel)
        except DependencyError:   # a deploy's secret prune took the account between its making and the job's
            return self.jobs.run(app, spec(), timeout, cancel)

    def _account(self, app: str, bucket: BackupS3) -> str:
        """The Swarm secret holding the app's backup account, made when missing."""
        keys = {}
        for field, path in (("access_key", bucket.access_key_file), ("secret_key", bucket.secret_key_file)):
            try:
                keys[field] = path.read_text().strip()
            except OSError as e:
                raise BackupError(f"{app}: cannot read backup.s3.{field}_file {path}: {e.strerror}; the ops team "
                                  "puts the key of the app's backup account there", action="account") from e
            if not keys[field]:
                raise BackupError(f"{app}: backup.s3.{field}_file {path} is empty; put the key of the app's backup "
                                  "account there", action="account")
        data = json.dumps(keys).encode()
        # content-derived, and slow to derive: the name is public (docker secret ls), the keys are not, and a
        # weak key must not be found by trying candidates against it
        digest = hashlib.pbkdf2_hmac("sha256", data, b"swarmops-s3\0" + app.encode(), 200_000).hex()[:16]
        name = f"swarmops-s3-{app[:30]}-{digest}"
        self.secrets.ensure(app, name, data)
        return name

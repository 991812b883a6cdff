"""What the reconcile needs of the world, as protocols: the adapters in swarmops' own packages honour them,
and so do the in-memory fakes in tests/fakes.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from swarmops.adapters.git import CommitInfo
from swarmops.adapters.store import AppState, Deploy
from swarmops.config.models import BackupS3
from swarmops.domain.backups import SnapshotFile
from swarmops.domain.commits import LogEntry
from swarmops.domain.compose.schema import Version
from swarmops.domain.hooks import JobResult
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Database
from swarmops.errors import DeployError


class Source(Protocol):
    """One app's git repo."""

    def head(self) -> str: ...

    def ensure(self, commit: str) -> None: ...

    def refs(self) -> dict[str, str]:
        """The remote's refs the source follows (its branch, or its tags), name -> sha."""
        ...

    def push(self, commit: str, ref: str) -> None:
        """`commit` made the head of branch `ref` on the remote (a fast-forward), or the new tag `ref` when
        it starts with refs/tags/."""
        ...

    def info(self, commit: str) -> CommitInfo: ...

    def read(self, commit: str, path: str, limit: int | None = None) -> bytes: ...

    def object_id(self, commit: str, path: str) -> str: ...

    def export(self, commit: str, path: str, dest: Path) -> Path: ...

    def log(self, commit: str, since: datetime | None = None, until: datetime | None = None, skip: int = 0,
            limit: int = 50) -> list[LogEntry]: ...


class Registry(Protocol):
    def find_fingerprint(self, repo: str, fingerprint: str) -> str | None: ...

    def digest(self, repo: str, tag: str) -> str | None: ...


class Builder(Protocol):
    def build(self, context: Path, dockerfile: Path, tag: str, args: Mapping[str, str], target: str | None,
              labels: Mapping[str, str]) -> None: ...

    def tag(self, image: str, ref: str) -> None: ...

    def push(self, ref: str) -> str: ...


class Ledger(Protocol):
    """The digests swarmops pushed, by (repo, fingerprint)."""

    def get(self, repo: str, fingerprint: str) -> str | None: ...

    def record(self, repo: str, fingerprint: str, digest: str) -> None: ...


class SwarmReader(Protocol):
    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack: ...

    def networks(self, app: str) -> dict[str, str]:
        """The stack's networks, id -> name."""
        ...

    def read_all(self) -> dict[str, LiveStack]: ...


class Deployer(Protocol):
    def deploy(self, app: str, compose_file: Path) -> str: ...

    def remove(self, app: str) -> None: ...

    def schema_versions(self) -> tuple[Version, ...]: ...


class Jobs(Protocol):
    """One-off Swarm jobs (deploy hooks), made through the Engine API from a ready ServiceSpec."""

    def run(self, app: str, spec: Mapping[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
        """Create the job, wait for its task to end (at most `timeout` seconds; `cancel` raises Interrupted),
        keep its log tail, and remove it, whatever happened. Engine faults raise EngineError."""
        ...

    def check(self, app: str, spec: Mapping[str, Any]) -> None:
        """Raise DependencyError if a secret or config the job names is not in the Swarm (asked of every
        hook before the first runs: a missing one then fails the deploy before anything ran)."""
        ...


class NoJobs:
    """Wiring without a job runner (tests that have no hooks): a hook asks for one and fails clearly."""

    def run(self, app: str, spec: Mapping[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
        raise DeployError(f"{app}: this swarmops was wired without a job runner; hooks cannot run")

    def check(self, app: str, spec: Mapping[str, Any]) -> None:
        raise DeployError(f"{app}: this swarmops was wired without a job runner; hooks cannot run")


class Backups(Protocol):
    """The backup store (a volume on the db node today; S3 later): snapshots of an app's databases taken,
    listed and restored by one-off jobs. Results come back as JobResult; Engine faults raise EngineError."""

    def where(self, app: str, snapshot: str) -> str:
        """Where the snapshot is kept, in the operator's words."""
        ...

    def snapshot(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult: ...

    def restore(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult: ...

    def list(self, app: str, cancel: threading.Event) -> list[SnapshotFile]:
        """The app's snapshots in the store, newest first."""
        ...

    def prune(self, app: str, db: Database, keep: int, cancel: threading.Event) -> JobResult:
        """Remove all but the newest `keep` backups of the database (never a migration's snapshot)."""
        ...


class VolumeStore(Protocol):
    """The S3 store of an app's volume archives (a bucket per app): archived, restored, listed and pruned by
    one-off jobs; a backup or a restore runs on the node the volume is on."""

    def where(self, app: str, bucket: BackupS3, archive: str) -> str: ...

    def backup(self, app: str, bucket: BackupS3, source: str, node: str, archive: str,
               cancel: threading.Event) -> JobResult: ...

    def restore(self, app: str, bucket: BackupS3, source: str, node: str, archive: str, volume: str,
                cancel: threading.Event) -> JobResult: ...

    def prune(self, app: str, bucket: BackupS3, volume: str, keep: int, cancel: threading.Event) -> JobResult: ...

    def list(self, app: str, bucket: BackupS3, cancel: threading.Event) -> list[SnapshotFile]: ...


class NoBackups:
    """Wiring without a backup store: a migration asks for one and fails clearly."""

    def where(self, app: str, snapshot: str) -> str:
        return "nowhere"

    def snapshot(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        raise DeployError(f"{app}: this swarmops was wired without a backup store; a migration cannot run")

    def restore(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        raise DeployError(f"{app}: this swarmops was wired without a backup store")

    def list(self, app: str, cancel: threading.Event) -> list[SnapshotFile]:
        raise DeployError(f"{app}: this swarmops was wired without a backup store")

    def prune(self, app: str, db: Database, keep: int, cancel: threading.Event) -> JobResult:
        raise DeployError(f"{app}: this swarmops was wired without a backup store")


class Secrets(Protocol):
    def ensure(self, app: str, name: str, data: bytes) -> bool: ...

    def prune(self, app: str) -> list[str]: ...


class Store(Protocol):
    """The state store's part the reconcile uses."""

    def app_state(self, app: str) -> AppState: ...

    def set_app(self, app: str, **fields: Any) -> None: ...

    def orphaned(self, app: str) -> list[int]: ...

    def interrupt(self, deploy_id: int) -> None: ...

    def get_deploy(self, deploy_id: int) -> Deploy | None: ...

    def annotate(self, deploy_id: int, error: str, rollback_to: str = "") -> None: ...

    def start_deploy(self, app: str, commit: str, author: str, message: str, trigger: str,
                     render_dir: str, actor: str = "") -> int: ...

    def finish_deploy(self, deploy_id: int, result: str, error: str = "", rollback_to: str = "",
                      builds: str = "", restarted: str = "") -> None: ...

    def record_hooks(self, deploy_id: int, hooks: str) -> None: ...

    def record_snapshots(self, deploy_id: int, snapshots: str) -> None: ...

    def history(self, app: str, limit: int = 50) -> list[Deploy]: ...

    def load_applied(self, app: str) -> dict[str, Any]: ...

    def save_applied(self, app: str, record: dict[str, Any]) -> None: ...


class HistoryCopy(Protocol):
    """The copy of each app's history kept in the Swarm (for a manager that takes over)."""

    def restore(self, app: str) -> None: ...

    def save(self, app: str) -> None: ...


class NoHistoryCopy:
    def restore(self, app: str) -> None: ...

    def save(self, app: str) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def wait(self, cancel: threading.Event, seconds: float) -> bool:
        """Sleep up to `seconds`; True when `cancel` was set."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, cancel: threading.Event, seconds: float) -> bool:
        return cancel.wait(seconds)

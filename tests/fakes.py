"""In-memory fakes of the reconcile's adapters (swarmops/reconcile/ports.py). Each honours its protocol's
contract as the real adapter does: the Swarm fake runs what a rendered stack file says (labels, image,
replicas) and its tasks converge unless told to fail; the registry serves what was pushed; the git fake
serves commits of files. mypy checks each against its protocol where the tests wire them."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from swarmops.adapters.git import CommitInfo
from swarmops.adapters.images.registry import SOURCE_TAG_LABEL
from swarmops.adapters.store import StateStore
from swarmops.config.models import AppConfig, Config
from swarmops.domain.backups import BACKUP_ID, SnapshotFile
from swarmops.domain.commits import LogEntry
from swarmops.domain.compose import schema
from swarmops.domain.compose.schema import Version
from swarmops.domain.hooks import JobResult
from swarmops.domain.live import LiveNode, LiveService, LiveStack, LiveTask
from swarmops.domain.migrations import Database
from swarmops.domain.render import APP_LABEL, HOOK_LABEL, STACK_NAMESPACE
from swarmops.errors import DependencyError, DeployError, Interrupted, SourceError
from swarmops.reconcile.reconciler import Adapters, Reconciler

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NODE = LiveNode("n1", "vm1", {"role": "app"}, "ready", "active", "manager")


class FakeClock:
    """Time moves only when something waits."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    def wait(self, cancel: threading.Event, seconds: float) -> bool:
        self.t += seconds
        return cancel.is_set()


class FakeSource:
    """One app's repo: commits of {path: bytes}, the branch head the last one."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.messages: dict[str, str] = {}
        self.heads: list[str] = []
        self.calls: list[str] = []
        self.pushed: list[tuple[str, str]] = []
        self.refuse_push = False
        self.tags: dict[str, str] = {}   # refs/tags/NAME -> sha, when the source follows tags

    def commit(self, message: str, files: Mapping[str, bytes | str], base: bool = True) -> str:
        tree = dict(self.commits[self.heads[-1]]) if base and self.heads else {}
        tree.update({k: v.encode() if isinstance(v, str) else v for k, v in files.items()})
        sha = hashlib.sha1(f"{len(self.heads)}{message}{sorted(tree.items())}".encode()).hexdigest()
        self.commits[sha], self.messages[sha] = tree, message
        self.heads.append(sha)
        return sha

    def head(self) -> str:
        self.calls.append("head")
        if not self.heads:
            raise SourceError("the branch has no commit")
        return self.heads[-1]

    def ensure(self, commit: str) -> None:
        self.calls.append("ensure")
        if commit not in self.commits:
            raise SourceError(f"commit {commit[:12]} is not in the repo")

    def refs(self) -> dict[str, str]:
        self.calls.append("refs")
        return dict(self.tags) if self.tags else {"refs/heads/main": self.head()}

    def push(self, commit: str, ref: str) -> None:
        """Recorded in `pushed`; `refuse_push` makes the remote refuse it (not a fast-forward)."""
        self.ensure(commit)
        if self.refuse_push:
            raise SourceError(f"git push of file:///srv/git/shop.git failed: ! [rejected] {commit[:12]} -> "
                              f"{ref} (non-fast-forward)")
        self.pushed.append((commit, ref))

    def info(self, commit: str) -> CommitInfo:
        return CommitInfo(commit, "Ana Dev", "ana@example.go.id", T0, self.messages[commit])

    def _files(self, commit: str, path: str) -> dict[str, bytes]:
        prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
        return {k: v for k, v in self.commits[commit].items() if k == path or k.startswith(prefix)}

    def read(self, commit: str, path: str, limit: int | None = None) -> bytes:
        self.calls.append(f"read {path}")
        data = self.commits.get(commit, {}).get(path)
        if data is None:
            raise SourceError(f"{path!r} does not exist in commit {commit[:12]}")
        if limit is not None and len(data) > limit:
            raise SourceError(f"{path} is larger than {limit} bytes")
        return data

    def object_id(self, commit: str, path: str) -> str:
        return hashlib.sha1(repr(sorted(self._files(commit, path).items())).encode()).hexdigest()

    def export(self, commit: str, path: str, dest: Path) -> Path:
        prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
        for rel, data in self._files(commit, path).items():
            target = dest / rel.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def log(self, commit: str, since: datetime | None = None, until: datetime | None = None, skip: int = 0,
            limit: int = 50) -> list[LogEntry]:
        return []


class FakeRegistry:
    """Tags of repos with their manifest digest and the image's labels, as pushed."""

    def __init__(self, host: str = "reg:5000") -> None:
        self.host = host
        self.tags: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}

    def put(self, ref: str, digest: str, labels: Mapping[str, str]) -> None:
        repo, _, tag = ref.removeprefix(self.host + "/").rpartition(":")
        self.tags[(repo, tag)] = (digest, dict(labels))

    def find_fingerprint(self, repo: str, fingerprint: str) -> str | None:
        found = self.tags.get((repo, f"fp-{fingerprint}"))
        if found is None:
            return None
        tag = found[1].get(SOURCE_TAG_LABEL)
        return f"{self.host}/{repo}:{tag}" if tag and (repo, tag) in self.tags else None

    def digest(self, repo: str, tag: str) -> str | None:
        found = self.tags.get((repo, tag))
        return found[0] if found else None


class FakeBuilder:
    """Builds are recorded; a push puts the image in the registry under its own digest."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.images: dict[str, tuple[str, dict[str, str]]] = {}
        self.built: list[str] = []
        self.fail: set[str] = set()   # services whose build fails
        self._n = itertools.count(1)

    def build(self, context: Path, dockerfile: Path, tag: str, args: Mapping[str, str], target: str | None,
              labels: Mapping[str, str]) -> None:
        from swarmops.errors import BuildError
        service = tag.rpartition(":")[0].rpartition("/")[2]
        if service in self.fail:
            raise BuildError(f"build of {tag} failed: exit 1")
        assert dockerfile.is_file() and context.is_dir()
        self.built.append(tag)
        self.images[tag] = (f"sha256:{next(self._n):064x}", dict(labels))

    def tag(self, image: str, ref: str) -> None:
        self.images[ref] = self.images[image]

    def push(self, ref: str) -> str:
        digest, labels = self.images[ref]
        self.registry.put(ref, digest, labels)
        return digest


class FakeLedger:
    def __init__(self) -> None:
        self.digests: dict[tuple[str, str], str] = {}

    def get(self, repo: str, fingerprint: str) -> str | None:
        return self.digests.get((repo, fingerprint))

    def record(self, repo: str, fingerprint: str, digest: str) -> None:
        self.digests[(repo, fingerprint)] = digest


class FakeSwarm:
    """The Swarm reader, stack deployer and secrets in one: a deploy runs what the rendered stack file
    says; each service's tasks run on the spec (or fail, for the images in `failing`)."""

    def __init__(self, clock: FakeClock, versions: tuple[Version, ...] = schema.CLI_28) -> None:
        self.clock = clock
        self.secret_values: dict[str, bytes] = {}   # what each secret was made from
        self.versions = versions
        self.stacks: dict[str, LiveStack] = {}
        self.deploys: list[tuple[str, str]] = []    # (app, stack file text)
        self.secrets: dict[str, set[str]] = {}
        self.failing: set[str] = set()             # images whose tasks fail
        self.refuse = ""                           # the Engine's refusal of every deploy, when set
        self.reads = 0
        self.all_reads = 0                         # read_all: every app's services
        self._ids = itertools.count(1)

    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack:
        self.reads += 1
        return self.stacks.get(app) or LiveStack(app, {}, [], {NODE.id: NODE})

    def networks(self, app: str) -> dict[str, str]:
        return dict(self.stacks[app].networks) if app in self.stacks else {}

    def read_all(self) -> dict[str, LiveStack]:
        self.reads += 1
        self.all_reads += 1
        return dict(self.stacks)

    def schema_versions(self) -> tuple[Version, ...]:
        return self.versions

    def deploy(self, app: str, compose_file: Path) -> str:
        text = compose_file.read_text()
        self.deploys.append((app, text))
        doc: dict[str, Any] = yaml.safe_load(text)
        old = self.stacks.get(app)
        services: dict[str, LiveService] = {}
        tasks: list[LiveTask] = []
        for short, svc in (doc.get("services") or {}).items():
            if self.refuse:
                raise DeployError(f"failed to update service {app}_{short}: {self.refuse}")
            services[short], new_tasks = self._service(app, short, svc, old)
            tasks += new_tasks
        self.stacks[app] = LiveStack(app, services, tasks, {NODE.id: NODE})
        return ""

    def _service(self, app: str, short: str, svc: dict[str, Any], old: LiveStack | None
                 ) -> tuple[LiveService, list[LiveTask]]:
        deploy = svc.get("deploy") or {}
        labels = {str(k): str(v) for k, v in (deploy.get("labels") or {}).items()}
        spec = {"Name": f"{app}_{short}", "Labels": labels, "TaskTemplate": _engine_template(svc),
                "Mode": {"Replicated": {"Replicas": deploy.get("replicas", 1)}}}
        if svc.get("ports"):
            spec["EndpointSpec"] = {"Ports": [{"PublishedPort": int(p["published"]), "TargetPort": int(p["target"])}
                                              for p in svc["ports"]]}
        before = old.services.get(short) if old else None
        image = str(svc["image"])
        task_image = image if "@" in image else f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
        same = before is not None and {k: v for k, v in before.spec.items() if k != "Labels"} == \
            {k: v for k, v in spec.items() if k != "Labels"}
        if before is not None and same and old is not None:   # a label-only update: the tasks keep running
            return replace(before, labels=labels, spec=spec, version=before.version + 1), old.tasks_of(before)
        sid = before.id if before else f"s{next(self._ids)}"
        service = LiveService(id=sid, name=f"{app}_{short}", short=short, labels=labels, image=image.split("@")[0],
                              version=(before.version + 1) if before else 1, replicas=int(deploy.get("replicas", 1)),
                              update_state=None, update_started=None, update_message="", task_image=task_image,
                              force_update=0, spec=spec)
        state = "failed" if image.split("@")[0] in self.failing else "running"
        return service, [self._task(service, state, slot) for slot in range(1, (service.replicas or 1) + 1)
                         for _ in range(3 if state == "failed" else 1)]

    def _task(self, service: LiveService, state: str, slot: int) -> LiveTask:
        return LiveTask(id=f"t{next(self._ids)}", service_id=service.id, node_id=NODE.id, slot=slot,
                        desired="running" if state == "running" else "shutdown", state=state,
                        image=service.task_image, force_update=0, message=state,
                        error="exit 1" if state == "failed" else "", exit_code=1 if state == "failed" else None,
                        timestamp=self.clock.now() + timedelta(seconds=1))

    def scale(self, app: str, short: str, replicas: int) -> None:
        """`docker service scale`: a hand-made change (drift)."""
        live = self.stacks[app]
        svc = live.services[short]
        spec = {**svc.spec, "Mode": {"Replicated": {"Replicas": replicas}}}
        scaled = replace(svc, replicas=replicas, spec=spec, version=svc.version + 1)
        tasks = [t for t in live.tasks if t.service_id != svc.id] + \
            [self._task(scaled, "running", slot) for slot in range(1, replicas + 1)]
        self.stacks[app] = replace(live, services={**live.services, short: scaled}, tasks=tasks)

    def remove(self, app: str) -> None:
        self.stacks.pop(app, None)

    # the secrets adapter
    def ensure(self, app: str, name: str, data: bytes) -> bool:
        made = name not in self.secrets.setdefault(app, set())
        self.secrets[app].add(name)
        self.secret_values[name] = data
        return made

    def prune(self, app: str) -> list[str]:
        return []


def _engine_template(svc: dict[str, Any]) -> dict[str, Any]:
    """A service of the rendered file as the Engine keeps it in the task template: the file's keys, and the
    environment, secrets and networks in the Engine's own shape (Env, Secrets, Networks), as live specs read."""
    container: dict[str, Any] = {k: v for k, v in svc.items() if k != "deploy"}
    env = svc.get("environment") or {}
    container["Env"] = [f"{k}={v}" for k, v in env.items()] if isinstance(env, dict) else list(env)
    container["Secrets"] = [{"SecretName": ref["source"], "File": {"Name": ref.get("target") or ref["source"]}}
                            for ref in svc.get("secrets") or [] if isinstance(ref, dict)]
    networks = svc.get("networks") or []
    return {"ContainerSpec": container, "Networks": [{"Target": str(n)} for n in networks]}


class RecordingStore(StateStore):
    """The real state store (SQLite in a temporary directory), with every write it is asked for listed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[str] = []

    def set_app(self, app: str, **fields: Any) -> None:
        self.writes.append("set_app " + ",".join(sorted(fields)))
        super().set_app(app, **fields)

    def start_deploy(self, app: str, commit: str, author: str, message: str, trigger: str, render_dir: str,
                     actor: str = "") -> int:
        self.writes.append("start_deploy")
        return super().start_deploy(app, commit, author, message, trigger, render_dir, actor)

    def finish_deploy(self, deploy_id: int, result: str, error: str = "", rollback_to: str = "",
                      builds: str = "", restarted: str = "") -> None:
        self.writes.append(f"finish_deploy {result}")
        super().finish_deploy(deploy_id, result, error, rollback_to, builds, restarted)

    def interrupt(self, deploy_id: int) -> None:
        self.writes.append("interrupt")
        super().interrupt(deploy_id)

    def annotate(self, deploy_id: int, error: str, rollback_to: str = "") -> None:
        self.writes.append("annotate")
        super().annotate(deploy_id, error, rollback_to)

    def save_applied(self, app: str, record: dict[str, Any]) -> None:
        self.writes.append("save_applied")
        super().save_applied(app, record)


class World:
    """One app on fakes, wired as runtime.py wires the real adapters."""

    def __init__(self, tmp: Path, app: dict[str, Any] | AppConfig | None = None, **config: Any) -> None:
        """`app`: the entry's keys over a small default, or an AppConfig as it is (an environment of one)."""
        defaults = {"name": "shop", "repo": "file:///srv/git/shop.git", "settle": "1s", "deploy_timeout": "30s"}
        self.app = app if isinstance(app, AppConfig) else AppConfig.model_validate({**defaults, **(app or {})})
        self.config = Config.model_validate({"registry": "reg:5000", "state_dir": str(tmp / "state"),
                                             "apps": [self.app], **config})
        self.clock = FakeClock()
        self.source = FakeSource()
        self.registry = FakeRegistry()
        self.builder = FakeBuilder(self.registry)
        self.ledger = FakeLedger()
        self.swarm = FakeSwarm(self.clock)
        self.store = RecordingStore(tmp / "state" / "state.db")
        self.said: list[str] = []
        self.adapters = Adapters(store=self.store, reader=self.swarm, deployer=self.swarm, registry=self.registry,
                                 builder=self.builder, secrets=self.swarm, ledger=self.ledger,
                                 sources=lambda _app: self.source)
        self.reconciler = Reconciler(self.config, self.adapters, progress=self.said.append, clock=self.clock)

    def sync(self, **kwargs: Any) -> Any:
        kwargs = {"trigger": "manual", "force": not kwargs.get("dry_run", False), **kwargs}
        return self.reconciler.reconcile(self.app, **kwargs)

    def poll(self, **kwargs: Any) -> Any:
        return self.reconciler.reconcile(self.app, trigger="poll", **kwargs)

    def live(self) -> LiveStack:
        return self.swarm.read_app(self.app.name)


class FakeJobs:
    """The jobs adapter: a job runs at once and ends as `results` says for its hook (exit 0 by default); one
    that would take longer than its timeout ends as `timeout`. As the Engine does, it refuses a job whose
    secrets the Swarm does not have, and as the real adapter does it removes the job once it ended: `left`
    stays empty. Each run notes how many stack deploys the Swarm had seen before it."""

    def __init__(self, swarm: FakeSwarm, clock: FakeClock) -> None:
        self.swarm = swarm
        self.clock = clock
        self.results: dict[str, JobResult] = {}
        self.runs: list[tuple[str, dict[str, Any], int]] = []   # (hook, spec, stack deploys before it)
        self.left: dict[str, dict[str, Any]] = {}                # job services still in the Swarm

    def check(self, app: str, spec: Mapping[str, Any]) -> None:
        for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []:
            if ref["SecretName"] not in self.swarm.secrets.get(app, set()):
                raise DependencyError(f"the hook needs secret {ref['SecretName']}, which does not exist in the Swarm")

    def run(self, app: str, spec: Mapping[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
        labels = spec["Labels"]
        assert labels[APP_LABEL] == app and STACK_NAMESPACE not in labels, labels
        assert "ReplicatedJob" in spec["Mode"] and spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
        for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []:
            if ref["SecretName"] not in self.swarm.secrets.get(app, set()):
                raise DependencyError(f"the hook needs secret {ref['SecretName']}, which does not exist in the Swarm")
        hook = labels[HOOK_LABEL]
        self.left[spec["Name"]] = dict(spec)
        self.runs.append((hook, dict(spec), len(self.swarm.deploys)))
        result = self.results.get(hook, JobResult("complete", 0, 1.0, ("done",)))
        try:
            if result.seconds > timeout:
                self.clock.t += timeout
                return JobResult("timeout", None, timeout, result.log_tail, "task running")
            self.clock.t += result.seconds
            if cancel.is_set():
                raise Interrupted("the daemon stopped while a hook was running; its job was removed")
            return result
        finally:
            self.left.pop(spec["Name"], None)


class FakeBackups:
    """The backup store: a snapshot copies the fake database's rows (`rows`, by database name) into the store
    and a restore copies them back; `fail` makes an action end as a failed job. As the real store's jobs do,
    it needs the password secret in the Swarm. Each snapshot notes how many hooks ran and how many stack
    deploys the Swarm had seen before it."""

    def __init__(self, swarm: FakeSwarm, jobs: FakeJobs) -> None:
        self.swarm = swarm
        self.jobs = jobs
        self.rows: dict[str, list[str]] = {}
        self.kept: dict[tuple[str, str], tuple[Database, list[str]]] = {}
        self.taken: list[tuple[str, Database, int, int]] = []   # (id, database, hooks before, deploys before)
        self.fail: dict[str, JobResult] = {}

    def where(self, app: str, snapshot: str) -> str:
        return f"volume swarmops-backups-{app} on the db node, {app}/{snapshot}.sql.gz"

    def snapshot(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        self._needs(app, db)
        self.taken.append((snapshot, db, len(self.jobs.runs), len(self.swarm.deploys)))
        if "snapshot" in self.fail:
            return self.fail["snapshot"]
        self.kept[(app, snapshot)] = (db, list(self.rows.get(db.name, [])))
        return JobResult("complete", 0, 1.0, (f"snapshot {snapshot}: 100 bytes",))

    def restore(self, app: str, db: Database, snapshot: str, cancel: threading.Event) -> JobResult:
        self._needs(app, db)
        if (app, snapshot) not in self.kept:
            return JobResult("failed", 2, 0.1, (f"no snapshot {snapshot} of {app} in the store",))
        self.rows[db.name] = list(self.kept[(app, snapshot)][1])
        return JobResult("complete", 0, 1.0, (f"restored {snapshot}",))

    def list(self, app: str, cancel: threading.Event) -> list[SnapshotFile]:
        return [SnapshotFile(sid, 100, 1.0) for (owner, sid) in sorted(self.kept, reverse=True) if owner == app]

    def prune(self, app: str, db: Database, keep: int, cancel: threading.Event) -> JobResult:
        if "prune" in self.fail:
            return self.fail["prune"]
        mine = sorted((sid for (owner, sid) in self.kept if owner == app and BACKUP_ID.match(sid)
                       and sid.endswith(f"Z-backup-{db.name}")), reverse=True)
        for sid in mine[keep:]:
            del self.kept[(app, sid)]
        return JobResult("complete", 0, 0.1, (f"kept {min(keep, len(mine))} of {len(mine)} backups of {db.name}",))

    def _needs(self, app: str, db: Database) -> None:
        if db.secret not in self.swarm.secrets.get(app, set()):
            raise DependencyError(f"the job needs secret {db.secret}, which does not exist in the Swarm")


class HookWorld(World):
    """A World whose reconciler runs deploy hooks on FakeJobs, and migrations' snapshots on FakeBackups."""

    def __init__(self, tmp: Path, app: dict[str, Any] | None = None, **config: Any) -> None:
        super().__init__(tmp, app, **config)
        self.jobs = FakeJobs(self.swarm, self.clock)
        self.backups = FakeBackups(self.swarm, self.jobs)
        self.adapters = replace(self.adapters, jobs=self.jobs, backups=self.backups)
        self.reconciler = Reconciler(self.config, self.adapters, progress=self.said.append, clock=self.clock)

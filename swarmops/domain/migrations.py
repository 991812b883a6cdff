"""Migrations as data (issue 25, item 2): a pre-deploy hook that declares `migrates: DATABASE` changes a
schema, so a snapshot of that database is taken before it runs, and an automatic rollback to a commit older
than a migration that succeeded is not done blindly. Pure: the decision makes the RollbackGuard before the
deploy runs; when a deploy fails, `before_rollback(guard, migrated)` says what the executor does first (run
the down hooks, or stop with the operator's sentence) from what the deploy did, with nothing left to decide."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from swarmops.domain.compose.hooks import DB_WIRING, ENGINES, valid_port
from swarmops.domain.hooks import HookStep, RenderedHook

Engine = Literal["postgres", "mysql"]
DEFAULT_PORTS: dict[str, int] = {"postgres": 5432, "mysql": 3306}


@dataclass(frozen=True)
class Database:
    """How a migration hook reaches its database, as the app's stack wires it (the templates' DB_* variables
    and the password as a Swarm secret). Names only: never a secret's value."""

    engine: Engine
    name: str
    host: str
    port: int
    user: str
    secret: str                   # the Swarm name of the password secret
    networks: tuple[str, ...]     # the hook's (external) networks: the database is reachable on one of them

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "networks": list(self.networks)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Database:
        engine: Engine = "mysql" if data.get("engine") == "mysql" else "postgres"
        return cls(engine, str(data["name"]), str(data["host"]), int(data["port"]), str(data["user"]),
                   str(data["secret"]), tuple(str(n) for n in data.get("networks") or ()))


def database_of(hook: RenderedHook) -> Database:
    """The database of a migration hook, read from its rendered job (load time checked the wiring)."""
    found = wired_database(hook.job["TaskTemplate"])
    assert found is not None, f"hook {hook.name}: load time checks a migration's wiring"
    return found


def wired_database(template: Mapping[str, Any], network_names: Mapping[str, str] | None = None) -> Database | None:
    """The database a task template (a hook's job, or a deployed service's live spec: both in the Engine's
    shape) is wired to as the templates wire `web` (compose/hooks.py's DB_WIRING, the password as one of its
    secrets), or None when the wiring is not all there. `network_names`: network id -> name, for a live spec
    (the Engine keeps ids there)."""
    container = template.get("ContainerSpec") or {}
    env = dict(str(item).partition("=")[::2] for item in container.get("Env") or [])
    if any(not env.get(key) for key in DB_WIRING) or env["DB_DRIVER"] not in ENGINES:
        return None
    port = env.get("DB_PORT") or ""
    if port and not valid_port(port):
        return None
    wanted = env["DB_PASSWORD_FILE"]
    files = {str(ref["SecretName"]): str((ref.get("File") or {}).get("Name")) for ref in container.get("Secrets") or []}
    secret = next((name for name, file in files.items() if wanted in (file, f"/run/secrets/{file}")), None)
    if secret is None:
        return None
    engine: Engine = "mysql" if env["DB_DRIVER"] == "mysql" else "postgres"
    names = network_names or {}
    networks = tuple(names.get(str(n["Target"]), str(n["Target"])) for n in template.get("Networks") or [])
    return Database(engine, env["DB_NAME"], env["DB_HOST"], int(port or DEFAULT_PORTS[engine]), env["DB_USER"],
                    secret, networks)


def database_in(specs: Mapping[str, Mapping[str, Any]], name: str,
                network_names: Mapping[str, str] | None = None) -> Database | None:
    """The database `name` (its DB_NAME) as the first service (by name) of a deployed stack wires it, from the
    services' live specs; None when none does."""
    for service in sorted(specs):
        found = wired_database(specs[service].get("TaskTemplate") or {}, network_names)
        if found is not None and found.name == name:
            return found
    return None


def not_wired(app: str, database: str) -> str:
    """The operator's sentence when no deployed service of the app is wired to a database its backup names."""
    return (f"{app}: no service of the deployed stack is wired to database {database}, so swarmops cannot back "
            f"it up: give the service that uses it {', '.join(DB_WIRING[:2])}, DB_NAME: {database}, "
            f"{', '.join(DB_WIRING[3:])} (/run/secrets/NAME of one of its secrets) and DB_PORT, as the templates "
            f"wire web, or remove {database} from backup.databases in the app's apps.d entry")


def snapshot_id(now: datetime, commit: str) -> str:
    """Sortable by time, and names the commit whose migration it precedes."""
    return f"{now:%Y%m%dT%H%M%SZ}-{commit[:12]}"


@dataclass(frozen=True)
class Snapshot:
    """A snapshot taken before a migration, as the deploy's history entry keeps it."""

    id: str
    commit: str
    hook: str
    database: Database
    where: str                    # the store's words: volume swarmops-backups on the db node, shop/ID.sql.gz
    migrated: bool = False        # the migration hook then succeeded

    @property
    def about(self) -> str:
        """What it is, for the operator: before which migration, or a backup (hook is empty)."""
        if not self.hook:
            return f"backup of database {self.database.name} while {self.commit[:12] or 'nothing'} ran"
        return f"before migration {self.hook} of {self.commit[:12]}, database {self.database.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "commit": self.commit, "hook": self.hook, "database": self.database.to_dict(),
                "where": self.where, "migrated": self.migrated}


def snapshots_to_json(snapshots: Sequence[Snapshot]) -> str:
    return json.dumps([s.to_dict() for s in snapshots], separators=(",", ":"))


def snapshots_from_json(text: str) -> list[Snapshot]:
    """The history's snapshots field; an entry that does not read is left out (it names no restorable data)."""
    try:
        data = json.loads(text) if text else []
    except ValueError:
        return []
    found = []
    for item in data if isinstance(data, list) else []:
        try:
            found.append(Snapshot(str(item["id"]), str(item["commit"]), str(item["hook"]),
                                  Database.from_dict(item["database"]), str(item.get("where", "")),
                                  bool(item.get("migrated"))))
        except (KeyError, TypeError, ValueError):
            continue
    return found


@dataclass(frozen=True)
class Migrated:
    """A migration that succeeded: the commit whose hook ran it, and the snapshot taken just before."""

    commit: str
    hook: str
    snapshot: str
    deploy_id: int = 0


def crossing(commit: str, snapshot: str) -> str:
    """The operator's sentence when an automatic rollback stops at a migration."""
    return (f"rolling back would cross migration {commit[:12]}; restore snapshot {snapshot} with "
            "swarmops backup restore")


@dataclass(frozen=True)
class RollbackGuard:
    """Decided with the deploy: what an automatic rollback of it must respect."""

    crossed: Migrated | None = None       # the oldest migration of an earlier deploy newer than the target
    downs: Mapping[str, RenderedHook | None] = field(default_factory=dict)   # this commit's migrations -> down


@dataclass(frozen=True)
class BeforeRollback:
    """What to do before rolling back: run these down hooks (newest migration first), or stop (`stop`: the
    sentence; the new version keeps running)."""

    down: tuple[RenderedHook, ...] = ()
    stop: str = ""
    if_down_fails: str = ""   # the sentence to stop with when a down hook does not succeed


def guard_rollback(target_deploy: int | None, history: Sequence[Migrated], steps: Sequence[HookStep],
                   hooks: Mapping[str, RenderedHook]) -> RollbackGuard:
    """`target_deploy`: the history id of the rollback target's last good deploy (0 when the history does not
    have it: every recorded migration is then taken as crossed; None: no rollback target at all)."""
    if target_deploy is None:
        return RollbackGuard()
    newer = [m for m in history if m.deploy_id > target_deploy]
    oldest = min(newer, key=lambda m: m.deploy_id) if newer else None
    downs = {s.hook.name: hooks.get(s.hook.down) if s.hook.down else None
             for s in steps if s.run and s.hook.migrates}
    return RollbackGuard(oldest, downs)


def before_rollback(guard: RollbackGuard, migrated: Sequence[Migrated]) -> BeforeRollback:
    """`migrated`: the migrations this deploy ran, in order. An earlier migration newer than the target has
    no down hook at hand (it belongs to its own commit): the rollback stops there."""
    if guard.crossed is not None:
        return BeforeRollback(stop=crossing(guard.crossed.commit, guard.crossed.snapshot))
    if not migrated:
        return BeforeRollback()
    downs = [guard.downs.get(m.hook) for m in reversed(migrated)]
    sentence = crossing(migrated[0].commit, migrated[0].snapshot)
    if any(d is None for d in downs):
        return BeforeRollback(stop=sentence)
    return BeforeRollback(down=tuple(d for d in downs if d is not None), if_down_fails=sentence)

"""The effective stack: what Swarm will run, after loading, interpolation and normalisation. Render,
policy, plan, diff and the spec hash read this model; nothing else parses the stack file.

Every value is resolved: ports and mounts in long form, environment as text, external objects by
their real names, constraints as swarmkit parses them. Keys that swarmops does not read itself are
kept in `rest` (already interpolated) and written back unchanged."""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from swarmops.config.duration import Duration

Version = tuple[int, int]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Port(Model):
    """A published port; protocol and mode stay None where the file leaves them to Docker (tcp, ingress).
    Strict: the CLI refuses `published: true` or `target: "80"`, so the model does not coerce them."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    target: int = Field(ge=1, le=65535)
    published: int | None = Field(None, ge=1, le=65535)
    protocol: Literal["tcp", "udp", "sctp"] | None = None
    mode: Literal["ingress", "host"] | None = None


class Mount(Model):
    type: Literal["volume", "bind", "tmpfs", "npipe", "cluster"]
    target: str
    source: str | None = None           # a top-level volume's key (type volume), a host path (bind)
    read_only: bool = False
    options: dict[str, Any] = Field(default_factory=dict)   # consistency, bind, volume, tmpfs as written


class ObjectRef(Model):
    """A service's use of a secret or config: `source` is the top-level key."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


class NetworkRef(Model):
    key: str
    aliases: tuple[str, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)     # ipv4_address, ipv6_address


class Constraint(Model):
    """A placement constraint as swarmkit reads it: key compared case-insensitively, value trimmed."""

    text: str
    key: str          # lowercased, except the label name after node.labels. / engine.labels.
    op: Literal["==", "!="]
    value: str


class Placement(Model):
    constraints: tuple[Constraint, ...] = ()
    preferences: tuple[str, ...] = ()       # spread descriptors
    max_replicas_per_node: int | None = None


class Deploy(Model):
    mode: Literal["replicated", "global", "replicated-job", "global-job"] | None = None   # None: replicated
    replicas: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    placement: Placement = Field(default_factory=Placement)
    rest: dict[str, Any] = Field(default_factory=dict)       # resources, update_config, restart_policy ...


class Build(Model):
    context: str                 # repo-relative
    dockerfile: str              # repo-relative
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


HookKind = Literal["pre-deploy", "post-deploy", "down"]
DEFAULT_HOOK_TIMEOUT = 300.0


class Extension(Model):
    """A service's `x-swarmops:` as written: what swarmops itself does with the service. A service with a
    `hook:` is not deployed with the stack: swarmops runs it once as a Swarm job (see domain/hooks.py)."""

    hook: HookKind | None = None
    timeout: Duration | None = None      # how long the job may take; 5m when not given
    # a pre-deploy hook that changes this database's schema: swarmops takes a snapshot of it first
    migrates: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")
    down: str | None = None              # the service (hook: down) that undoes it before a rollback across it

    @model_validator(mode="after")
    def _timeout_needs_hook(self) -> Extension:
        if self.timeout is not None and self.hook is None:
            raise ValueError("timeout applies to a hook: add hook: pre-deploy or post-deploy, or remove timeout")
        if self.migrates is not None and self.hook != "pre-deploy":
            raise ValueError("migrates applies to a pre-deploy hook: add hook: pre-deploy, or remove migrates")
        if self.down is not None and self.migrates is None:
            raise ValueError("down names the hook that undoes a migration: add migrates: DATABASE, or remove down")
        if self.timeout is not None and not 0 < self.timeout <= 24 * 3600:
            raise ValueError("timeout must be more than 0s and at most 24h")
        return self


class Hook(Model):
    kind: HookKind
    timeout: float = DEFAULT_HOOK_TIMEOUT   # seconds
    migrates: str | None = None             # the database a migration changes (a snapshot is taken first)
    down: str | None = None                 # the down hook that undoes the migration


class Service(Model):
    name: str
    image: str | None = None
    build: Build | None = None
    environment: dict[str, str] = Field(default_factory=dict)   # env_file entries merged in, in order
    env_files: tuple[str, ...] = ()                             # repo-relative, for the spec hash only
    labels: dict[str, str] = Field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    volumes: tuple[Mount, ...] = ()
    secrets: tuple[ObjectRef, ...] = ()
    configs: tuple[ObjectRef, ...] = ()
    networks: tuple[NetworkRef, ...] | None = None               # None: the stack's default network
    deploy: Deploy = Field(default_factory=Deploy)
    rest: dict[str, Any] = Field(default_factory=dict)           # every other key Docker reads
    hook: Hook | None = None                                      # x-swarmops.hook: run as a job, not deployed


class TopObject(Model):
    """A top-level network, volume, secret or config."""

    key: str
    external: bool = False
    name: str | None = None                 # the Swarm name when external or named explicitly
    file: str | None = None                 # repo-relative (configs, secrets)
    driver: str | None = None
    driver_opts: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    rest: dict[str, Any] = Field(default_factory=dict)

    @property
    def encrypted(self) -> bool:
        return bool(self.file and self.file.endswith(".age"))


class Stack(Model):
    """One stack file, effective."""

    filename: str
    version: Version | None                 # as the file says; None when it has none
    services: dict[str, Service]
    networks: dict[str, TopObject] = Field(default_factory=dict)
    volumes: dict[str, TopObject] = Field(default_factory=dict)
    secrets: dict[str, TopObject] = Field(default_factory=dict)
    configs: dict[str, TopObject] = Field(default_factory=dict)
    lines: dict[str, int] = Field(default_factory=dict, repr=False)   # dotted key path -> line

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.filename)

    def where(self, *path: str | int) -> str:
        """file:line of the nearest key on `path` that has a line."""
        parts = [str(p) for p in path]
        for end in range(len(parts), 0, -1):
            line = self.lines.get(".".join(parts[:end]))
            if line:
                return f"{self.filename}:{line}"
        return self.filename

    def section(self, name: str) -> dict[str, TopObject]:
        objects: dict[str, TopObject] = getattr(self, name)
        return objects

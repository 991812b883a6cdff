"""The app's stack file as Docker reads it: strict load, interpolation from declared variables only,
the effective model, and the build sections. The only way into a stack file."""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dotenv import dotenv_values

from swarmops.domain.compose import schema
from swarmops.domain.compose.gofmt import go_string
from swarmops.domain.compose.interpolate import interpolate
from swarmops.domain.compose.load import Loaded, load
from swarmops.domain.compose.model import Stack
from swarmops.domain.compose.normalize import normalize
from swarmops.errors import InterpolationError, StackError

ReadFile = Callable[[str], bytes]
BUILTIN_PREFIX = "SWARMOPS_"


@dataclass(frozen=True)
class BuildSpec:
    """What `build:` of one service asks for, with repo-relative paths."""

    service: str
    context: str
    dockerfile: str
    args: tuple[tuple[str, str], ...]
    target: str | None


@dataclass(frozen=True)
class Variables:
    """Where `${VAR}` takes its value: swarmops' built-ins, then the app entry's `variables:` (ops),
    then the repo's `.env` (developers). Never the daemon's environment."""

    builtins: Mapping[str, str]
    app: Mapping[str, str]
    dotenv: Mapping[str, str]

    def lookup(self, name: str) -> str | None:
        for source in (self.builtins, self.app, self.dotenv):
            if name in source:
                return source[name]
        return None


def dotenv_path(stack_file: str) -> str:
    return posixpath.join(posixpath.dirname(stack_file), ".env")


def parse_dotenv(text: str, filename: str) -> dict[str, str]:
    """The repo's .env, read as written: no interpolation from this process's environment."""
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    out = {k: v for k, v in values.items() if v is not None}
    for key in out:
        if key.startswith(BUILTIN_PREFIX):
            raise StackError(f"{filename}: {key} is set by swarmops itself; remove it from .env")
    return out


def load_stack(text: str, filename: str, variables: Variables, read_file: ReadFile,
               allow_empty: bool = False) -> Stack:
    """Load, interpolate and normalise; every error names file, line and key."""
    loaded = load(text, filename)
    version = _file_version(loaded)
    try:
        tree = interpolate(loaded.tree, variables.lookup)
    except InterpolationError as e:
        raise StackError(f"{loaded.where(*e.path)}: {e}") from e
    if version is not None:
        problems = schema.key_problems(tree, version)
        if problems:
            path, message = problems[0]
            raise StackError(f"{loaded.where(*path)}: {'.'.join(str(p) for p in path)}: {message}")
    return normalize(Loaded(tree, filename, loaded.lines), version, variables.lookup, read_file, allow_empty)


def _file_version(loaded: Loaded) -> schema.Version | None:
    raw: Any = loaded.tree.get("version")
    if raw is None:
        return None
    try:
        return schema.parse_version(go_string(raw))
    except ValueError:
        raise StackError(f"{loaded.where('version')}: version {raw!r} is not a compose file version the docker "
                         "CLI deploys; use 3.0 to 3.9, or leave it out") from None


def build_specs(stack: Stack) -> dict[str, BuildSpec]:
    """The build section of every service that has one, paths repo-relative."""
    return {name: BuildSpec(service=name, context=svc.build.context, dockerfile=svc.build.dockerfile,
                            args=svc.build.args, target=svc.build.target)
            for name, svc in stack.services.items() if svc.build is not None}


def environment_secret(rel: str, environment: str | None) -> str:
    """Where an environment's copy of a secret file is: `secrets/db.age` -> `secrets/<env>/db.age` (issue 27),
    beside the app's own, so that staging never reads production's."""
    if not environment:
        return rel
    head, _, name = rel.rpartition("/")
    return f"{head}/{environment}/{name}" if head else f"{environment}/{name}"


def with_replicas(stack: Stack, replicas: Mapping[str, int], source: str) -> Stack:
    """The stack with the replicas the app's entry sets per service (ops' values over the file's)."""
    if not replicas:
        return stack
    unknown = sorted(set(replicas) - set(stack.services))
    if unknown:
        raise StackError(f"{source}: key 'replicas': service {unknown[0]!r} is not in {stack.filename}; name one of "
                         f"{', '.join(sorted(stack.services))}", file=stack.filename)
    for name in replicas:
        if stack.services[name].deploy.mode in ("global", "global-job"):
            raise StackError(f"{source}: key 'replicas': service {name!r} runs in {stack.services[name].deploy.mode} "
                             "mode, one task per node: it takes no replicas", file=stack.filename)
    services = {name: svc.model_copy(update={"deploy": svc.deploy.model_copy(update={"replicas": replicas[name]})})
                if name in replicas else svc for name, svc in stack.services.items()}
    return stack.model_copy(update={"services": services})

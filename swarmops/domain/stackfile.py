"""The app's stack file as Docker reads it: loading, shape checks, and the build sections."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap

from swarmops import yamlio
from swarmops.errors import StackError


@dataclass
class Stack:
    """A loaded stack file: the round-trip document (to render from) and where it came from."""

    doc: CommentedMap
    filename: str

    @property
    def directory(self) -> str:
        """Repo-relative directory of the stack file ('' for the repo root)."""
        return posixpath.dirname(self.filename)

    def service_names(self) -> list[str]:
        return [str(k) for k in self.doc.get("services", {}) or {}]

    def where(self, *path: str | int) -> str:
        line = yamlio.line_of(self.doc, path)
        return f"{self.filename}:{line}" if line else self.filename


@dataclass(frozen=True)
class BuildSpec:
    """What `build:` of one service asks for, with repo-relative paths."""

    service: str
    context: str
    dockerfile: str
    args: tuple[tuple[str, str], ...]
    target: str | None


def load_stack(text: str, filename: str, allow_empty: bool = False) -> Stack:
    doc = yamlio.load(text, filename, StackError)
    if not isinstance(doc, CommentedMap):
        raise StackError(f"{filename}: a stack file must be a mapping with a 'services:' key")
    services = doc.get("services")
    if services is None or (isinstance(services, dict) and not services):
        if not allow_empty:
            raise StackError(
                f"{filename}: the stack has no services; deploying it would remove every running "
                "service (set allow_empty: true on the app if that is really wanted)")
        if services is None:
            doc["services"] = CommentedMap()
    elif not isinstance(services, dict):
        raise StackError(f"{filename}: 'services' must be a mapping of service name to definition")
    stack = Stack(doc=doc, filename=filename)
    _string_keys(stack, doc, ())
    for name in stack.service_names():
        if not isinstance(doc["services"][name], dict):
            raise StackError(f"{stack.where('services', name)}: service {name!r} must be a mapping")
    for section in ("configs", "secrets"):
        if not isinstance(doc.get(section) or {}, dict):
            raise StackError(f"{stack.where(section)}: {section!r} must be a mapping of name to definition")
    return stack


def _string_keys(stack: Stack, node: Any, path: tuple[str | int, ...]) -> None:
    """Docker refuses a key that is not a string (`1:`, `null:`, `true:`, `? [a]`) anywhere in the file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                keypath = ".".join(str(p) for p in path) or "the top level"
                raise StackError(f"{stack.where(*path)}: key {key!r} in {keypath} is not a string, which Docker "
                                 "refuses; quote it")
            _string_keys(stack, value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _string_keys(stack, value, (*path, i))


def _inside_repo(path: str, what: str, where: str) -> str:
    norm = posixpath.normpath(path)
    if norm.startswith("../") or norm == ".." or posixpath.isabs(norm):
        raise StackError(f"{where}: {what} {path!r} points outside the repo; use a path inside it")
    return "" if norm == "." else norm


def _build_args(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in raw.items()))
    if isinstance(raw, list):
        pairs = []
        for item in raw:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise StackError(f"{where}: build arg {key!r} has no value; write it as {key}=value")
            pairs.append((key, value))
        return tuple(sorted(pairs))
    raise StackError(f"{where}: build.args must be a mapping or a list of KEY=value")


def build_specs(stack: Stack) -> dict[str, BuildSpec]:
    """The build section of every service that has one, paths made repo-relative."""
    specs: dict[str, BuildSpec] = {}
    for name in stack.service_names():
        service = stack.doc["services"][name]
        raw = service.get("build")
        if raw is None:
            continue
        where = stack.where("services", name, "build")
        if isinstance(raw, str):
            raw = {"context": raw}
        if not isinstance(raw, dict):
            raise StackError(f"{where}: build must be a path or a mapping with context, dockerfile, args")
        context = _inside_repo(posixpath.join(stack.directory, str(raw.get("context", "."))), "context", where)
        dockerfile = _inside_repo(
            posixpath.join(context, str(raw.get("dockerfile", "Dockerfile"))), "dockerfile", where)
        target = raw.get("target")
        specs[name] = BuildSpec(
            service=name, context=context, dockerfile=dockerfile,
            args=_build_args(raw.get("args"), where), target=None if target is None else str(target))
    return specs

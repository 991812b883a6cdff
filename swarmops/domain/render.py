"""Render an app's stack for deploy: image tags, role placement, tracking labels, self-contained
file references. The render never changes a value Docker reads beyond what it must set; the same
inputs always give the same bytes."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

from swarmops import yamlio
from swarmops.domain.stackfile import Stack
from swarmops.errors import StackError

LABEL_PREFIX = "io.swarmops."
APP_LABEL = "io.swarmops.app"
COMMIT_LABEL = "io.swarmops.commit"
SPEC_LABEL = "io.swarmops.spec"
FINGERPRINT_LABEL = "io.swarmops.fingerprint"
STACK_NAMESPACE = "com.docker.stack.namespace"
DEFAULT_VERSION = "3.8"
# infrastructure stacks name mirrored images in the private registry without knowing its address
REGISTRY_VAR = "${SWARMOPS_REGISTRY}"
NAME_LIMIT = 64


@dataclass(frozen=True)
class RenderRequest:
    app: str
    commit: str
    role: str
    allowed_roles: tuple[str, ...]
    role_label: str
    images: Mapping[str, str]            # built service -> image reference
    fingerprints: Mapping[str, str]      # built service -> build fingerprint
    file_digests: Mapping[str, str]      # repo-relative path -> sha256 hex of its content
    deploy_dir: str                      # absolute directory the deploy's files are copied to
    secret_names: Mapping[str, str] = field(default_factory=dict)   # .age secret key -> Swarm secret name
    registry: str = ""                   # replaces ${SWARMOPS_REGISTRY} in image references


@dataclass(frozen=True)
class RenderedService:
    name: str
    image: str
    spec_hash: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    text: str
    services: dict[str, RenderedService]
    files: dict[str, str] = field(default_factory=dict)   # repo-relative source -> absolute copy


def referenced_files(stack: Stack) -> list[str]:
    """Repo-relative paths of every file the stack reads at deploy (env_file, configs, plain secrets);
    age-encrypted secrets are not among them: they never reach the deploy directory."""
    paths: list[str] = []
    for name in stack.service_names():
        for env_file in _as_list(stack.doc["services"][name].get("env_file")):
            paths.append(_repo_path(stack, str(env_file), stack.where("services", name, "env_file")))
    for section in ("configs", "secrets"):
        for key, spec in (stack.doc.get(section) or {}).items():
            if isinstance(spec, dict) and "file" in spec and not _is_age(section, spec):
                paths.append(_repo_path(stack, str(spec["file"]), stack.where(section, key, "file")))
    return sorted(set(paths))


def age_secrets(stack: Stack) -> dict[str, str]:
    """Top-level secrets kept encrypted in the repo: key -> repo-relative path of the .age file."""
    return {str(key): _repo_path(stack, str(spec["file"]), stack.where("secrets", key, "file"))
            for key, spec in (stack.doc.get("secrets") or {}).items() if _is_age("secrets", spec)}


def _is_age(section: str, spec: Any) -> bool:
    return section == "secrets" and isinstance(spec, dict) and str(spec.get("file", "")).endswith(".age")


def render_stack(stack: Stack, req: RenderRequest) -> Rendered:
    doc: CommentedMap = yamlio.detach(stack.doc)
    if "version" not in doc:
        doc.insert(0, "version", Quoted(DEFAULT_VERSION))
    files = {path: posixpath.join(req.deploy_dir, "files", path) for path in referenced_files(stack)}
    object_names = _version_file_objects(stack, doc, req, files)
    services: dict[str, RenderedService] = {}
    for name in stack.service_names():
        svc = doc["services"][name]
        _set_image(stack, name, svc, req)
        _place(stack, name, svc, req)
        env_digests = _rewrite_env_files(stack, name, svc, files, req)
        labels = _own_labels(stack, name, svc)
        spec = yamlio.to_plain(svc)
        spec_hash = _spec_hash(spec, svc, object_names, env_digests)
        labels[APP_LABEL] = Quoted(req.app)
        labels[COMMIT_LABEL] = Quoted(req.commit)
        labels[SPEC_LABEL] = Quoted(spec_hash)
        if name in req.fingerprints:
            labels[FINGERPRINT_LABEL] = Quoted(req.fingerprints[name])
        services[name] = RenderedService(name=name, image=str(svc["image"]), spec_hash=spec_hash, spec=spec)
    return Rendered(text=yamlio.dump(doc), services=services, files=files)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _repo_path(stack: Stack, path: str, where: str) -> str:
    norm = posixpath.normpath(posixpath.join(stack.directory, path))
    if norm.startswith("../") or norm == ".." or posixpath.isabs(path):
        raise StackError(f"{where}: {path!r} points outside the repo; keep referenced files in the repo")
    return norm


def _set_image(stack: Stack, name: str, svc: CommentedMap, req: RenderRequest) -> None:
    if "build" in svc:
        del svc["build"]
    if name in req.images:
        svc["image"] = Quoted(req.images[name])
    elif "image" in svc and REGISTRY_VAR in str(svc["image"]):
        svc["image"] = Quoted(str(svc["image"]).replace(REGISTRY_VAR, req.registry))
    elif "image" not in svc:
        raise StackError(f"{stack.where('services', name)}: service {name!r} has neither image nor build; "
                         "add one of them")


def _place(stack: Stack, name: str, svc: CommentedMap, req: RenderRequest) -> None:
    """Constrain the service to the app's role unless it names a role itself."""
    deploy = _mapping(stack, svc, ("services", name, "deploy"))
    placement = _mapping(stack, deploy, ("services", name, "deploy", "placement"))
    constraints = placement.get("constraints")
    if constraints is None:
        constraints = placement["constraints"] = CommentedSeq()
    if not isinstance(constraints, list):
        raise StackError(f"{stack.where('services', name, 'deploy', 'placement', 'constraints')}: "
                         f"services.{name}.deploy.placement.constraints must be a list, like "
                         "[node.labels.role == app]")
    role_expr = re.compile(rf"^\s*node\.labels\.{re.escape(req.role_label)}\s*==")
    if any(role_expr.match(str(c)) for c in constraints):
        return   # the service names its role itself; policy decides whether it may
    constraints.append(Quoted(f"node.labels.{req.role_label} == {req.role}"))


def _mapping(stack: Stack, parent: CommentedMap, path: tuple[str, ...]) -> CommentedMap:
    """parent[path[-1]], made an empty mapping if absent; `path` from the top names it in errors."""
    value = parent.get(path[-1])
    if value is None:
        value = parent[path[-1]] = CommentedMap()
    if not isinstance(value, CommentedMap):
        raise StackError(f"{stack.where(*path)}: {'.'.join(path)} must be a mapping")
    return value


def _own_labels(stack: Stack, name: str, svc: CommentedMap) -> CommentedMap:
    """deploy.labels as a mapping, without any io.swarmops.* label the file tried to set."""
    deploy = _mapping(stack, svc, ("services", name, "deploy"))
    raw = deploy.get("labels")
    labels = CommentedMap()
    if isinstance(raw, dict):
        for k, v in raw.items():
            labels[k] = v
    elif isinstance(raw, list):
        for item in raw:
            k, _, v = str(item).partition("=")
            labels[k] = Quoted(v)
    elif raw is not None:
        raise StackError(f"{stack.where('services', name, 'deploy', 'labels')}: services.{name}.deploy.labels "
                         "must be a mapping or a list of key=value")
    for k in [k for k in labels if str(k).startswith(LABEL_PREFIX)]:
        del labels[k]
    deploy["labels"] = labels
    return labels


def _rewrite_env_files(stack: Stack, name: str, svc: CommentedMap, files: Mapping[str, str],
                       req: RenderRequest) -> dict[str, str]:
    if "env_file" not in svc:
        return {}
    where = stack.where("services", name, "env_file")
    rel = [_repo_path(stack, str(p), where) for p in _as_list(svc["env_file"])]
    svc["env_file"] = CommentedSeq([Quoted(files[p]) for p in rel])
    return {p: req.file_digests.get(p, "") for p in rel}


def _version_file_objects(stack: Stack, doc: CommentedMap, req: RenderRequest,
                          files: Mapping[str, str]) -> dict[str, str]:
    """Give file-based configs and secrets a content-derived name: Swarm objects are immutable."""
    names: dict[str, str] = {}
    for section in ("configs", "secrets"):
        for key, spec in (doc.get(section) or {}).items():
            if not isinstance(spec, dict) or "file" not in spec:
                continue
            if _is_age(section, spec):
                if str(key) not in req.secret_names:
                    raise StackError(f"{stack.where(section, key)}: secret {key!r} was not decrypted")
                doc[section][key] = CommentedMap([("external", True), ("name", Quoted(req.secret_names[str(key)]))])
                names[f"{section}/{key}"] = req.secret_names[str(key)]
                continue
            rel = _repo_path(stack, str(spec["file"]), stack.where(section, key, "file"))
            digest = req.file_digests.get(rel, "")
            spec["file"] = Quoted(files[rel])
            if "name" not in spec:
                spec["name"] = Quoted(versioned_name(req.app, str(key), digest))
            names[f"{section}/{key}"] = str(spec["name"])
    return names


def versioned_name(app: str, key: str, digest: str) -> str:
    base = f"{app}_{key}"[: NAME_LIMIT - 9]
    return f"{base}_{digest[:8]}"


def _spec_hash(spec: dict[str, Any], svc: CommentedMap, object_names: Mapping[str, str],
               env_digests: Mapping[str, str]) -> str:
    """Hash of what Docker runs: the service (tracking labels and file paths aside), the names of the
    configs and secrets it uses, and the content of its env files."""
    spec = dict(spec)
    spec.pop("env_file", None)
    used = {}
    for section in ("configs", "secrets"):
        for ref in _as_list(svc.get(section)):
            key = str(ref.get("source")) if isinstance(ref, dict) else str(ref)
            used[f"{section}/{key}"] = object_names.get(f"{section}/{key}", key)
    material = {"service": spec, "objects": used, "env_files": sorted(env_digests.values())}
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

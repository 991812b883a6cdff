"""Render an app's effective stack for deploy: image tags, role placement, tracking labels, versioned
and external object names, files in the deploy directory. Pure: the same inputs give the same bytes,
and the file leaves the docker CLI nothing to interpret (see compose/emit.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmops.domain.compose import schema
from swarmops.domain.compose.emit import dump, object_doc, service_doc
from swarmops.domain.compose.hooks import IGNORED_DEPLOY_KEYS, IGNORED_KEYS, hooks_of, ignored_keys
from swarmops.domain.compose.model import Constraint, ObjectRef, Service, Stack, TopObject, Version
from swarmops.domain.hooks import RenderedHook, job_name, job_spec
from swarmops.domain.ssolabels import SsoKey, read_routers
from swarmops.errors import StackError

LABEL_PREFIX = "io.swarmops."
APP_LABEL = "io.swarmops.app"
COMMIT_LABEL = "io.swarmops.commit"
SPEC_LABEL = "io.swarmops.spec"
FINGERPRINT_LABEL = "io.swarmops.fingerprint"
HOOK_LABEL = "io.swarmops.hook"          # on a hook's job: the hook's service key
HOOKS_LABEL = "io.swarmops.hooks"        # on the services: name:spec-hash of each hook of the deployed commit
STACK_NAMESPACE = "com.docker.stack.namespace"
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
    cli_versions: tuple[Version, ...] = schema.CLI_28                 # schema versions the deploy CLI knows
    sso: SsoKey | None = None            # the key the services behind the SSO middleware check Polise with


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
    doc: dict[str, Any] = field(default_factory=dict)     # the rendered stack as plain data, unescaped
    version: Version = (3, 8)
    hooks: dict[str, RenderedHook] = field(default_factory=dict)   # run as jobs, not in the file for the CLI

    @property
    def policy_doc(self) -> dict[str, Any]:
        """What the policy judges: the file for the CLI, with each hook beside the services as it will run."""
        if not self.hooks:
            return self.doc
        return {**self.doc, "services": {**self.doc.get("services", {}),
                                         **{name: h.doc for name, h in self.hooks.items()}}}


def referenced_files(stack: Stack) -> list[str]:
    """Repo-relative paths of the config and plain secret files the deploy directory needs; env files
    are merged into the environment, and age secrets never reach the disk."""
    return sorted({obj.file for section in ("configs", "secrets") for obj in stack.section(section).values()
                   if obj.file and not obj.encrypted})


def age_secrets(stack: Stack) -> dict[str, str]:
    """Top-level secrets kept encrypted in the repo: key -> repo-relative path of the .age file."""
    return {key: obj.file for key, obj in stack.secrets.items() if obj.file and obj.encrypted}


def versioned_name(app: str, key: str, digest: str) -> str:
    base = f"{app}_{key}"[: NAME_LIMIT - 9]
    return f"{base}_{digest[:8]}"


def render_stack(stack: Stack, req: RenderRequest) -> Rendered:
    renames, objects = _objects(stack, req)
    hook_services = hooks_of(stack)
    services = _with_sso_key({name: _service(stack, svc, req, renames) for name, svc in stack.services.items()
                              if name not in hook_services}, req)
    version = _version(stack, req)
    hooks = {name: _hook(stack, svc, req, renames, version) for name, svc in hook_services.items()}
    docs = {name: service_doc(svc, version) for name, svc in services.items()}
    rendered: dict[str, RenderedService] = {}
    for name, svc in services.items():
        spec = copy.deepcopy(docs[name])
        spec_hash = _spec_hash(spec)
        docs[name].setdefault("deploy", {}).setdefault("labels", {}).update(_tracking(name, req, spec_hash, hooks))
        rendered[name] = RenderedService(name, str(svc.image), spec_hash, spec)
    doc: dict[str, Any] = {"services": docs}
    for section, entries in objects.items():
        if entries:
            doc[section] = {key: object_doc(obj) for key, obj in entries.items()}
    final = version or schema.lowest_version(doc, req.cli_versions)
    if final is None:
        raise StackError(f"{stack.filename}: no compose version the deploy CLI knows "
                         f"(up to {_text(req.cli_versions[-1])}) allows every key of this stack")
    _check_keys(stack, doc, final)
    files = {path: posixpath.join(req.deploy_dir, "files", path) for path in referenced_files(stack)}
    header = f"rendered by swarmops from {stack.filename} at {req.commit[:12]}"
    if version is None:
        header += f"; the file has no version: {_text(final)} is the lowest that has every key it uses"
    return Rendered(text=dump(doc, final, header), services=rendered, files=files, doc=doc, version=final,
                    hooks=hooks)


def _version(stack: Stack, req: RenderRequest) -> Version | None:
    if stack.version is not None and stack.version not in req.cli_versions:
        raise StackError(f"{stack.where('version')}: version {_text(stack.version)} is not one the deploy CLI "
                         f"knows ({_text(req.cli_versions[0])} to {_text(req.cli_versions[-1])}); change version:")
    return stack.version


def _check_keys(stack: Stack, doc: dict[str, Any], version: Version) -> None:
    problems = schema.key_problems(doc, version)
    if problems:
        path, message = problems[0]
        raise StackError(f"{stack.where(*path)}: {'.'.join(str(p) for p in path)}: {message}")


def _text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _objects(stack: Stack, req: RenderRequest) -> tuple[dict[tuple[str, str], str], dict[str, dict[str, TopObject]]]:
    """Top-level objects as written to the render, and the key each one takes there: an external
    object's key is its real name, a file-based one gets a content-derived suffix (Swarm objects are
    immutable), an age secret becomes the external secret swarmops creates."""
    renames: dict[tuple[str, str], str] = {}
    out: dict[str, dict[str, TopObject]] = {}
    for section in ("networks", "volumes", "secrets", "configs"):
        entries: dict[str, TopObject] = {}
        for key, obj in stack.section(section).items():
            new_key, new_obj = _object(stack, section, key, obj, req)
            if new_key in entries:
                raise StackError(f"{stack.where(section, key)}: {section}.{key} would take the name {new_key!r}, "
                                 "which another entry has; rename one")
            entries[new_key] = new_obj
            renames[(section, key)] = new_key
        out[section] = entries
    return renames, out


def _object(stack: Stack, section: str, key: str, obj: TopObject, req: RenderRequest) -> tuple[str, TopObject]:
    if obj.encrypted:
        if key not in req.secret_names:
            raise StackError(f"{stack.where(section, key)}: secret {key!r} was not decrypted")
        name = req.secret_names[key]
        return name, TopObject(key=name, external=True, name=name)
    if obj.external:
        return str(obj.name), obj.model_copy(update={"key": str(obj.name)})
    if obj.file is None:
        return key, obj
    digest = req.file_digests.get(obj.file, "")[:8]
    copy = posixpath.join(req.deploy_dir, "files", obj.file)
    if obj.name is not None:
        return key, obj.model_copy(update={"file": copy, "name": f"{obj.name[:NAME_LIMIT - 9]}_{digest}"})
    new_key = f"{key[: max(1, NAME_LIMIT - 9 - len(req.app) - 1)]}_{digest}"
    return new_key, obj.model_copy(update={"key": new_key, "file": copy})


def _service(stack: Stack, svc: Service, req: RenderRequest, renames: Mapping[tuple[str, str], str]) -> Service:
    image = req.images.get(svc.name, svc.image)
    if image is None:
        raise StackError(f"{stack.where('services', svc.name)}: service {svc.name!r} has neither image nor build; "
                         "add one of them")
    # tracking labels the file sets are overwritten below; the restricted policy refuses any other io.swarmops.*
    deploy = svc.deploy.model_copy(update={"placement": _placed(svc, req)})
    networks = None if svc.networks is None else tuple(
        n.model_copy(update={"key": renames.get(("networks", n.key), n.key)}) for n in svc.networks)
    volumes = tuple(m.model_copy(update={"source": renames.get(("volumes", m.source or ""), m.source)})
                    if m.type == "volume" else m for m in svc.volumes)
    return svc.model_copy(update={
        "image": image, "build": None, "deploy": deploy, "networks": networks, "volumes": volumes,
        "secrets": tuple(_ref(r, renames.get(("secrets", r.source), r.source), r.source) for r in svc.secrets),
        "configs": tuple(_ref(r, renames.get(("configs", r.source), r.source), "/" + r.source)
                         for r in svc.configs)})


def _with_sso_key(services: dict[str, Service], req: RenderRequest) -> dict[str, Service]:
    """Polise's key and the app's name on every service of an app that has a router behind the SSO
    middleware, over any value the file gives them: an app that chose its own key would trust tokens it
    signed itself. Every service, not only those whose labels name the router: a router can forward to a
    service another service's labels define (`traefik.http.routers.<r>.service=<svc>`)."""
    if req.sso is None or not read_routers(
            {name: svc.deploy.labels for name, svc in services.items()}).behind(req.sso.middleware):
        return services
    env = req.sso.environment(req.app)
    return {name: svc.model_copy(update={"environment": {**svc.environment, **env}})
            for name, svc in services.items()}


def _ref(ref: ObjectRef, key: str, default_target: str) -> ObjectRef:
    """A reference to a renamed object keeps the target the original key gave it."""
    if key == ref.source:
        return ref
    return ref.model_copy(update={"source": key, "target": ref.target or default_target})


def _placed(svc: Service, req: RenderRequest) -> Any:
    """The app's role constraint, unless the service names a role itself (the policy decides whether
    it may)."""
    placement = svc.deploy.placement
    role_key = f"node.labels.{req.role_label}"
    if any(c.key == role_key and c.op == "==" for c in placement.constraints):
        return placement
    text = f"{role_key} == {req.role}"
    added = Constraint(text=text, key=role_key, op="==", value=req.role)
    return placement.model_copy(update={"constraints": (*placement.constraints, added)})


def _tracking(name: str, req: RenderRequest, spec_hash: str, hooks: Mapping[str, RenderedHook]) -> dict[str, str]:
    labels = {APP_LABEL: req.app, COMMIT_LABEL: req.commit, SPEC_LABEL: spec_hash}
    if name in req.fingerprints:
        labels[FINGERPRINT_LABEL] = req.fingerprints[name]
    if hooks:   # a service label: the next commit tells whether a hook's own spec changed, without local state
        labels[HOOKS_LABEL] = hooks_label(hooks)
    return labels


def hooks_label(hooks: Mapping[str, RenderedHook]) -> str:
    return ",".join(f"{name}:{h.spec_hash}" for name, h in sorted(hooks.items()))


def parse_hooks_label(text: str) -> dict[str, str]:
    """HOOKS_LABEL's value: hook -> spec hash."""
    return dict(item.partition(":")[::2] for item in text.split(",") if ":" in item)


def _hook(stack: Stack, svc: Service, req: RenderRequest, renames: Mapping[tuple[str, str], str],
          version: Version | None) -> RenderedHook:
    """A hook service rendered like a service (image, role constraint, Swarm names of its secrets and
    objects), without what a one-off job has no use for, into its job."""
    assert svc.hook is not None
    bare = svc.model_copy(update={
        "ports": (), "rest": {k: v for k, v in svc.rest.items() if k not in IGNORED_KEYS},
        "deploy": svc.deploy.model_copy(update={
            "mode": None, "replicas": None,
            "rest": {k: v for k, v in svc.deploy.rest.items() if k not in IGNORED_DEPLOY_KEYS}})})
    model = _service(stack, bare, req, renames)
    doc = service_doc(model, version)
    spec_hash = _spec_hash({**doc, "x-swarmops": svc.hook.model_dump(exclude_none=True)})
    labels = {**model.deploy.labels, APP_LABEL: req.app, COMMIT_LABEL: req.commit, HOOK_LABEL: svc.name,
              SPEC_LABEL: spec_hash}
    doc["deploy"] = {**doc.get("deploy", {}), "mode": "replicated-job", "restart_policy": {"condition": "none"},
                     "labels": dict(sorted(labels.items()))}
    name = job_name(req.app, svc.name)
    if len(name) > NAME_LIMIT - 1:
        raise StackError(f"{stack.where('services', svc.name)}: the job of hook {svc.name!r} would be named {name!r}, "
                         f"longer than Swarm's 63 characters; use a shorter service key")

    def fail(path: tuple[str, ...], message: str) -> StackError:
        return StackError(f"{stack.where('services', svc.name, *path)}: services.{svc.name}.{'.'.join(path)}: "
                          f"{message}")
    volumes = {key: obj.name or f"{req.app}_{key}" for key, obj in stack.volumes.items()}
    volumes |= {str(obj.name): str(obj.name) for obj in stack.volumes.values() if obj.external}
    return RenderedHook(name=svc.name, kind=svc.hook.kind, timeout=svc.hook.timeout, image=str(model.image),
                        spec_hash=spec_hash, doc=doc, job=job_spec(model, name, labels, volumes, fail),
                        ignored=ignored_keys(svc), migrates=svc.hook.migrates, down=svc.hook.down)


def _spec_hash(doc: dict[str, Any]) -> str:
    """Hash of what Docker runs: the rendered service without tracking labels. Names of versioned
    configs and secrets, and the environment from env files, are part of it. The image counts by its tag:
    a reused image is pinned to its digest, a new one is not yet, and both are the same image."""
    material = {**doc, "image": str(doc.get("image", "")).partition("@")[0]}
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

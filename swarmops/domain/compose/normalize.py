"""From the loaded, interpolated tree to the effective model: services, deploy, placement, references
and top-level objects (the short forms are read in shapes.py). Paths from the repo are resolved and kept
inside it; anything Docker would read differently than written is refused with file:line."""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import ValidationError

from swarmops.domain.compose.hooks import check_hooks
from swarmops.domain.compose.load import Loaded
from swarmops.domain.compose.model import (
    DEFAULT_HOOK_TIMEOUT,
    Build,
    Constraint,
    Deploy,
    Extension,
    Hook,
    NetworkRef,
    ObjectRef,
    Placement,
    Service,
    Stack,
    TopObject,
    Version,
)
from swarmops.domain.compose.shapes import Lookup, Reader, ReadFile, parse_constraint

_TOP = ("version", "services", "networks", "volumes", "secrets", "configs")
MAX_FILES = 200


class Normalizer(Reader):
    def stack(self, version: Version | None, allow_empty: bool) -> Stack:
        tree = self.loaded.tree
        for key in tree:
            if key not in _TOP and not key.startswith("x-"):
                raise self.fail((key,), f"{key!r} is not a top-level key of a stack file; remove it")
        services = self.mapping(tree.get("services"), ("services",))
        if not services and not allow_empty:
            raise self.fail(("services",), "the stack has no services; deploying it would remove every running "
                            "service (set allow_empty: true on the app if that is really wanted)")
        objects = {s: {k: self.top_object(s, k, v) for k, v in self.named(tree.get(s), (s,)).items()}
                   for s in ("networks", "volumes", "secrets", "configs")}
        if len(objects["configs"]) + len(objects["secrets"]) > MAX_FILES:   # each one is a file read from git
            raise self.fail(("configs",), f"more than {MAX_FILES} configs and secrets; a stack needs far fewer")
        built = {name: self.service(name, spec) for name, spec in self.named(services, ("services",)).items()}
        stack = Stack(filename=self.loaded.filename, version=version, services=built,
                      lines={".".join(str(p) for p in k): v for k, v in self.loaded.lines.items()}, **objects)
        self.check_references(stack)
        check_hooks(stack, self.fail, allow_empty)
        return stack

    # -- services -----------------------------------------------------------------------------------

    def service(self, name: str, raw: Any) -> Service:
        path: tuple[str | int, ...] = ("services", name)
        spec = self.mapping(raw, path)
        known = {"image", "build", "environment", "env_file", "labels", "ports", "volumes", "secrets", "configs",
                 "networks", "deploy"}
        rest = {k: v for k, v in spec.items() if k not in known and not k.startswith("x-")}
        return Service(
            name=name,
            image=None if spec.get("image") is None else self.text(spec["image"], (*path, "image")),
            build=self.build(spec.get("build"), (*path, "build")),
            environment=self.environment(spec, path),
            env_files=tuple(self.env_file_paths(spec.get("env_file"), (*path, "env_file"))),
            labels=self.string_map(spec.get("labels"), (*path, "labels")),
            ports=tuple(p for i, raw_port in enumerate(self.listing(spec.get("ports"), (*path, "ports")))
                        for p in self.ports(raw_port, (*path, "ports", i))),
            volumes=tuple(self.mount(v, (*path, "volumes", i))
                          for i, v in enumerate(self.listing(spec.get("volumes"), (*path, "volumes")))),
            secrets=self.refs(spec.get("secrets"), (*path, "secrets")),
            configs=self.refs(spec.get("configs"), (*path, "configs")),
            networks=self.networks(spec.get("networks"), (*path, "networks")),
            deploy=self.deploy(spec.get("deploy"), (*path, "deploy")),
            rest=rest,
            hook=self.hook(spec.get("x-swarmops"), (*path, "x-swarmops")))

    def hook(self, raw: Any, path: tuple[str | int, ...]) -> Hook | None:
        """`x-swarmops:` of a service, validated by its pydantic model; errors name file, line and key."""
        if raw is None:
            return None
        try:
            ext = Extension.model_validate(self.mapping(raw, path))
        except ValidationError as e:
            first = e.errors()[0]
            loc = tuple(p for p in first["loc"] if isinstance(p, str | int))
            allowed = ", ".join(Extension.model_fields)
            message = (f"is not a key of x-swarmops (it has {allowed})" if first["type"] == "extra_forbidden"
                       else "must be pre-deploy, post-deploy or down" if loc == ("hook",)
                       else "must be the name of the database (letters, digits and _)" if loc == ("migrates",)
                       else str(first["msg"]).removeprefix("Value error, "))
            raise self.fail((*path, *loc), message) from None
        if ext.hook is None:
            return None
        return Hook(kind=ext.hook, timeout=DEFAULT_HOOK_TIMEOUT if ext.timeout is None else ext.timeout,
                    migrates=ext.migrates, down=ext.down)

    def build(self, raw: Any, path: tuple[str | int, ...]) -> Build | None:
        if raw is None:
            return None
        spec = {"context": raw} if isinstance(raw, str) else self.mapping(raw, path)
        context = self.repo_path(spec.get("context", "."), (*path, "context"))
        dockerfile = self.text(spec.get("dockerfile", "Dockerfile"), (*path, "dockerfile"))
        if dockerfile.startswith(("/", "~")):
            raise self.fail((*path, "dockerfile"), "must be a path inside the build context")
        dockerfile_path = posixpath.normpath(posixpath.join(context or ".", dockerfile))
        if dockerfile_path == ".." or dockerfile_path.startswith("../"):
            raise self.fail((*path, "dockerfile"), f"{dockerfile!r} points outside the repo")
        args = self.string_map(spec.get("args"), (*path, "args"))
        target = spec.get("target")
        return Build(context=context, dockerfile=dockerfile_path, args=tuple(sorted(args.items())),
                     target=None if target is None else self.text(target, (*path, "target")))

    def refs(self, raw: Any, path: tuple[str | int, ...]) -> tuple[ObjectRef, ...]:
        out = []
        for i, item in enumerate(self.listing(raw, path)):
            if isinstance(item, str):
                out.append(ObjectRef(source=item))
                continue
            spec = self.mapping(item, (*path, i))
            extra = set(spec) - {"source", "target", "uid", "gid", "mode"}
            if extra or not isinstance(spec.get("source"), str):
                raise self.fail((*path, i), "a reference is a name, or a mapping of source, target, uid, gid, mode")
            mode = spec.get("mode")
            if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int)):
                raise self.fail((*path, i, "mode"), "must be a number, like 0440")
            out.append(ObjectRef(source=spec["source"], mode=mode,
                                 **{k: self.text(spec[k], (*path, i, k)) for k in ("target", "uid", "gid")
                                    if spec.get(k) is not None}))
        return tuple(out)

    def networks(self, raw: Any, path: tuple[str | int, ...]) -> tuple[NetworkRef, ...] | None:
        if raw is None:
            return None
        if isinstance(raw, list):
            return tuple(NetworkRef(key=self.text(k, (*path, i))) for i, k in enumerate(raw))
        out = []
        for key, spec in self.mapping(raw, path).items():
            spec = self.mapping(spec, (*path, key))
            extra = set(spec) - {"aliases", "ipv4_address", "ipv6_address"}
            if extra:
                raise self.fail((*path, key, sorted(extra)[0]), "is not a network attachment key Docker knows")
            aliases = tuple(self.text(a, (*path, key, "aliases", i))
                            for i, a in enumerate(self.listing(spec.get("aliases"), (*path, key, "aliases"))))
            out.append(NetworkRef(key=key, aliases=aliases,
                                  options={k: v for k, v in spec.items() if k != "aliases" and v is not None}))
        return tuple(out)

    def deploy(self, raw: Any, path: tuple[str | int, ...]) -> Deploy:
        spec = self.mapping(raw, path)
        mode = spec.get("mode")
        if mode not in (None, "replicated", "global", "replicated-job", "global-job"):
            raise self.fail((*path, "mode"), "must be replicated, global, replicated-job or global-job")
        replicas = spec.get("replicas")
        if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
            raise self.fail((*path, "replicas"), "must be a whole number")
        return Deploy(mode=mode, replicas=replicas, labels=self.string_map(spec.get("labels"), (*path, "labels")),
                      placement=self.placement(spec.get("placement"), (*path, "placement")),
                      rest={k: v for k, v in spec.items() if k not in ("mode", "replicas", "labels", "placement")})

    def placement(self, raw: Any, path: tuple[str | int, ...]) -> Placement:
        spec = self.mapping(raw, path)
        extra = set(spec) - {"constraints", "preferences", "max_replicas_per_node"}
        if extra:
            raise self.fail((*path, sorted(extra)[0]), "is not a placement key Docker knows")
        constraints = tuple(self.constraint(c, (*path, "constraints", i))
                            for i, c in enumerate(self.listing(spec.get("constraints"), (*path, "constraints"))))
        preferences = []
        for i, pref in enumerate(self.listing(spec.get("preferences"), (*path, "preferences"))):
            pref = self.mapping(pref, (*path, "preferences", i))
            if set(pref) != {"spread"}:
                raise self.fail((*path, "preferences", i), "a preference is {spread: node.labels.NAME}")
            preferences.append(self.text(pref["spread"], (*path, "preferences", i, "spread")))
        most = spec.get("max_replicas_per_node")
        if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 0):
            raise self.fail((*path, "max_replicas_per_node"), "must be a whole number")
        return Placement(constraints=constraints, preferences=tuple(preferences), max_replicas_per_node=most)

    def constraint(self, raw: Any, path: tuple[str | int, ...]) -> Constraint:
        text = self.text(raw, path, "a constraint like node.labels.role == app")
        return parse_constraint(text, lambda message: self.fail(path, message))

    # -- top-level objects --------------------------------------------------------------------------

    def top_object(self, section: str, key: str, raw: Any) -> TopObject:
        path: tuple[str | int, ...] = (section, key)
        spec = self.mapping(raw, path)
        external = spec.get("external", False)
        name = spec.get("name")
        if isinstance(external, dict):     # the deprecated external: {name: X}
            if set(external) - {"name"}:
                raise self.fail((*path, "external"), "external is true, or the deprecated {name: NAME}")
            if name is not None and external.get("name") not in (None, name):
                raise self.fail((*path, "external"), "names differ in name: and external.name; keep one")
            name = external.get("name", name)
            external = True
        if not isinstance(external, bool):
            raise self.fail((*path, "external"), "must be true or false")
        if external and name is None:
            name = key
        file = spec.get("file")
        if file is not None and section not in ("secrets", "configs"):
            raise self.fail((*path, "file"), f"{section} have no file:")
        known = {"external", "name", "file", "driver", "driver_opts", "labels"}
        return TopObject(
            key=key, external=external, name=None if name is None else self.text(name, (*path, "name")),
            file=None if file is None else self.repo_path(file, (*path, "file")),
            driver=None if spec.get("driver") is None else self.text(spec["driver"], (*path, "driver")),
            driver_opts=self.string_map(spec.get("driver_opts"), (*path, "driver_opts")),
            labels=self.string_map(spec.get("labels"), (*path, "labels")),
            rest={k: v for k, v in spec.items() if k not in known and not k.startswith("x-")})

    def check_references(self, stack: Stack) -> None:
        for name, svc in stack.services.items():
            for section, refs in (("secrets", svc.secrets), ("configs", svc.configs)):
                for i, ref in enumerate(refs):
                    if ref.source not in stack.section(section):
                        raise self.fail(("services", name, section, i), f"{section[:-1]} {ref.source!r} is not "
                                        f"declared under the top-level {section}:")
            for net in svc.networks or ():
                if net.key not in stack.networks and net.key != "default":
                    raise self.fail(("services", name, "networks"), f"network {net.key!r} is not declared under "
                                    "the top-level networks:")
            for i, mount in enumerate(svc.volumes):
                if mount.type == "volume" and mount.source and mount.source not in stack.volumes:
                    raise self.fail(("services", name, "volumes", i), f"volume {mount.source!r} is not declared "
                                    "under the top-level volumes:")


def normalize(loaded: Loaded, version: Version | None, lookup: Lookup, read_file: ReadFile,
              allow_empty: bool = False) -> Stack:
    return Normalizer(loaded, lookup, read_file).stack(version, allow_empty)

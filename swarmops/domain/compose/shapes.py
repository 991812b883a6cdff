"""The shapes of a stack file's values and the short forms the docker CLI reads (environment and env
files, ports, mounts): one reader whose every error names file, line and key path."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from swarmops.domain.compose.gofmt import go_string
from swarmops.domain.compose.load import Loaded
from swarmops.domain.compose.model import Constraint, Mount, Port
from swarmops.errors import StackError

Lookup = Callable[[str], str | None]
ReadFile = Callable[[str], bytes]

# Compose's own pattern for service and object names, without the two that are paths
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")                                 # fullmatch: no "\n" at the end
# swarmkit's constraint key and value, in ASCII only: Go's case folding also matches U+017F as "s" and
# U+212A as "k", so a key spelt with them would reach swarmkit as node.hostname
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9\-_.]+")
_VALUE = re.compile(r"[A-Za-z0-9:\-_ \t.*()?+\[\]\\^$|/]+")
_DIGITS = re.compile(r"[0-9]+")
# the CLI puts its own environment's value in place of an empty one: these are the deploy CLI's variables
DEPLOY_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "DOCKER_HOST", "DOCKER_CONFIG"})
MAX_ENV_LINE = 64 * 1024
MAX_ENV_FILES = 20
_PROPAGATION = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}
MAX_ENV_FILE = 256 * 1024



class Reader:
    def __init__(self, loaded: Loaded, lookup: Lookup, read_file: ReadFile) -> None:
        self.loaded = loaded
        self.lookup = lookup
        self.read_file = read_file
        self.directory = posixpath.dirname(loaded.filename)

    def fail(self, path: tuple[str | int, ...], message: str) -> StackError:
        dotted = ".".join(str(p) for p in path)
        return StackError(f"{self.loaded.where(*path)}: {dotted}: {message}" if dotted else
                          f"{self.loaded.where()}: {message}")

    def mapping(self, value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        return value

    def listing(self, value: Any, path: tuple[str | int, ...]) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "must be a list")
        return value

    def named(self, value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        out = self.mapping(value, path)
        for name in out:
            if not NAME.fullmatch(name) or ".." in name:
                raise self.fail((*path, name), f"name {name!r} is not allowed: use letters, digits, '.', '_' and "
                                "'-', starting with a letter or digit")
        return out

    def text(self, value: Any, path: tuple[str | int, ...], what: str = "text") -> str:
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            raise self.fail(path, f"must be {what}")
        return go_string(value)

    def string_map(self, value: Any, path: tuple[str | int, ...], null: str | None = "") -> dict[str, str]:
        """labels, driver_opts: a mapping, or a list of key=value."""
        out: dict[str, str] = {}
        if isinstance(value, list):
            for i, item in enumerate(value):
                key, sep, val = self.text(item, (*path, i)).partition("=")
                out[key] = val if sep else (null or "")
            return out
        for key, val in self.mapping(value, path).items():
            out[key] = (null or "") if val is None else self.text(val, (*path, key), "text or a number")
        return out

    def repo_path(self, raw: Any, path: tuple[str | int, ...]) -> str:
        text = self.text(raw, path, "a path")
        if text.startswith(("/", "~")):
            raise self.fail(path, f"{text!r} is a path on the host; use a path inside the repo")
        norm = posixpath.normpath(posixpath.join(self.directory, text))
        if norm == ".." or norm.startswith("../") or norm.startswith("/"):
            raise self.fail(path, f"{text!r} points outside the repo; use a path inside it")
        return "" if norm == "." else norm

    # -- short forms --------------------------------------------------------------------------------

    def env_file_paths(self, raw: Any, path: tuple[str | int, ...]) -> list[str]:
        items = raw if isinstance(raw, list) else [] if raw is None else [raw]
        if len(items) > MAX_ENV_FILES:
            raise self.fail(path, f"more than {MAX_ENV_FILES} env files; merge them")
        return [self.repo_path(item, (*path, i) if isinstance(raw, list) else path) for i, item in enumerate(items)]

    def environment(self, spec: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, str]:
        """env_file entries in order, then `environment:` over them; a key with no value takes the
        declared variables (the CLI would take its own environment) or is refused."""
        env: dict[str, str] = {}
        for rel in self.env_file_paths(spec.get("env_file"), (*path, "env_file")):
            env.update(self.env_file(rel, (*path, "env_file")))
        raw = spec.get("environment")
        items: list[tuple[str, Any, tuple[str | int, ...]]]
        if isinstance(raw, list):
            items = []
            for i, item in enumerate(raw):
                key, sep, val = self.text(item, (*path, "environment", i)).partition("=")
                items.append((key, val if sep else None, (*path, "environment", i)))
        else:
            items = [(k, v, (*path, "environment", k)) for k, v in self.mapping(raw, (*path, "environment")).items()]
        for key, val, where in items:
            env[key] = self.env_value(key, val, where)
        return env

    def env_value(self, key: str, val: Any, where: tuple[str | int, ...]) -> str:
        if val == "" and key in DEPLOY_ENV:
            raise self.fail(where, f"an empty {key} is replaced by the docker CLI's own {key}; give it a value")
        if val is None:
            found = self.lookup(key)
            if found is None:
                raise self.fail(where, f"environment variable {key} has no value; the docker CLI would take it "
                                "from its own environment: give it a value, or set it in the app's variables: "
                                "or the repo's .env")
            return found
        return self.text(val, where, "text or a number")

    def env_file(self, rel: str, where: tuple[str | int, ...]) -> dict[str, str]:
        data = self.read_file(rel)
        if len(data) > MAX_ENV_FILE:
            raise self.fail(where, f"{rel} is larger than {MAX_ENV_FILE // 1024} KiB")
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise self.fail(where, f"{rel} is not UTF-8 text") from None
        out: dict[str, str] = {}
        for number, line in enumerate(text.split("\n"), 1):   # as the CLI's scanner: "\n", and a "\r" before it
            if len(line) > MAX_ENV_LINE:
                raise StackError(f"{rel}:{number}: a line longer than {MAX_ENV_LINE // 1024} KiB")
            line = line.removesuffix("\r").lstrip()
            if not line or line.startswith("#"):
                continue
            key, sep, val = line.partition("=")
            key = key.lstrip()
            if not key or any(c.isspace() for c in key):
                raise StackError(f"{rel}:{number}: {key!r} is not a variable name; write KEY=value")
            if not sep:
                found = self.lookup(key)
                if found is None:
                    raise StackError(f"{rel}:{number}: {key} has no value; the docker CLI would take it from its "
                                     "own environment: write KEY=value, or set it in the app's variables:")
                val = found
            out[key] = val
        return out

    def ports(self, raw: Any, path: tuple[str | int, ...]) -> list[Port]:
        if isinstance(raw, dict):
            known = {"target", "published", "protocol", "mode"}
            extra = set(raw) - known
            if extra:
                raise self.fail(path, f"unknown port key {sorted(extra)[0]!r}")
            try:
                return [Port.model_validate({k: v for k, v in raw.items() if v is not None})]
            except ValueError as e:
                raise self.fail(path, _first_error(e)) from e
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise self.fail(path, "a port must be text like \"8080:80\" or a mapping with target and published")
        return self.short_ports(str(raw), path)

    def short_ports(self, text: str, path: tuple[str | int, ...]) -> list[Port]:
        body, _, proto = text.partition("/")
        parts = body.split(":")
        if len(parts) > 2:
            raise self.fail(path, f"{text!r} names a host address, which Swarm does not use; write "
                            "\"published:target\"")
        targets = self.port_range(parts[-1], path, text)
        published = self.port_range(parts[0], path, text) if len(parts) == 2 else None
        if published is not None and len(published) != len(targets):
            raise self.fail(path, f"{text!r}: the published and target ranges differ in length")
        protocol = proto or "tcp"
        if protocol not in ("tcp", "udp", "sctp"):
            raise self.fail(path, f"{text!r}: protocol must be tcp, udp or sctp")
        return [Port(target=t, published=None if published is None else published[i], protocol=protocol,  # type: ignore[arg-type]
                     mode="ingress") for i, t in enumerate(targets)]

    def port_range(self, text: str, path: tuple[str | int, ...], whole: str) -> list[int]:
        start, sep, end = text.partition("-")
        if not _DIGITS.fullmatch(start) or (sep and not _DIGITS.fullmatch(end)):
            raise self.fail(path, f"{whole!r} is not a port or a port range")
        low, high = int(start), int(end) if sep else int(start)
        if not 0 < low <= high < 65536:
            raise self.fail(path, f"{whole!r}: ports are 1 to 65535")
        return list(range(low, high + 1))

    def mount(self, raw: Any, path: tuple[str | int, ...]) -> Mount:
        if isinstance(raw, dict):
            return self.long_mount(raw, path)
        text = self.text(raw, path, "a volume like name:/path or a mapping")
        parts = text.split(":")
        if len(parts) == 1:
            return Mount(type="volume", target=parts[0])
        if len(parts) > 3:
            raise self.fail(path, f"{text!r} has too many ':'-separated parts")
        source, target = parts[0], parts[1]
        if len(source) == 1 and source.isalpha():
            raise self.fail(path, f"{text!r}: a one-letter volume name reads as a Windows drive to the docker "
                            "CLI; use a longer name")
        options: dict[str, Any] = {}
        read_only = False
        for opt in (parts[2].split(",") if len(parts) == 3 else []):
            if opt in ("ro", "rw"):
                read_only = opt == "ro"
            elif opt == "nocopy":
                options["volume"] = {"nocopy": True}
            elif opt in _PROPAGATION:
                options["bind"] = {"propagation": opt}
            else:
                raise self.fail(path, f"{text!r}: volume option {opt!r} is not one Swarm applies; use ro, rw, "
                                "nocopy or a propagation mode")
        bind = source.startswith(("/", ".", "~"))
        mount = Mount(type="bind" if bind else "volume", source=source, target=target, read_only=read_only,
                      options=options)
        self.check_bind(mount, path, text)
        return mount

    def long_mount(self, raw: dict[str, Any], path: tuple[str | int, ...]) -> Mount:
        known = {"type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs"}
        extra = set(raw) - known - {k for k in raw if k.startswith("x-")}
        if extra:
            raise self.fail((*path, sorted(extra)[0]), "is not a volume key Docker knows")
        if raw.get("type") not in ("volume", "bind", "tmpfs", "npipe", "cluster"):
            raise self.fail((*path, "type"), "must be volume, bind or tmpfs")
        if not isinstance(raw.get("target"), str):
            raise self.fail((*path, "target"), "must be the path in the container")
        source = raw.get("source")
        options = {k: raw[k] for k in ("consistency", "bind", "volume", "tmpfs") if raw.get(k) is not None}
        if not isinstance(raw.get("read_only", False), bool):
            raise self.fail((*path, "read_only"), "must be true or false")
        mount = Mount(type=raw["type"], target=raw["target"], read_only=bool(raw.get("read_only")),
                      source=None if source is None else self.text(source, (*path, "source")), options=options)
        self.check_bind(mount, path, str(source))
        return mount

    def check_bind(self, mount: Mount, path: tuple[str | int, ...], written: str) -> None:
        if mount.type == "bind" and not (mount.source or "").startswith("/"):
            raise self.fail(path, f"{written!r} binds a path relative to the repo, which is not on the nodes; put "
                            "the files in configs: (file: ...) and mount those, or use a named volume")


def parse_constraint(text: str, fail: Callable[[str], StackError]) -> Constraint:
    """As swarmkit's constraint.Parse: the first of == and != found splits key from value."""
    for op in ("==", "!="):
        if op in text:
            key, _, value = (part.strip() for part in text.partition(op))
            if not _KEY.fullmatch(key):
                raise fail(f"constraint {text!r}: key {key!r} is not one Swarm accepts")
            if not _VALUE.fullmatch(value):
                raise fail(f"constraint {text!r}: value {value!r} is not one Swarm accepts")
            return Constraint(text=text, key=_canonical_key(key), op=op, value=value)
    raise fail(f"constraint {text!r} has no == or !=")


def _canonical_key(key: str) -> str:
    lower = key.lower()
    for prefix in ("node.labels.", "engine.labels."):
        if lower.startswith(prefix):
            return prefix + key[len(prefix):]
    return lower


def _first_error(e: ValueError) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(e)

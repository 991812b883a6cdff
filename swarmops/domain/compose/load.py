"""Strict loading of a stack file: plain data that means what it means to the docker CLI (go-yaml),
with the line of every key kept for errors.

Built from the parser's events rather than a YAML library's constructor, so that nothing is decided
by a YAML 1.1 or 1.2 resolver that the docker CLI does not share: explicit tags are refused, aliases
and merge keys are resolved here, a plain scalar becomes what go-yaml v3 makes of it, and a plain
scalar that Debian's 20.10 CLI (go-yaml v2) would read differently is refused with "quote it"."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as ev

from swarmops.errors import StackError

Path = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024          # far above any real stack file; parsing more is a way to stall the daemon
MAX_DEPTH = 64
MAX_NODES = 100_000              # values once aliases are expanded

_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
# go-yaml v2 (the 20.10 CLI) reads these as booleans, v3 (the 28 CLI) as strings
_YAML11_BOOL = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
_SPECIAL_FLOAT = {".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}
_SPECIAL_FLOAT.update({f"{s}{v}": sign * math.inf for s, sign in (("", 1), ("+", 1), ("-", -1))
                       for v in (".inf", ".Inf", ".INF")})
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")
_INT64 = 2**63


@dataclass
class Loaded:
    """A stack file as plain data, and the line of each key path in it."""

    tree: dict[str, Any]
    filename: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def where(self, *path: str | int) -> str:
        line = self.line(tuple(path))
        return f"{self.filename}:{line}" if line else self.filename


def load(text: str, filename: str) -> Loaded:
    """Parse one YAML document; every error is a StackError naming file and line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise StackError(f"{filename}: larger than {MAX_BYTES // 1024} KiB; split it or move data into configs")
    builder = _Builder(filename)
    try:
        builder.run(yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise StackError(f"{where}: not valid YAML: {(e.problem or str(e)).strip()}") from e
    except yaml.YAMLError as e:
        raise StackError(f"{filename}: not valid YAML: {e}") from e
    tree = builder.result
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise StackError(f"{filename}:1: a stack file must be a mapping with a 'services:' key")
    return Loaded(tree, filename, builder.lines)


@dataclass
class _Value:
    """A value under construction, with the lines of its keys relative to it (for aliases)."""

    data: Any
    size: int
    lines: dict[Path, int]


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.anchors: dict[str, _Value] = {}
        self.lines: dict[Path, int] = {}
        self.nodes = 0
        self.result: Any = None

    def fail(self, line: int, message: str) -> StackError:
        return StackError(f"{self.filename}:{line + 1}: {message}")

    def run(self, events: Any) -> None:
        stream = iter(events)
        documents = 0
        for event in stream:
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail(_line(event), "more than one YAML document; a stack file is one")
                value = self.node(next(stream), stream, 0)
                self.result = value.data
                self.lines = value.lines

    def node(self, event: Any, stream: Any, depth: int) -> _Value:
        if depth > MAX_DEPTH:
            raise self.fail(_line(event), f"nested more than {MAX_DEPTH} levels deep; flatten it")
        if isinstance(event, ev.AliasEvent):
            return self.alias(event)
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise self.fail(_line(event), f"explicit YAML tag {tag!r}: tags are not allowed in a stack "
                            "file (the docker CLI would decode it); write the value itself")
        if isinstance(event, ev.ScalarEvent):
            value = _Value(self.scalar(event), 1, {})
        elif isinstance(event, ev.SequenceStartEvent):
            value = self.sequence(stream, depth)
        elif isinstance(event, ev.MappingStartEvent):
            value = self.mapping(event, stream, depth)
        else:
            raise self.fail(_line(event), f"unexpected {type(event).__name__}")
        self.count(value.size, event)
        if event.anchor is not None:
            self.anchors[event.anchor] = value
        return value

    def count(self, size: int, event: Any) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self.fail(_line(event), f"more than {MAX_NODES} values once aliases are expanded; "
                            "write the file without aliases of aliases")

    def alias(self, event: Any) -> _Value:
        if event.anchor not in self.anchors:
            raise self.fail(_line(event), f"alias *{event.anchor} names no anchor defined before it")
        value = self.anchors[event.anchor]
        self.count(value.size, event)
        return value

    def scalar(self, event: Any) -> Any:
        if event.style:    # quoted, literal or folded: always a string
            return event.value
        return self.plain(event.value, _line(event))

    def plain(self, text: str, line: int) -> Any:
        """What go-yaml v3 makes of a plain scalar; refused where v2 would make something else."""
        if text in _NULL:
            return None
        if text in _BOOL:
            return _BOOL[text]
        if text in _YAML11_BOOL:
            raise self.fail(line, f"unquoted {text!r} is a boolean to one docker CLI and a string to another; "
                            f"quote it (\"{text}\") for text, or write true/false")
        if text in _SPECIAL_FLOAT:
            return _SPECIAL_FLOAT[text]
        if not text or text[0] not in "+-0123456789.":
            return text
        if _TIMESTAMP.fullmatch(text):
            raise self.fail(line, f"unquoted {text!r} reads as a timestamp; quote it")
        digits = text.replace("_", "")
        if _GO_INT.fullmatch(digits):
            # no 64-bit number takes more than 70 characters (0b and 64 binary digits); a longer one is not
            # even converted (Python refuses to read more than 4300 digits into an int)
            number = _go_int(digits) if len(digits) <= 70 else 2 * _INT64
            if -_INT64 <= number < 2 * _INT64:
                return number
            raise self.fail(line, f"{text!r} is too large for a 64-bit number; quote it if it is text")
        if _GO_FLOAT.fullmatch(digits):
            real = float(digits)
            return text if math.isinf(real) else real   # go-yaml keeps an out-of-range float as text
        return text

    def sequence(self, stream: Any, depth: int) -> _Value:
        items: list[Any] = []
        lines: dict[Path, int] = {}
        size = 1
        for event in stream:
            if isinstance(event, ev.SequenceEndEvent):
                break
            index = len(items)
            lines[(index,)] = _line(event) + 1
            child = self.node(event, stream, depth + 1)
            items.append(child.data)
            lines.update({(index, *k): v for k, v in child.lines.items()})
            size += child.size
        return _Value(items, size, lines)

    def mapping(self, start: Any, stream: Any, depth: int) -> _Value:
        out: dict[str, Any] = {}
        lines: dict[Path, int] = {}
        size = 1
        merges: list[tuple[_Value, int]] = []
        for event in stream:
            if isinstance(event, ev.MappingEndEvent):
                break
            line = _line(event)
            key = self.key(event, stream, depth)
            value_event = next(stream)
            child = self.node(value_event, stream, depth + 1)
            size += child.size
            if key == "<<" and isinstance(event, ev.ScalarEvent) and not event.style:
                merges.append((child, line))
                continue
            if key in out:
                raise self.fail(line, f"duplicate key {key!r}: each key may appear once; remove or rename one")
            out[key] = child.data
            lines[(key,)] = line + 1
            lines.update({(key, *k): v for k, v in child.lines.items()})
        for merged, line in merges:
            self.merge(out, lines, merged, line)
        return _Value(out, size, lines)

    def key(self, event: Any, stream: Any, depth: int) -> str:
        if not isinstance(event, ev.ScalarEvent | ev.AliasEvent):
            self.node(event, stream, depth + 1)
            raise self.fail(_line(event), "a mapping or list used as a key; Docker wants text keys")
        value = self.node(event, stream, depth + 1).data
        if not isinstance(value, str):
            raise self.fail(_line(event), f"key {value!r} is not text, which Docker refuses; quote it")
        return value

    def merge(self, out: dict[str, Any], lines: dict[Path, int], merged: _Value, line: int) -> None:
        """`<<: *a` or `<<: [*a, *b]`: keys written in the mapping win, then earlier merged mappings."""
        sources = merged.data if isinstance(merged.data, list) else [merged.data]
        if not all(isinstance(s, dict) for s in sources):
            raise self.fail(line, "'<<' merges mappings only: give it an alias of a mapping or a list of them")
        for source in sources:
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    lines.setdefault((key,), line + 1)


def _line(event: Any) -> int:
    mark = getattr(event, "start_mark", None)
    return int(getattr(mark, "line", 0))


def _go_int(digits: str) -> int:
    """strconv.ParseInt with base 0, as go-yaml calls it: 0x hex, 0o and leading-0 octal, 0b binary."""
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("+-").lower()
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    if body.startswith("0b"):
        return sign * int(body[2:], 2)
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body[1:], 8)
    return sign * int(body)

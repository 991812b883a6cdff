"""YAML that keeps what Docker reads: YAML 1.2 scalars, original text and quoting, key order,
and duplicate keys refused. Errors name the file and line."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from swarmops.errors import SwarmopsError


def _yaml() -> YAML:
    y = YAML(typ="rt", pure=True)
    y.preserve_quotes = True
    y.allow_duplicate_keys = False
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def load(text: str, filename: str, error: type[SwarmopsError]) -> Any:
    """Parse `text`; a syntax error or a duplicate key raises `error` naming file and line."""
    try:
        return _yaml().load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = (e.problem or "").strip()
        if "duplicate key" in problem or "duplicate key" in str(e):
            raise error(f"{where}: {problem}: each key may appear once; remove or rename one") from None
        raise error(f"{where}: not valid YAML: {problem or e}") from None
    except YAMLError as e:
        raise error(f"{filename}: not valid YAML: {e}") from None


def dump(data: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def line_of(data: Any, path: Sequence[str | int]) -> int | None:
    """1-based line of the node at `path` in a round-trip document, as deep as the path exists."""
    line: int | None = None
    node = data
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line


def to_plain(node: Any) -> Any:
    """Plain dicts, lists and scalars (merge keys resolved, anchors gone) for hashing and checks."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def detach(node: Any) -> Any:
    """A deep copy with merge keys expanded and no anchors, keeping each scalar's type and text,
    so that changing one service never changes another through a shared anchor."""
    if isinstance(node, dict):
        out = CommentedMap()
        for k, v in node.items():
            out[k] = detach(v)
        return out
    if isinstance(node, list):
        seq = CommentedSeq()
        seq.extend(detach(v) for v in node)
        return seq
    return node

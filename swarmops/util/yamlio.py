"""YAML of swarmops' own files (the config, apps.d entries, copier answers): YAML 1.2 scalars, key order,
duplicate keys refused, errors naming the file and line. Stack files go through domain/compose instead."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence, Set
from types import TracebackType
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


# Deeper than any config or compose file goes; the code after the parser recurses once per level.
MAX_DEPTH = 100
# Values once aliases are expanded: far above any real file, far below an alias bomb.
MAX_NODES = 200_000
# Python refuses to print an int of more than 4300 digits (json.dumps does); no setting needs one near it.
MAX_INT_BITS = 4096


def load(text: str, filename: str, error: type[SwarmopsError]) -> Any:
    """Parse `text`; a syntax error, a duplicate key, a value its tag cannot hold, or nesting, aliases
    or numbers beyond what the rest of swarmops reads raise `error` naming file and line."""
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = (e.problem or "").strip()
        if "duplicate key" in problem or "duplicate key" in str(e):
            raise error(f"{where}: {problem}: each key may appear once; remove or rename one") from e
        raise error(f"{where}: not valid YAML: {problem or e}") from e
    except YAMLError as e:
        raise error(f"{filename}: not valid YAML: {e}") from e
    except RecursionError as e:
        raise error(f"{_failed_at(filename, e.__traceback__)[0]}: nested too deeply; "
                    f"flatten it to at most {MAX_DEPTH} levels") from e
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        # ruamel's constructors raise these for a value that its tag (written, or implied like a date's)
        # cannot hold: `!!int abc`, `2001-02-30`, `!!set x`, a mapping as a key, a mapping merged into itself
        where, node = _failed_at(filename, e.__traceback__)
        tag = str(getattr(node, "tag", "") or "").replace("tag:yaml.org,2002:", "!!")
        value = getattr(node, "value", None)
        if isinstance(value, str) and tag == "!!int" and len(value) > 4000:
            raise error(f"{where}: a number of {len(value)} digits; quote it if it is text") from e
        if isinstance(value, str):
            raise error(f"{where}: not valid YAML: {value[:80]!r} is not a valid {tag}; fix the value, "
                        "or quote it to keep it as text") from None
        raise error(f"{where}: not valid YAML: cannot read this {tag or 'value'} ({e}); check its tag, "
                    "anchors, aliases and keys") from None
    _check_size(doc, filename, error)
    return doc


def _failed_at(filename: str, tb: TracebackType | None) -> tuple[str, Any]:
    """file:line of the innermost YAML node the parser was working on when it failed, and that node
    (ruamel's composer and constructors keep it in a local called `node`)."""
    node = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("node")
        if getattr(candidate, "start_mark", None) is not None:
            node = candidate
        tb = tb.tb_next
    return (f"{filename}:{node.start_mark.line + 1}" if node is not None else filename), node


def _check_size(doc: Any, filename: str, error: type[SwarmopsError]) -> None:
    """Refuse what to_plain, detach, dump and json cannot walk: more than MAX_DEPTH levels (which is
    also where an alias inside the node it names ends up), more than MAX_NODES values with aliases
    expanded, or an int too long to print. Iterative, so that it cannot overflow itself."""
    todo: list[tuple[Any, int, Any, Any]] = [(doc, 0, None, None)]
    count = 0
    while todo:
        node, depth, parent, key = todo.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise error(f"{_where(filename, parent, key)}: nested more than {MAX_DEPTH} levels deep, or an "
                        "alias used inside the node it names; flatten it or write the value out")
        if count > MAX_NODES:
            raise error(f"{filename}: more than {MAX_NODES} values once aliases are expanded; "
                        "write the file without aliases of aliases")
        if isinstance(node, int) and node.bit_length() > MAX_INT_BITS:
            raise error(f"{_where(filename, parent, key)}: a number of more than {MAX_INT_BITS} bits; "
                        "quote it if it is text")
        if isinstance(node, Mapping):
            todo.extend((k, depth + 1, node, None) for k in node)
            todo.extend((v, depth + 1, node, k) for k, v in node.items())
        elif isinstance(node, list | tuple):
            todo.extend((v, depth + 1, node, i) for i, v in enumerate(node))
        elif isinstance(node, Set):
            todo.extend((v, depth + 1, node, None) for v in node)


def _where(filename: str, parent: Any, key: Any) -> str:
    """file:line of `parent[key]` in a round-trip document, or of `parent` itself, as far as known."""
    line = None
    with contextlib.suppress(AttributeError, KeyError, TypeError):
        lc = parent.lc
        line = lc.line
        if key is not None:
            line = (lc.key(key) if isinstance(parent, Mapping) else lc.item(key))[0]
    return f"{filename}:{line + 1}" if isinstance(line, int) else filename


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

"""`$VAR` and `${VAR}` in a stack file, resolved by the docker CLI's rules so that the policy judges the values
that get deployed, and the file handed to the CLI can carry them with every `$` escaped.

The rules are those of docker/cli v28.2.2 (e6534b4): cli/compose/template/template.go, interpolation.go and
the cast table of cli/compose/loader/interpolate.go (v20.10 has the same rules, without the oom_score_adj cast).
Where the CLI's answer is an accident (a `?` error lost, a variable name no variable can have, an unset
variable silently empty) this module refuses with a reason; it never produces a value the CLI would not."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from typing import Any

from swarmops.errors import InterpolationError

Path = tuple[str | int, ...]
Lookup = Callable[[str], str | None]
Cast = Callable[[str], Any]

SECTIONS = ("services", "networks", "volumes", "secrets", "configs")
_SET_IT = "set it in the app's variables: or the repo's .env"

# Go's case-insensitive [_a-z] also folds U+017F (long s) and U+212A (Kelvin sign) into names
_NAME = "[_a-zA-Z\u017f\u212a][_a-zA-Z0-9\u017f\u212a]*"
_SUBST = _NAME + "(?::?[-?][^}]*)?"
_PATTERN = re.compile(r"\$(?:(?P<escaped>\$)|(?P<named>" + _SUBST + r")|\{(?P<braced>" + _SUBST + r")\}|)")
_IS_NAME = re.compile(_NAME)
_PLUS = re.compile(r"\{(" + _NAME + r")(:?\+)")
# the CLI tries these in this order, each split at its first occurrence
_OPERATORS = (":-", "-", ":?", "?")


def escape(text: str) -> str:
    """The text to write so that the CLI reads `text` back unchanged."""
    return text.replace("$", "$$")


def substitute(text: str, lookup: Lookup) -> str:
    """`text` with every reference resolved; raises InterpolationError (path=()) at the first bad one."""
    out: list[str] = []
    end = 0
    for match in _PATTERN.finditer(text):
        out.append(text[end:match.start()])
        end = match.end()
        if match["escaped"]:
            out.append("$")
        elif body := match["named"] or match["braced"]:
            out.append(_resolve(body, match[0], lookup))
        else:
            raise _invalid(text, match.start())
    out.append(text[end:])
    return "".join(out)


def _resolve(body: str, ref: str, lookup: Lookup) -> str:
    name, op, arg = body, "", ""
    for candidate in _OPERATORS:
        if candidate in body:
            name, op, arg = body.partition(candidate)
            break
    if not _IS_NAME.fullmatch(name):
        raise InterpolationError((), f"the docker CLI reads {ref} as variable {name!r}, which no variable is named: "
                                 "it splits at the first ':-', else '-', ':?', '?', so keep those out of a "
                                 "?-message and of a '-' default", re.split("[-:?]", name, maxsplit=1)[0])
    value = lookup(name)
    if op == ":-":
        return value or arg
    if op == "-":
        return arg if value is None else value
    if (op == "?" and value is not None) or (op == ":?" and value):
        return value
    if op:
        said = f" ({arg})" if arg else ""
        state = "not set" if value is None else "empty"
        raise InterpolationError((), f"variable {name} is required{said} but {state}: {_SET_IT}", name)
    if value is None:
        # the CLI would make it an empty string without a word; an empty value must be asked for with ${X-}
        raise InterpolationError((), f"variable {name} is not set and has no default: {_SET_IT}, "
                                 f"or write ${{{name}:-value}}", name)
    return value


def _invalid(text: str, at: int) -> InterpolationError:
    rest = text[at + 1:]
    if plus := _PLUS.match(rest):
        name, op = plus.groups()
        return InterpolationError((), f"${{{name}{op}...}} is compose-spec syntax the docker CLI does not support: "
                                  f"write the value out, or use ${{{name}:-default}}", name)
    if rest.startswith("{") and "}" not in rest:
        return InterpolationError((), f"{text[at:at + 20]!r} has no closing }}: close it, or write $$ for a literal $")
    return InterpolationError((), f"invalid interpolation format at {text[at:at + 12]!r}: a variable is $NAME or "
                              "${NAME} with NAME starting with a letter or _; write $$ for a literal $")


def interpolate(tree: dict[str, Any], lookup: Lookup) -> dict[str, Any]:
    """A new tree with every string value of the CLI's sections substituted, then cast where the CLI casts it.
    Keys are never interpolated; other top-level keys are copied as they are."""
    return {key: _walk(value, (key,), key, lookup) if key in SECTIONS else copy.deepcopy(value)
            for key, value in tree.items()}


def _walk(value: Any, path: Path, cli_path: str, lookup: Lookup) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), f"{cli_path}.{k}", lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), f"{cli_path}.[]", lookup) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    try:
        new = substitute(value, lookup)
    except InterpolationError as e:
        raise InterpolationError(path, e.reason, e.variable) from e
    cast = _caster(cli_path)
    # the CLI casts only a string that substitution changed; any other string is left to its schema check
    if cast is None or new == value:
        return new
    try:
        return cast(new)
    except ValueError as e:
        raise InterpolationError(path, f"{new!r} (from {value!r}) {e}") from e


def _caster(cli_path: str) -> Cast | None:
    # the CLI matches the dotted string, so a key with a dot in it shifts the parts and matches nothing
    parts = cli_path.split(".")
    for pattern, cast in _CASTS.items():
        if len(pattern) == len(parts) and all(p in ("*", q) for p, q in zip(pattern, parts, strict=True)):
            return cast
    return None


_GO_INT = re.compile(r"[+-]?[0-9]+")
_D = "[0-9](?:_?[0-9])*"
_H = "[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_DECIMAL = re.compile(rf"[+-]?(?:{_D}(?:\.(?:{_D})?)?|\.{_D})(?:[eE][+-]?{_D})?")
_HEX = re.compile(rf"[+-]?0[xX](?:_?{_H}(?:\.(?:{_H})?)?|\.{_H})[pP][+-]?{_D}")
_TRUE = {"y", "yes", "true", "on"}
_FALSE = {"n", "no", "false", "off"}


def _to_int(text: str) -> int:
    """strconv.Atoi: decimal only, so "0440" is 440; no spaces or underscores; int64."""
    if not _GO_INT.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
        raise ValueError("is not a decimal integer, which the docker CLI requires here")
    return int(text)


def _to_float(text: str) -> float:
    """strconv.ParseFloat(64): decimal or hex (with p exponent), '_' between digits; overflow fails. Its inf and
    nan are refused: the CLI takes them here, then fails to encode them (json: unsupported value)."""
    try:
        if _DECIMAL.fullmatch(text):
            number = float(text)
        elif _HEX.fullmatch(text):
            number = float.fromhex(text.replace("_", ""))
        else:
            raise ValueError
        if not math.isfinite(number):
            raise OverflowError
    except (ValueError, OverflowError):
        raise ValueError("is not a finite number the docker CLI can read here") from None
    return number


def _to_bool(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise ValueError("is not a boolean: the docker CLI accepts true/false, yes/no, y/n, on/off in any case")


def _service(*parts: str) -> tuple[str, ...]:
    return ("services", "*", *parts)


_CASTS: dict[tuple[str, ...], Cast] = {
    _service("configs", "[]", "mode"): _to_int,
    _service("secrets", "[]", "mode"): _to_int,
    _service("healthcheck", "retries"): _to_int,
    _service("healthcheck", "disable"): _to_bool,
    _service("deploy", "replicas"): _to_int,
    _service("deploy", "update_config", "parallelism"): _to_int,
    _service("deploy", "update_config", "max_failure_ratio"): _to_float,
    _service("deploy", "rollback_config", "parallelism"): _to_int,
    _service("deploy", "rollback_config", "max_failure_ratio"): _to_float,
    _service("deploy", "restart_policy", "max_attempts"): _to_int,
    _service("deploy", "placement", "max_replicas_per_node"): _to_int,
    _service("ports", "[]", "target"): _to_int,
    _service("ports", "[]", "published"): _to_int,
    _service("ulimits", "*"): _to_int,
    _service("ulimits", "*", "hard"): _to_int,
    _service("ulimits", "*", "soft"): _to_int,
    _service("privileged"): _to_bool,
    _service("oom_score_adj"): _to_int,
    _service("read_only"): _to_bool,
    _service("stdin_open"): _to_bool,
    _service("tty"): _to_bool,
    _service("volumes", "[]", "read_only"): _to_bool,
    _service("volumes", "[]", "volume", "nocopy"): _to_bool,
    **{(section, "*", "external"): _to_bool for section in ("networks", "volumes", "secrets", "configs")},
    ("networks", "*", "internal"): _to_bool,
    ("networks", "*", "attachable"): _to_bool,
}

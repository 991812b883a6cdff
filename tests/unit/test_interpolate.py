"""Interpolation of a stack file: every rule, message and cast, and the same answers as the real docker CLI
(`docker stack config`, offline) for the same file and variables."""

from __future__ import annotations

import copy
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmops.domain.compose.interpolate import escape, interpolate, substitute
from swarmops.errors import InterpolationError, StackError

DOCKER = "/usr/local/bin/docker"
ENV = {"A": "va", "E": "", "D": "$A}", "\u017f": "longs", "\u212a": "kelvin"}   # B is never set


def lookup(env: dict[str, str]) -> Callable[[str], str | None]:
    return env.get


def cli(doc: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | str:
    """What `docker stack config` makes of `doc` with only `env` set: the config, or its error line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.yml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, width=10_000))
        run = subprocess.run([DOCKER, "stack", "config", "-c", str(path)], capture_output=True, text=True,
                             env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env}, timeout=30)
    if run.returncode:
        return run.stderr.strip()
    out: dict[str, Any] = yaml.safe_load(run.stdout)
    return out


def web(service: dict[str, Any], version: str = "3.8", **top: Any) -> dict[str, Any]:
    return {"version": version, "services": {"web": {"image": "nginx", **service}}, **top}


def cli_environment(values: list[str], env: dict[str, str]) -> list[str] | str:
    out = cli(web({"environment": {f"V{i}": v for i, v in enumerate(values)}}), env)
    if isinstance(out, str):
        return out
    got = out["services"]["web"]["environment"]
    return [got[f"V{i}"] for i in range(len(values))]


def refusal(text: str, env: dict[str, str]) -> InterpolationError:
    with pytest.raises(InterpolationError) as info:
        substitute(text, lookup(env))
    return info.value


# (template, value) with ENV: Compose's documented cases, then what the CLI does with the odd ones
AGREED = [
    ("plain", "plain"), ("$$", "$"), ("$$$$", "$$"), ("$${A}", "${A}"), ("$$A", "$A"),
    ("$A", "va"), ("${A}", "va"), ("x${A}y", "xvay"), ("$A.b/c", "va.b/c"), ("{$A}", "{va}"), ("${A}}", "va}"),
    ("${B:-d}", "d"), ("${E:-d}", "d"), ("${A:-d}", "va"), ("${B-d}", "d"), ("${E-d}", ""), ("${A-d}", "va"),
    ("${B-}", ""), ("${B:-}", ""), ("${B:-a b c}", "a b c"), ("${B-a?b}", "a?b"), ("${B:-a-b}", "a-b"),
    ("${A?msg}", "va"), ("${E?msg}", ""), ("${A:?msg}", "va"), ("${D}", "$A}"),
    # no nesting: the default runs to the first }, literally, and the rest is text
    ("${A:-${B}}", "va}"), ("${B:-${A}}", "${A}"), ("${B:-$$}", "$$"), ("${B:-$A}", "$A"),
    # the CLI takes modifiers after an unbraced name too, up to the next } or the end
    ("$A-x y}z", "va}z"), ("$B-x y}z", "x y}z"), ("$B:-d", "d"), ("$E:-d e", "d e"), ("$A+x", "va+x"),
    ("$A:x", "va:x"),
    # Go's case-insensitive [a-z] folds these two into names
    ("$\u017f", "longs"), ("${\u212a}", "kelvin"),
]

# (template, what our message says, variable): the CLI refuses these too
REFUSED = [
    ("${}", "invalid interpolation format at '${}'", None),
    ("$1", "invalid interpolation format at '$1'", None),
    ("a $ b", "invalid interpolation format at '$ b'", None),
    ("x$", "invalid interpolation format at '$'", None),
    ("${A:x}", "invalid interpolation format at '${A:x}'", None),
    ("$\u0130", "invalid interpolation format", None),
    ("${A", "'${A' has no closing }", None),
    ("${B-x", "'${B-x' has no closing }", None),
    ("${A:+x}", "${A:+...} is compose-spec syntax the docker CLI does not support", "A"),
    ("${A+x}", "${A+...} is compose-spec syntax the docker CLI does not support", "A"),
    ("${B?the public host name}", "variable B is required (the public host name) but not set", "B"),
    ("${B:?}", "variable B is required but not set", "B"),
    ("${E:?give it}", "variable E is required (give it) but empty", "E"),
    ("$B?", "variable B is required but not set", "B"),
]

# (template, what the CLI makes of it, what our message says): accidents of the CLI that swarmops refuses
STRICTER = [
    ("${B}", "", "variable B is not set and has no default"),
    ("$B", "", "variable B is not set and has no default"),
    ("$ ${A}", " va", "invalid interpolation format at '$ ${A}'"),          # a later match clears the CLI's error
    ("${B?}${A}", "va", "variable B is required but not set"),
    ("${A:?must-set}", "set", "reads ${A:?must-set} as variable 'A:?must'"),  # '-' wins over ':?'
    ("${B-x:-y}", "y", "reads ${B-x:-y} as variable 'B-x'"),
]


@pytest.mark.parametrize(("text", "value"), AGREED)
def test_substitution(text: str, value: str) -> None:
    assert substitute(text, lookup(ENV)) == value


def test_the_cli_agrees_on_every_substitution() -> None:
    assert cli_environment([t for t, _ in AGREED], ENV) == [v for _, v in AGREED]


@pytest.mark.parametrize(("text", "message", "variable"), REFUSED)
def test_refused_like_the_cli(text: str, message: str, variable: str | None) -> None:
    error = refusal(text, ENV)
    assert message in str(error) and "\n" not in str(error)
    assert (error.variable, error.path) == (variable, ())
    assert "invalid interpolation format for services.web.environment.V0" in cli_environment([text], ENV)


@pytest.mark.parametrize(("text", "cli_value", "message"), STRICTER)
def test_refused_where_the_cli_guesses(text: str, cli_value: str, message: str) -> None:
    assert message in str(refusal(text, ENV))
    assert cli_environment([text], ENV) == [cli_value]


def test_messages_say_what_to_do() -> None:
    assert str(refusal("https://${DOMAIN}/", {})) == (
        "variable DOMAIN is not set and has no default: set it in the app's variables: or the repo's .env, "
        "or write ${DOMAIN:-value}")
    assert str(refusal("${DOMAIN:?the public host name}", {"DOMAIN": ""})) == (
        "variable DOMAIN is required (the public host name) but empty: set it in the app's variables: or the "
        "repo's .env")
    error = InterpolationError(("services", "web", "ports", 0, "published"), "bad", "P")
    assert (str(error), error.reason, error.variable) == ("services.web.ports[0].published: bad", "bad", "P")
    assert isinstance(error, StackError)


def test_variables_come_only_from_the_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_DIR", "/root")
    assert refusal("$HOME_DIR", {}).variable == "HOME_DIR"


def test_values_are_interpolated_keys_and_other_types_are_not() -> None:
    tree = {"version": "3.8", "x-note": "${B}",
            "services": {"web": {"labels": {"${A}": "${A}"}, "deploy": {"replicas": 2}, "tty": True,
                                 "command": ["echo", "$$HOME", None, 1.5]}},
            "networks": {"${A}": {"driver": "${A-overlay}"}}, "volumes": None}
    before = copy.deepcopy(tree)
    assert interpolate(tree, lookup(ENV)) == {
        "version": "3.8", "x-note": "${B}",
        "services": {"web": {"labels": {"${A}": "va"}, "deploy": {"replicas": 2}, "tty": True,
                             "command": ["echo", "$HOME", None, 1.5]}},
        "networks": {"${A}": {"driver": "va"}}, "volumes": None}
    assert tree == before
    out = cli(web({"labels": {"${A}": "${A}"}}), ENV)
    assert not isinstance(out, str) and out["services"]["web"]["labels"] == {"${A}": "va"}


def test_the_error_names_the_path() -> None:
    tree = web({"ports": [{"target": 80, "published": "${PORT}"}]})
    with pytest.raises(InterpolationError) as info:
        interpolate(tree, lookup({}))
    assert info.value.path == ("services", "web", "ports", 0, "published")
    assert info.value.variable == "PORT"
    assert str(info.value).startswith("services.web.ports[0].published: variable PORT is not set")


# every path of the CLI's cast table, with a value and what it becomes
def cast_tree(i: Any, b: Any, f: Any, m: Any) -> dict[str, Any]:
    return web({
        "ports": [{"target": i, "published": i}],
        "deploy": {"replicas": i, "update_config": {"parallelism": i, "max_failure_ratio": f},
                   "rollback_config": {"parallelism": i, "max_failure_ratio": f},
                   "restart_policy": {"max_attempts": i}, "placement": {"max_replicas_per_node": i}},
        "configs": [{"source": "c", "mode": m}], "secrets": [{"source": "s", "mode": m}],
        "healthcheck": {"retries": i, "disable": b}, "ulimits": {"nproc": i, "nofile": {"soft": i, "hard": i}},
        "privileged": b, "read_only": b, "stdin_open": b, "tty": b, "oom_score_adj": i,
        "volumes": [{"type": "volume", "source": "v", "target": "/v", "read_only": b, "volume": {"nocopy": b}}],
    }, version="3.13", networks={"n": {"external": b}, "m": {"internal": b, "attachable": b}},
        volumes={"v": {"external": b}}, secrets={"s": {"external": b}}, configs={"c": {"external": b}})


def test_every_cast_of_the_table() -> None:
    env = {"I": "+0042", "B": "oN", "F": "0.25", "M": "0440"}
    got = interpolate(cast_tree("${I}", "${B}", "${F}", "${M}"), lookup(env))
    want = cast_tree(42, True, 0.25, 440)
    assert got == want
    out = cli(cast_tree("${I}", "${B}", "${F}", "${M}"), env)
    assert not isinstance(out, str)
    del want["services"]["web"]["oom_score_adj"]   # the CLI takes it but does not print it
    for section in ("services", "networks", "volumes", "secrets", "configs"):
        for name, body in want[section].items():
            assert {k: v for k, v in out[section][name].items() if k in body} == body


@pytest.mark.parametrize(("word", "value"), [(w, w.lower() in {"y", "yes", "true", "on"}) for w in (
    "y", "Y", "yes", "YES", "yEs", "true", "True", "TRUE", "on", "On", "n", "N", "no", "No", "false", "FALSE", "off",
    "OFF")])
def test_booleans_the_cli_accepts(word: str, value: bool) -> None:
    assert interpolate(web({"tty": "${B}"}), lookup({"B": word}))["services"]["web"]["tty"] is value


def test_the_cli_reads_the_same_booleans() -> None:
    words = ["y", "Yes", "TRUE", "on", "N", "no", "False", "oFF"]
    out = cli({"version": "3.8", "services": {f"s{i}": {"image": "nginx", "tty": f"${{B{i}}}"}
                                              for i in range(len(words))}}, {f"B{i}": w for i, w in enumerate(words)})
    assert not isinstance(out, str)
    assert [out["services"][f"s{i}"].get("tty", False) for i in range(len(words))] == [
        True, True, True, True, False, False, False, False]


NUMBERS = [  # (field, value, result, None for a refusal)
    ("replicas", "0440", 440), ("replicas", "+3", 3), ("replicas", "-0", 0),
    ("replicas", "9223372036854775807", 2**63 - 1),
    ("replicas", " 3", None), ("replicas", "3_0", None), ("replicas", "0x10", None), ("replicas", "3.0", None),
    ("replicas", "", None), ("replicas", "9223372036854775808", None), ("replicas", "\u0663", None),
    ("ratio", ".5", 0.5), ("ratio", "5.", 5.0), ("ratio", "1_0", 10.0), ("ratio", "1e-1", 0.1),
    ("ratio", "0x1p-2", 0.25), ("ratio", "0x_1p0", 1.0), ("ratio", "1e-400", 0.0),
    ("ratio", "1e400", None), ("ratio", "+nan", None), ("ratio", "0x1", None), ("ratio", " 1", None),
    ("ratio", "1__0", None), ("ratio", "1_", None), ("ratio", "e5", None),
    ("ratio", "inf", None), ("ratio", "NaN", None),   # the CLI casts them, then cannot encode them
]


def number_tree(field: str, text: str) -> dict[str, Any]:
    if field == "ratio":
        return web({"deploy": {"update_config": {"max_failure_ratio": text}}})
    return web({"deploy": {"replicas": text}})


def number_of(tree: dict[str, Any], field: str) -> Any:
    deploy = tree["services"]["web"].get("deploy", {})
    return deploy.get("update_config", {}).get("max_failure_ratio", 0.0) if field == "ratio" else deploy["replicas"]


@pytest.mark.parametrize(("field", "text", "result"), NUMBERS)
def test_numbers_as_strconv_reads_them(field: str, text: str, result: float | None) -> None:
    env = {"N": text}
    if result is None:
        with pytest.raises(InterpolationError) as info:
            interpolate(number_tree(field, "${N}"), lookup(env))
        assert info.value.path[-1] in {"replicas", "max_failure_ratio"} and repr(text) in str(info.value)
    else:
        assert number_of(interpolate(number_tree(field, "${N}"), lookup(env)), field) == result


def test_the_cli_reads_the_same_numbers() -> None:
    for field, text, result in NUMBERS:
        if field == "replicas" and text == "9223372036854775807":
            continue   # a valid int64 that the schema then refuses, which is no concern of interpolation
        out = cli(number_tree(field, "${N}"), {"N": text})
        if result is None:
            assert isinstance(out, str) and ("failed to cast" in out or "unsupported value" in out), text
        else:
            assert not isinstance(out, str) and number_of(out, field) == result, text


def test_only_a_changed_string_is_cast() -> None:
    tree = web({"deploy": {"replicas": "3"}, "privileged": "yes"})
    tree["services"]["my.web"] = {"image": "nginx", "deploy": {"replicas": "${R}"}}   # a dot shifts the path
    out = interpolate(tree, lookup({"R": "3"}))["services"]
    assert (out["web"]["deploy"]["replicas"], out["web"]["privileged"], out["my.web"]["deploy"]["replicas"]) == (
        "3", "yes", "3")
    assert "services.web.deploy.replicas must be a integer" in str(cli(web({"deploy": {"replicas": "3"}}), {}))
    dotted = {"version": "3.8", "services": {"my.web": {"image": "nginx", "deploy": {"replicas": "${R}"}}}}
    assert "services.my.web.deploy.replicas must be a integer" in str(cli(dotted, {"R": "3"}))


def test_a_cast_failure_names_the_path() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(web({"configs": [{"source": "c", "mode": "${M}"}]}), lookup({"M": "rw"}))
    assert info.value.path == ("services", "web", "configs", 0, "mode")
    assert str(info.value) == ("services.web.configs[0].mode: 'rw' (from '${M}') is not a decimal integer, "
                               "which the docker CLI requires here")


@given(st.text())
def test_escape_round_trips(text: str) -> None:
    assert substitute(escape(text), lookup({})) == text


def test_the_cli_reads_escaped_text_back() -> None:
    texts = ["$", "$$", "${A}", "a$b", "$1", "}{$", "${A:-${B}}", "$$$"]
    assert cli_environment([escape(t) for t in texts], ENV) == texts


NAMES = ["A", "B", "C"]
LITERAL = st.text(alphabet="ab -:/?{}.", max_size=3)
DEFAULT = st.text(alphabet="ab -?/.", max_size=3)   # a ':' in a '-' default is one of our refusals


@st.composite
def template(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    env = {n: draw(st.sampled_from(["", "x", "$A}", "y-z"])) for n in NAMES if draw(st.booleans())}
    known = [n for n in NAMES if n in env]      # a plain reference to an unset variable is one of our refusals
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["lit", "$$", "$V", "${V}", ":-", "-"] if known else ["lit", "$$", ":-", "-"]))
        if kind == "lit":
            parts.append(draw(LITERAL))
        elif kind == "$$":
            parts.append("$$")
        elif kind == "$V":
            parts.append(f"${draw(st.sampled_from(known))} ")   # the space ends the name and any modifier
        elif kind == "${V}":
            parts.append(f"${{{draw(st.sampled_from(known))}}}")
        else:
            parts.append(f"${{{draw(st.sampled_from(NAMES))}{kind}{draw(DEFAULT)}}}")
    return "".join(parts), env


@settings(max_examples=40, deadline=None)
@given(template())
def test_the_cli_substitutes_the_same(case: tuple[str, dict[str, str]]) -> None:
    text, env = case
    assert cli_environment([text], env) == [substitute(text, lookup(env))]

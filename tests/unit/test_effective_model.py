"""What Docker runs is what swarmops checked: every hostile encoding an app repo could use is either refused
with file:line, or resolved in the model, and then `docker stack config` of the render holds exactly the
values the policy judged."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmops.domain.policy import PolicyContext, check
from swarmops.domain.render import RenderRequest, render_stack
from swarmops.errors import StackError
from tests.unit.fakes import stack_of

CTX = PolicyContext(app="shop", profile="restricted", registry="reg:5000", role_label="role",
                    allowed_roles=("app",), resource_limits="off")
HEAD = "version: '3.8'\nservices:\n  web:\n    image: reg:5000/shop/web:1\n"


def rendered(text: str, variables: dict[str, str] | None = None, deploy_dir: str = "/d") -> Any:
    stack = stack_of(text, variables=variables, files={"c.txt": b"c\n"})
    return stack, render_stack(stack, RenderRequest(
        app="shop", commit="a" * 40, role="app", allowed_roles=("app",), role_label="role", images={},
        fingerprints={}, file_digests={"c.txt": "1" * 64}, deploy_dir=deploy_dir))


def denied(text: str, variables: dict[str, str] | None = None) -> set[str]:
    stack, render = rendered(text, variables)
    return {v.rule for v in check(render.doc, CTX, where=lambda p: stack.where(*p)) if v.severity == "deny"}


def cli_config(render_text: str, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "stack.yml").write_text(render_text)
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "files" / "c.txt").write_text("c\n")
    res = subprocess.run(["docker", "stack", "config", "-c", "stack.yml"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = yaml.safe_load(res.stdout)
    return doc


RESOLVED = {   # hostile text -> the rule the resolved value breaks
    "    volumes: ['${NOPE:-/}:/host']\n": "SO110",
    "    volumes: ['${ROOT}:/host']\n": "SO110",
    "    ports: ['${X:-80}:80']\n": "SO113",
    "    ports: [{target: 80, published: '${P:-80}'}]\n": "SO113",
    "    deploy:\n      placement:\n        constraints: ['node.labels.role == ${X:- db}']\n": "SO111",
    "    deploy:\n      placement:\n        constraints: ['NODE.ROLE == manager']\n": "SO111",
    "    deploy:\n      placement:\n        constraints: ['node.labels.role == ${R}']\n": "SO111",
    "    networks: [h]\nnetworks:\n  h: {external: {name: host}}\n": "SO127",
    "    networks: [h]\nnetworks:\n  h: {external: true, name: '${N:-victim_default}'}\n": "SO115",
}


@pytest.mark.parametrize("snippet", sorted(RESOLVED), ids=lambda s: s.strip()[:40])
def test_interpolated_and_deprecated_forms_are_judged_by_their_resolved_value(snippet: str, tmp_path: Path) -> None:
    variables = {"ROOT": "/", "R": "DB"}
    assert RESOLVED[snippet] in denied(HEAD + snippet, variables)
    _, render = rendered(HEAD + snippet, variables, str(tmp_path))
    seen = cli_config(render.text, tmp_path)["services"]["web"]
    model = render.doc["services"]["web"]
    for key in ("volumes", "ports"):
        assert seen.get(key) == model.get(key)
    assert seen.get("deploy", {}).get("placement") == model["deploy"]["placement"]


REFUSED = {
    "    volumes: ['${HOME}:/h']\n": r"stack.yml:5: services.web.volumes\[0\]: variable HOME is not set",
    "    ports: [!!binary ODA6ODA=]\n": r"stack.yml:5: explicit YAML tag",
    "    volumes: [!!binary " + base64.b64encode(b"/:/host").decode() + "]\n": r"stack.yml:5: explicit YAML tag",
    "    deploy: {placement: {constraints: [!!str node.role == manager]}}\n": r"stack.yml:5: explicit YAML tag",
    "    configs: [c]\nconfigs:\n  c: {file: '${X:-..}/x/../../etc/passwd'}\n": r"stack.yml:7: .*outside the repo",
    "    secrets: [s]\nsecrets:\n  s: {file: '${X:-..}/../var/lib/swarmops/age.key'}\n": r"outside the repo",
    "    env_file: ['${X:-..}/../etc/swarmops/git.token']\n": r"stack.yml:5: .*outside the repo",
    "    env_file: /etc/swarmops/git.token\n": r"stack.yml:5: .*a path on the host",
    "    environment: [PATH]\n": r"environment variable PATH has no value",
    "    labels: {a: '${X:+yes}'}\n": r"stack.yml:5: .*docker CLI",
    "    tty: yes\n": r"stack.yml:5: unquoted 'yes' is a boolean to one docker CLI",
    "    labels: !custom {a: b}\n": r"stack.yml:5: explicit YAML tag",
    # found by review: each of these the docker CLI reads differently from a naive model
    "    environment: {HOME: '', DOCKER_HOST: ''}\n": r"an empty (HOME|DOCKER_HOST) is replaced by the",
    "    deploy: {placement: {constraints: ['node.ho\u017ftname == vm']}}\n": r"key 'node.ho.tname' is not one Swarm",
    "    volumes: ['C:/data:ro']\nvolumes:\n  C: {}\n": r"one-letter volume name reads as a Windows drive",
    "    ports: ['\u00b2:80']\n": r"is not a port or a port range",
    "    ports: [{target: 80, published: true}]\n": r"stack.yml:5: services.web.ports.0: published",
    "    volumes: [{type: volume, source: d, target: /d, read_only: 'no'}]\nvolumes:\n  d: {}\n": r"must be true",
    "    deploy: {placement: {max_replicas_per_node: -1}}\n": r"must be a whole number",
}


@pytest.mark.parametrize("snippet", sorted(REFUSED), ids=lambda s: s.strip()[:40])
def test_forms_the_model_cannot_resolve_safely_are_refused_with_file_and_line(snippet: str) -> None:
    with pytest.raises(StackError, match=REFUSED[snippet]):
        stack_of(HEAD + snippet)


def test_names_with_a_trailing_newline_are_refused_as_the_cli_does() -> None:
    with pytest.raises(StackError, match="is not allowed: use letters"):
        stack_of('services:\n  "web\\n":\n    image: x\n')


def test_an_out_of_range_float_stays_text_as_go_yaml_keeps_it() -> None:
    stack = stack_of(HEAD + "    environment: {BIG: 1e400}\n")
    assert stack.services["web"].environment == {"BIG": "1e400"}


def test_an_env_file_line_breaks_only_where_the_cli_breaks_it() -> None:
    stack = stack_of(HEAD + "    env_file: a.env\n", files={"a.env": "A=1\x0cB=2\u0085C=3\r\nD=4\n".encode()})
    assert stack.services["web"].environment == {"A": "1\x0cB=2\u0085C=3", "D": "4"}


def test_a_long_syntax_port_from_a_variable_is_a_number_not_a_traceback() -> None:
    stack = stack_of(HEAD + "    ports: [{target: 80, published: '${PORT:-30080}'}]\n")
    assert stack.services["web"].ports[0].published == 30080


def test_an_alias_bomb_and_deep_nesting_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(StackError, match="values once aliases are expanded"):
        stack_of(bomb)
    with pytest.raises(StackError, match="nested more than"):
        stack_of("services: " + "[" * 200 + "]" * 200 + "\n")


def test_a_stack_file_over_the_size_cap_is_refused_before_parsing() -> None:
    with pytest.raises(StackError, match="larger than 1024 KiB"):
        stack_of("x-pad: '" + "a" * (1024 * 1024) + "'\n" + HEAD)


# -- property: random values, random encodings, the model and the CLI agree -------------------------------

safe_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
ENCODINGS = ("plain", "single", "double", "literal", "variable", "default", "anchor")


def encode(value: str, how: str, name: str) -> tuple[str, str, dict[str, str]]:
    """(anchors to put at the top, the YAML for the value, variables) that all mean `value` to the CLI."""
    escaped = value.replace("$", "$$")
    if how == "variable":
        return "", f'"${{{name}}}"', {name: value}
    if how == "default":   # a default is taken as written, `$` included (the CLI does not unescape it)
        if "}" in value or not value:
            return "", f'"${{{name}}}"', {name: value}
        return "", _double(f"${{{name}:-{value}}}"), {}
    if how == "single":
        return "", "'" + escaped.replace("'", "''") + "'", {}
    if how == "literal":
        return "", "|-\n        " + escaped, {}
    if how == "anchor":
        return f"x-{name.lower()}: &{name.lower()} " + _double(escaped) + "\n", f"*{name.lower()}", {}
    return "", _double(escaped), {}


def _double(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=safe_text, label=safe_text, port=st.integers(30000, 32767), replicas=st.integers(0, 9),
       how=st.lists(st.sampled_from(ENCODINGS), min_size=2, max_size=2))
def test_model_and_cli_agree_on_random_values_in_random_encodings(
        env: str, label: str, port: int, replicas: int, how: list[str], tmp_path: Path) -> None:
    if how[1] == "literal" and (label != label.strip() or "\n" in label or not label):
        how[1] = "double"
    if how[0] == "literal" and (env != env.strip() or not env):
        how[0] = "double"
    a_env, env_yaml, v1 = encode(env, how[0], "E")
    a_label, label_yaml, v2 = encode(label, how[1], "L")
    text = (f"version: '3.8'\n{a_env}{a_label}services:\n  web:\n    image: reg:5000/shop/web:1\n"
            f"    environment:\n      V: {env_yaml}\n    labels:\n      l: {label_yaml}\n"
            f"    ports: [{{target: 80, published: \"${{P:-{port}}}\"}}]\n    deploy: {{replicas: {replicas}}}\n")
    _, render = rendered(text, {**v1, **v2}, str(tmp_path))
    model = render.doc["services"]["web"]
    assert model["environment"] == {"V": env} and model["labels"] == {"l": label}
    seen = cli_config(render.text, tmp_path)["services"]["web"]
    assert seen["environment"] == {"V": env} and seen["labels"] == {"l": label}
    assert seen["ports"][0]["published"] == port and seen["deploy"]["replicas"] == replicas


def test_the_number_of_files_a_stack_makes_swarmops_read_is_capped() -> None:
    many = "".join(f"  c{i}: {{file: c.txt}}\n" for i in range(201))
    with pytest.raises(StackError, match="more than 200 configs and secrets"):
        stack_of(HEAD + "configs:\n" + many)
    with pytest.raises(StackError, match="more than 20 env files"):
        stack_of(HEAD + "    env_file: [" + ", ".join(["c.txt"] * 21) + "]\n")

"""Bad input never crashes it: garbled configs, stack files and webhook deliveries raise the module's own
SwarmopsError with a message, never a TypeError, KeyError, RecursionError or a parser's exception.

Each test runs a few hundred examples (a few seconds); SWARMOPS_FUZZ_EXAMPLES=N raises that for a long run,
and `python -m bench fuzz --minutes N` runs the same cases (CASES) for a fixed time."""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from swarmops.config.loader import load_config
from swarmops.domain.compose.load import load
from swarmops.domain.render import RenderRequest, age_secrets, referenced_files, render_stack
from swarmops.domain.stackfile import Variables, build_specs, load_stack
from swarmops.domain.webhook import PROVIDERS, delivery_id, event_kind, parse_push, verify
from swarmops.errors import ConfigError, StackError, SwarmopsError, WebhookError

# a reused anchor is legal YAML that ruamel warns about: garbled files are full of them
pytestmark = pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"

# SWARMOPS_FUZZ_EXAMPLES raises every test's example count for a long run
LONG_RUN = int(os.environ.get("SWARMOPS_FUZZ_EXAMPLES", "0") or 0)
settings.register_profile(
    "swarmops-fuzz", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
PROFILE = settings.get_profile("swarmops-fuzz")


def fuzz(examples: int) -> settings:
    """The fuzz profile with `examples` examples (about 5 s in the unit suite), or SWARMOPS_FUZZ_EXAMPLES."""
    return settings(PROFILE, max_examples=max(examples, LONG_RUN))


def raises_only(error: type[SwarmopsError], call: Callable[[], Any]) -> Any:
    """Run `call`; a SwarmopsError must be `error` and carry a message. Anything else fails the test."""
    try:
        return call()
    except SwarmopsError as e:
        assert isinstance(e, error), f"{type(e).__name__} where {error.__name__} was expected: {e}"
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return None


# --- generic inputs -------------------------------------------------------------------------------------

# pieces of YAML, compose and swarmops vocabulary: random text made of them reaches past the parser
TOKENS = [
    "\n", "\n  ", "\n    ", "  ", "- ", ": ", ":", ",", "{", "}", "[", "]", "? ", "|\n", ">-\n", "'", '"', "#",
    "---\n", "...\n", "%YAML 1.1\n", "%TAG !e! tag:example.com,2000:\n", "~", "null", "true", "no", "0x1f", "0o17",
    "010", "1e9", ".inf", ".nan", "-1", "2001-12-14", "2001-12-14T21:59:43Z", "=", "\t", "\\", "\x00", "\u2028",
    "&a ", "*a", "&b ", "*b", "<<: ", "<<: *a", "!!binary aGVsbG8=", "!!set ", "!!omap ", "!!pairs ", "!!timestamp ",
    "!!int ", "!!float ", "!!str ", "!!map ", "!!seq ", "!!python/object:os.system ", "!custom ", "!e!x ",
    "services", "web", "image", "build", "context", "dockerfile", "args", "target", "deploy", "labels", "placement",
    "constraints", "node.labels.role == app", "replicas", "env_file", "configs", "secrets", "file", "name",
    "source", "external", "x.age", "motd.txt", "../", "/etc/passwd", ".", "${SWARMOPS_REGISTRY}", "io.swarmops.commit",
    "registry", "state_dir", "apps", "apps_dir", "repo", "branch", "poll_interval", "30s", "5m", "policy",
    "profile", "port_range", "retry", "limit", "http", "listen", "127.0.0.1:9480", "nodes", "inventory", "ssh",
    "1" * 5000,
]
yaml_fragment = st.sampled_from(TOKENS) | st.text(max_size=6)
token_text = st.lists(yaml_fragment, max_size=40).map("".join)


@st.composite
def deeply_nested(draw: st.DrawFn) -> str:
    """One value nested thousands of levels deep: parsers recurse."""
    depth = draw(st.integers(10, 3000))
    opening, closing = draw(st.sampled_from([("[", "]"), ("[\n", "]"), ("{a: ", "}"), ("{a:\n", "}"), ("- ", ""),
                                             ("a:\n", "")]))
    if opening == "a:\n":
        return "".join(" " * i + "a:\n" for i in range(depth))
    if opening in ("[", "{a: "):
        depth = min(depth, 500)   # ruamel's scanner is quadratic on one line: seconds per example beyond this
    return opening * depth + "x" + closing * depth


scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from(["", "x.age", "./motd.txt", "../up", "/abs", "${SWARMOPS_REGISTRY}/x:1", "a=b", "0",
                             "/" + "x" * 300]))   # a file name longer than any file system takes


def mostly(usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """`usual` five times in six, else `rare` (any value): deep enough into the code, and still garbled."""
    return st.integers(0, 5).flatmap(lambda i: usual if i else (values if rare is None else rare))


names = st.text(max_size=10)
keys = mostly(names, st.integers() | st.none() | st.booleans())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=15)


def dump(data: Any) -> str:
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buf)
    return buf.getvalue()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` with a few nodes replaced by random values, removed, wrapped, or given random siblings."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            doc = draw(values) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        key, old = path[-1], parent[path[-1]]
        action = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "add"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "wrap":
            parent[key] = draw(st.sampled_from([[old], {"x": old}, str(old)]))
        elif isinstance(old, dict):
            old[draw(keys)] = draw(values)
        elif isinstance(old, list):
            old.insert(draw(st.integers(0, len(old))), draw(values))
        else:
            parent[key] = draw(values)
    return doc


@st.composite
def garbled(draw: st.DrawFn, seeds: list[str]) -> str:
    """A valid text with a few spans replaced by YAML fragments, or lines dropped and repeated."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            lines = text.splitlines(keepends=True) or [""]
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = draw(st.sampled_from([[], [lines[i], lines[i]], [lines[i].lstrip()], ["  " + lines[i]]]))
            text = "".join(lines)
        else:
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 12)))
            text = text[:i] + draw(yaml_fragment) + text[j:]
    return text


def yaml_documents(valid: Any, seeds: list[str]) -> st.SearchStrategy[str | bytes]:
    """Every kind of bad file: random text and bytes, deep nesting, random structures, broken valid files."""
    return st.one_of(
        st.text(max_size=200), st.binary(max_size=200), token_text, deeply_nested(),
        values.map(dump), mutated(valid).map(dump), garbled(seeds))


# --- config ---------------------------------------------------------------------------------------------

APPS_D = "APPS_D_PLACEHOLDER"
VALID_APP: dict[str, Any] = {
    "name": "good", "repo": "file:///srv/good.git", "branch": "main", "stack": "deploy/stack.yml", "role": "db",
    "allowed_roles": ["app"], "poll_interval": "1m", "failure_threshold": 2, "retry": {"limit": 1, "backoff": "2s"},
    "policy": {"profile": "restricted", "allowed_ports": [8080], "port_range": [30000, 32767]},
    "auth": {"token_file": "/etc/swarmops/token"}, "notify_urls": ["json://localhost"]}
VALID_CONFIG: dict[str, Any] = {
    "registry": "registry.local:5000", "state_dir": "/tmp/swarmops-fuzz", "poll_interval": "30s",
    "apps_dir": APPS_D, "retry": {"limit": 3, "backoff": "5s", "max_backoff": "3m"},
    "policy": {"profile": "restricted", "allowed_registries": ["registry.local:5000"], "allow_global": False},
    "nodes": {"ssh": {"user": "root", "port": 22}, "max_clock_skew": "2s",
              "inventory": [{"name": "n1", "address": "198.18.0.250", "role": "app"}]},
    "http": {"listen": "127.0.0.1:9480", "public_read": True}, "git": {"concurrency": 4, "timeout": "1m"},
    "apps": [{"name": "polise", "repo": "file:///srv/git/polise.git"}, VALID_APP | {"name": "other"}]}
CONFIG_SEEDS = [dump(VALID_CONFIG), f"""\
# written by hand: comments, flow style, an anchor
registry: registry.local:5000
state_dir: /tmp/swarmops-fuzz
poll_interval: 30s
apps_dir: {APPS_D}
retry: &retry {{limit: 2, backoff: 5s}}
http: {{listen: "127.0.0.1:9480"}}
apps:
  - name: polise
    repo: file:///srv/git/polise.git
    retry: *retry
    policy:
      allowed_ports: [8080, 8443]
"""]
APP_SEEDS = [dump(VALID_APP), "name: good\nrepo: file:///srv/good.git\n"]

config_files = yaml_documents(VALID_CONFIG, CONFIG_SEEDS)
# an apps.d entry: a file's content, or None for a directory that the glob also matches
apps_d_files = st.dictionaries(st.sampled_from(["a.yml", "b.yaml", "c.yml", "d.yml"]),
                               st.none() | yaml_documents(VALID_APP, APP_SEEDS), max_size=3)


def check_config(main: str | bytes, apps_d: dict[str, str | bytes | None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "apps.d").mkdir()
        for name, content in apps_d.items():
            if content is None:
                (root / "apps.d" / name).mkdir()
            elif isinstance(content, bytes):
                (root / "apps.d" / name).write_bytes(content)
            else:
                (root / "apps.d" / name).write_text(content, encoding="utf-8", errors="surrogatepass")
        path = root / "swarmops.yml"
        if isinstance(main, bytes):
            path.write_bytes(main)
        else:
            path.write_text(main.replace(APPS_D, str(root / "apps.d")), encoding="utf-8", errors="surrogatepass")
        loaded = raises_only(ConfigError, lambda: load_config(path))
        for e in loaded.app_errors if loaded else []:
            assert isinstance(e, ConfigError) and str(e).strip()


config_cases: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries({"main": config_files, "apps_d": st.just({})})
apps_d_cases = st.fixed_dictionaries({"main": mutated(VALID_CONFIG).map(dump) | garbled(CONFIG_SEEDS),
                                      "apps_d": apps_d_files})


@fuzz(300)
@given(case=config_cases)
def test_config_loader_raises_only_config_errors(case: dict[str, Any]) -> None:
    check_config(**case)


@fuzz(150)
@given(case=apps_d_cases)
def test_config_loader_turns_bad_apps_d_files_into_config_errors(case: dict[str, Any]) -> None:
    check_config(**case)


# --- stack file and render ------------------------------------------------------------------------------

GOLDEN = (DATA / "golden-stack.yml").read_text()
STACK_SEEDS = [GOLDEN, *(p.read_text() for p in sorted(ROOT.glob("stacks/*/stack.yml"))),
               *(p.read_text() for p in sorted((DATA / "hostile").glob("*.yml")))]
VALID_STACK = YAML(typ="safe", pure=True).load(GOLDEN)

SERVICE_KEYS = ["image", "build", "deploy", "env_file", "configs", "secrets", "labels", "environment", "ports",
                "command", "volumes", "networks"]
paths = st.sampled_from(["./motd.txt", "motd.txt", "db.age", "sub/key.age", "../x", "/etc/shadow", "", ".", "a/../b"])
images = st.sampled_from(["busybox:1", "${SWARMOPS_REGISTRY}/mirror/x:1", ""]) | st.text(max_size=10)
build = mostly(paths | st.fixed_dictionaries({}, optional={
    "context": mostly(paths), "dockerfile": mostly(paths), "target": values,
    "args": mostly(st.lists(st.sampled_from(["A=1", "B", "=", "C=x=y"]) | st.text(max_size=8), max_size=3)
                   | st.dictionaries(names, scalars, max_size=3))}))
constraints = st.lists(st.sampled_from(["node.labels.role == db", "node.labels.role==app", "node.role == manager"])
                       | scalars, max_size=3)
deploy = mostly(st.fixed_dictionaries({}, optional={
    "labels": mostly(st.lists(st.sampled_from(["io.swarmops.commit=x", "a=b", "c"]) | scalars, max_size=3)
                     | st.dictionaries(names, scalars, max_size=3)),
    "placement": mostly(st.fixed_dictionaries({}, optional={"constraints": mostly(constraints)})),
    "replicas": values}))
refs = mostly(st.lists(st.sampled_from(["motd", "db"]) | st.fixed_dictionaries({"source": values}) | values,
                       max_size=3))
service = mostly(st.fixed_dictionaries({"image": mostly(images)}, optional={
    "build": build, "deploy": deploy, "env_file": mostly(paths | st.lists(mostly(paths), max_size=3)),
    "configs": refs, "secrets": refs,
}).flatmap(lambda svc: st.dictionaries(st.sampled_from(SERVICE_KEYS) | keys, values, max_size=2).map(
    lambda extra: {**extra, **svc})))
file_objects = mostly(st.dictionaries(st.sampled_from(["motd", "db"]) | keys, mostly(st.fixed_dictionaries(
    {}, optional={"file": mostly(paths), "name": values, "external": values})), max_size=3))
compose = st.fixed_dictionaries(
    {"services": mostly(st.dictionaries(st.sampled_from(["web", "worker"]) | keys, service, min_size=1, max_size=3))},
    optional={"version": values, "configs": file_objects, "secrets": file_objects, "networks": values,
              "x-defaults": values})

stack_texts = st.one_of(st.text(max_size=200), token_text, deeply_nested(), values.map(dump),
                        garbled(STACK_SEEDS), mutated(VALID_STACK).map(dump))


def check_stack(text: str, filename: str, allow_empty: bool, role_label: str) -> None:
    """The daemon's way through a stack file (prepare.py): load, builds, secrets, files, render, read back."""
    def render() -> str:
        variables = Variables({"SWARMOPS_REGISTRY": "reg:5000"}, {"DOMAIN": "example.go.id"}, {})
        stack = load_stack(text, filename, variables, lambda rel: b"A=1\nB\n", allow_empty)
        images = {name: f"reg:5000/demo/{name}:fuzz" for name in build_specs(stack)}
        secret_names = {key: f"demo_{key}_fuzz" for key in age_secrets(stack)}
        digests = {path: "1" * 64 for path in referenced_files(stack)}
        return render_stack(stack, RenderRequest(
            app="demo", commit="a" * 40, role="app", allowed_roles=("app",), role_label=role_label, images=images,
            fingerprints={name: "f" * 64 for name in images}, file_digests=digests,
            deploy_dir="/var/lib/swarmops/deploys/demo/aaaaaaaaaaaa", secret_names=secret_names)).text

    rendered = raises_only(StackError, render)
    if rendered is not None:    # what renders reads back: it is what `docker stack deploy` gets
        load(rendered, "rendered")


def stack_cases(texts: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "text": texts, "filename": st.sampled_from(["stack.yml", "deploy/stack.yml"]),
        "allow_empty": st.booleans(), "role_label": st.sampled_from(["role", "tier"]) | st.text(max_size=8)})


@fuzz(250)
@given(case=stack_cases(stack_texts))
def test_stack_load_and_render_raise_only_stack_errors(case: dict[str, Any]) -> None:
    check_stack(**case)


@fuzz(150)
@given(case=stack_cases(compose.map(dump)))
def test_compose_documents_of_any_shape_raise_only_stack_errors(case: dict[str, Any]) -> None:
    check_stack(**case)


# --- webhooks -------------------------------------------------------------------------------------------

HEADER_NAMES = ["X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", "X-Gitea-Event", "X-Gitea-Delivery",
                "X-Gitea-Signature", "X-Forgejo-Event", "X-Forgejo-Delivery", "X-Forgejo-Signature",
                "X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Token", "Content-Type"]
header_names = st.sampled_from(HEADER_NAMES) | st.sampled_from(HEADER_NAMES).map(str.lower) | st.text(max_size=10)
# header values as an HTTP server hands them over: latin-1 text
headers = st.dictionaries(header_names, st.text(st.characters(max_codepoint=255), max_size=30)
                          | st.sampled_from(["push", "Push Hook", "sha256=", "0" * 64]), max_size=5)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15)
URL_KEYS = ["clone_url", "ssh_url", "git_url", "html_url", "git_http_url", "git_ssh_url", "url", "web_url"]
repository = st.dictionaries(st.sampled_from(URL_KEYS), json_values | st.sampled_from(
    ["https://h/o/r.git", "git@h:o/r.git", "", "://", "@:"]), max_size=4) | json_values
push_payload = st.fixed_dictionaries({}, optional={
    "ref": json_values | st.sampled_from(["refs/heads/main", "refs/tags/v1", "refs/heads/", ""]),
    "after": json_values | st.sampled_from(["0" * 40, "a" * 40, ""]), "checkout_sha": json_values,
    "repository": repository, "project": repository})
bodies = st.one_of(
    st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
    push_payload.map(lambda v: json.dumps(v).encode()),
    push_payload.map(lambda v: json.dumps(v).encode("utf-16")),
    st.integers(10, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(10, 200_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n))


def check_webhook(provider: str, headers: dict[str, str], body: bytes, secret: bytes) -> None:
    assert isinstance(verify(provider, headers, body, secret), bool)
    assert isinstance(event_kind(provider, headers), str)
    assert isinstance(delivery_id(provider, headers, body), str)
    push = raises_only(WebhookError, lambda: parse_push(provider, headers, body))
    if push is not None:
        assert push.repo_urls and all(isinstance(u, str) for u in push.repo_urls)
        assert isinstance(push.commit, str) and (push.branch is None or isinstance(push.branch, str))


webhook_cases = st.fixed_dictionaries({"provider": st.sampled_from(PROVIDERS), "headers": headers, "body": bodies,
                                       "secret": st.binary(max_size=20)})


@fuzz(400)
@given(case=webhook_cases)
def test_webhook_parsing_raises_only_webhook_errors(case: dict[str, Any]) -> None:
    check_webhook(**case)


# --- for `python -m bench fuzz`: every case as (strategy of keyword arguments, check) -------------------

CASES: dict[str, tuple[st.SearchStrategy[dict[str, Any]], Callable[..., None]]] = {
    "config": (config_cases, check_config),
    "config+apps.d": (apps_d_cases, check_config),
    "stack text": (stack_cases(stack_texts), check_stack),
    "compose docs": (stack_cases(compose.map(dump)), check_stack),
    "webhook": (webhook_cases, check_webhook),
}

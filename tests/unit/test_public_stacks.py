"""Fidelity against real stack files by other authors (tests/unit/data/public-stacks, each with its source):
`docker stack config` of the original, with its variables, equals `docker stack config` of swarmops'
render with no variables at all, except what swarmops sets on purpose (images of built services, its
labels, the role constraint, the names and paths of configs, secrets and env files). Files the model
refuses on purpose (relative binds) must be refused with their message."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmops.domain.compose.shapes import parse_constraint
from swarmops.domain.render import RenderRequest, render_stack
from swarmops.domain.stackfile import Variables, build_specs, load_stack
from swarmops.errors import StackError
from swarmops.ops.policycheck import disk_reader

CORPUS = Path(__file__).parent / "data" / "public-stacks"
FIXTURES = sorted(p for p in CORPUS.iterdir() if (p / "stack.yml").is_file())
CLI_PATH = "/usr/local/bin:/usr/bin:/bin"


def variables(fixture: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in (fixture / "vars.env").read_text().splitlines() if "=" in line)
    return {k: v for k, _, v in pairs}


def stack_config(path: Path, env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run(["docker", "stack", "config", "-c", path.name], capture_output=True, text=True,
                         env={"PATH": CLI_PATH, **env}, cwd=path.parent, timeout=60)
    assert res.returncode == 0, f"{path}: {res.stderr}"
    doc: dict[str, Any] = yaml.safe_load(res.stdout)
    return doc


def load(fixture: Path) -> Any:
    text = (fixture / "stack.yml").read_text()
    return load_stack(text, "stack.yml", Variables({}, variables(fixture), {}), disk_reader(fixture))


def test_the_corpus_has_what_the_issue_asks_for() -> None:
    assert len(FIXTURES) >= 15
    versions = {str((yaml.safe_load((f / "stack.yml").read_text()) or {}).get("version")) for f in FIXTURES}
    assert {"3.0", "3.1", "3.2", "3.3", "3.4", "3.8", "None"} <= versions
    texts = [(f / "stack.yml").read_text() for f in FIXTURES]
    assert any("<<: *" in t for t in texts) and any("\nx-" in t for t in texts)
    assert all(t.startswith("# source: ") for t in texts)
    assert sum((f / "expect.txt").is_file() for f in FIXTURES) >= 2


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if (f / "expect.txt").is_file()], ids=lambda f: f.name)
def test_relative_binds_are_refused_with_file_line_and_the_fix(fixture: Path) -> None:
    with pytest.raises(StackError, match=r"^stack\.yml:\d+: services\.[^:]+: .* binds a path relative to the repo, "
                                         r"which is not on the nodes; put the files in configs:"):
        load(fixture)


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if not (f / "expect.txt").is_file()],
                         ids=lambda f: f.name)
def test_docker_reads_the_render_as_it_reads_the_original(fixture: Path, tmp_path: Path) -> None:
    stack = load(fixture)
    images = {name: f"reg.test:5000/{fixture.name}/{name}:abc" for name in build_specs(stack)}
    rendered = render_stack(stack, RenderRequest(
        app="pub", commit="c" * 40, role="app", allowed_roles=("app",), role_label="role", images=images,
        fingerprints={}, file_digests={}, deploy_dir=str(tmp_path),
        secret_names={}))
    for rel, copy_path in rendered.files.items():
        Path(copy_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture / rel, copy_path)
    out = tmp_path / "stack.yml"
    out.write_text(rendered.text)
    original = comparable(stack_config(fixture / "stack.yml", variables(fixture)), set(images), added=False)
    render = comparable(stack_config(out, {}), set(images), added=True)
    assert render == original


def comparable(doc: dict[str, Any], built: set[str], added: bool) -> dict[str, Any]:
    """What Docker runs, with the names swarmops chooses replaced by what they stand for."""
    doc = copy.deepcopy(doc)
    tops = {s: doc.get(s) or {} for s in ("networks", "volumes", "secrets", "configs")}
    out: dict[str, Any] = {"services": {}}
    for name, svc in (doc.get("services") or {}).items():
        svc.pop("build", None)
        svc.pop("env_file", None)
        if name in built:
            svc.pop("image", None)
        deploy = svc.get("deploy") or {}
        labels = {k: v for k, v in (deploy.pop("labels", None) or {}).items() if not k.startswith("io.swarmops.")}
        if labels:
            deploy["labels"] = labels
        placement = deploy.get("placement") or {}
        constraints = sorted(_constraint(c) for c in placement.pop("constraints", None) or [])
        if added:
            constraints.remove(("node.labels.role", "==", "app"))
        if constraints:
            placement["constraints"] = constraints
        if placement:
            deploy["placement"] = placement
        elif "placement" in deploy:
            del deploy["placement"]
        if deploy:
            svc["deploy"] = deploy
        else:
            svc.pop("deploy", None)
        for section, default in (("secrets", ""), ("configs", "/")):
            if section in svc:
                svc[section] = sorted((_object(tops[section], r["source"]), r.get("target") or default + r["source"],
                                       r.get("uid"), r.get("gid"), r.get("mode")) for r in svc[section])
        if "networks" in svc:
            svc["networks"] = {_object(tops["networks"], k): v for k, v in svc["networks"].items()}
        for mount in svc.get("volumes") or []:
            if mount.get("type") == "volume" and mount.get("source"):
                mount["source"] = _object(tops["volumes"], mount["source"])
        out["services"][name] = svc
    for section, objects in tops.items():
        out[section] = sorted(_object(objects, key) for key in objects)
    return out


def _constraint(text: str) -> tuple[str, str, str]:
    c = parse_constraint(text, StackError)
    return (c.key, c.op, c.value.lower())


def _object(objects: dict[str, Any], key: str) -> str:
    """An object by what identifies it to Swarm: an external one by its name, a file one by its file's
    base name (the render moves and renames it), any other by its key."""
    spec = objects.get(key) or {}
    if spec.get("external"):
        return f"external:{spec.get('name') or key}"
    if spec.get("file"):
        return f"file:{Path(spec['file']).name}"
    return f"{key}:{sorted((k, str(v)) for k, v in spec.items() if k != 'name')}"

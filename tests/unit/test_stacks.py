"""Every infrastructure stack is read by Docker, renders with swarmops, pins its images in the private
registry, and passes the privileged profile (and, being infrastructure, not the restricted one)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from swarmops.config.models import AppConfig, Config
from swarmops.ops.policycheck import check_stack_text

STACKS = Path(__file__).resolve().parents[2] / "stacks"
ROLES = {"proxy": "app", "registry": "registry", "minio": "minio", "mysql": "db", "postgres": "db", "awdi": "awdi"}
CONFIG = Config.model_validate({"registry": "registry.local:5000", "apps": []})


def app(name: str) -> AppConfig:
    return AppConfig.model_validate({"name": name, "repo": "file:///dev/null", "role": ROLES[name],
                                     "stack": f"stacks/{name}/stack.yml", "policy": {"profile": "privileged"}})


def test_every_stack_is_covered() -> None:
    infrastructure = sorted(p.name for p in STACKS.iterdir() if (p / "stack.yml").is_file()
                            and p.name not in ("polise", "swarmops"))
    assert infrastructure == sorted(ROLES)   # polise is an app, swarmops runs swarmops: both tested below


@pytest.mark.parametrize("name", sorted(ROLES))
def test_stack_passes_the_privileged_profile_and_pins_private_images(name: str) -> None:
    text = (STACKS / name / "stack.yml").read_text()
    found = check_stack_text(CONFIG, app(name), text, f"stacks/{name}/stack.yml", None, STACKS.parent)
    assert [str(v) for v in found if v.severity == "deny"] == []
    doc = YAML(typ="safe").load(text)
    for svc in doc["services"].values():
        if "build" in svc:   # built here FROM a base in the private registry, pinned
            base = re.search(r"^ARG BASE=(\S+)$", (STACKS / name / "Dockerfile").read_text(), re.M)
            assert base and base[1].startswith("registry.local:5000/base/"), name
            image = base[1]
        else:
            image = svc["image"]
            assert image.startswith("${SWARMOPS_REGISTRY}/")
        assert ":" in image.rsplit("/", 1)[1] and not image.endswith(":latest")
        assert (svc["deploy"]["resources"]["limits"])
    assert (STACKS / name / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(ROLES))
def test_stack_lands_on_its_role(name: str) -> None:
    doc = YAML(typ="safe").load((STACKS / name / "stack.yml").read_text())
    for svc in doc["services"].values():
        assert f"node.labels.role == {ROLES[name]}" in svc["deploy"]["placement"]["constraints"]


@pytest.mark.skipif(shutil.which("docker") is None and not os.environ.get("CI"),
                    reason="the docker CLI is not installed (CI requires it)")
@pytest.mark.parametrize("name", sorted(ROLES))
def test_docker_reads_the_stack(tmp_path: Path, name: str) -> None:
    if " config " not in subprocess.run(["docker", "stack", "--help"], capture_output=True, text=True).stdout:
        if os.environ.get("CI"):
            pytest.fail("CI needs a docker CLI with `stack config` (28.x) to check the render")
        pytest.skip("this docker CLI has no `stack config`")
    shutil.copytree(STACKS / name, tmp_path / name)
    doc = YAML(typ="safe").load((tmp_path / name / "stack.yml").read_text())
    for spec in (doc.get("secrets") or {}).values():
        (tmp_path / name / spec["file"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / spec["file"]).write_text("stand-in")
    out = subprocess.run(["docker", "stack", "config", "-c", "stack.yml"], cwd=tmp_path / name, capture_output=True,
                         text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": "unix:///nope",
                                         "SWARMOPS_REGISTRY": "registry.local:5000"})
    assert out.returncode == 0, out.stderr
    if any("image" in svc for svc in doc["services"].values()):   # a built one gets its image from swarmops
        assert "registry.local:5000/" in out.stdout


def test_restricted_profile_refuses_the_proxy_stack() -> None:
    text = (STACKS / "proxy" / "stack.yml").read_text()
    found = check_stack_text(CONFIG, app("proxy"), text, "stacks/proxy/stack.yml", "restricted", STACKS.parent)
    assert {"SO110", "SO111", "SO113", "SO116"} <= {v.rule for v in found if v.severity == "deny"}


def test_polise_passes_the_restricted_profile_and_mounts_no_docker_socket() -> None:
    text = (STACKS / "polise" / "stack.yml").read_text()
    polise = AppConfig.model_validate({"name": "polise", "repo": "file:///dev/null", "role": "app",
                                       "stack": "stacks/polise/stack.yml"})
    found = check_stack_text(CONFIG, polise, text, "stacks/polise/stack.yml", "restricted", STACKS.parent)
    assert [str(v) for v in found if v.severity == "deny"] == []
    doc = YAML(typ="safe").load(text)
    mounts = [str(v) for svc in doc["services"].values() for v in svc.get("volumes", [])]
    assert not any("docker.sock" in m for m in mounts) and "docker.sock" not in text


def test_polise_builds_from_the_runtime_image_of_its_requirements() -> None:
    """The Dockerfile's runtime tag is the hash build-runtime gives requirements.txt: they cannot drift."""
    digest = hashlib.sha256((STACKS / "polise" / "requirements.txt").read_bytes()).hexdigest()[:12]
    dockerfile = (STACKS / "polise" / "Dockerfile").read_text()
    assert f"ARG RUNTIME=registry.local:5000/polise/runtime:{digest}\n" in dockerfile


def test_the_swarmops_service_runs_once_on_a_manager_with_the_engine_socket_and_a_pinned_image(
        tmp_path: Path) -> None:
    doc = YAML(typ="safe").load((STACKS / "swarmops" / "stack.yml").read_text())
    svc = doc["services"]["daemon"]
    assert svc["deploy"]["replicas"] == 1 and svc["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in svc["volumes"]
    assert svc["image"] == "${SWARMOPS_REGISTRY}/swarmops/swarmops:${SWARMOPS_VERSION}"
    assert svc["deploy"]["update_config"]["order"] == "stop-first"   # never two at once from an update
    assert svc["stop_grace_period"] == "70s"                           # longer than shutdown_grace (60 s)
    (tmp_path / "swarmops.yml").write_text("registry: registry.local:5000\n")
    (tmp_path / "webhook.secret").write_text("stand-in")
    (tmp_path / "docker-config.json").write_text("{}")
    out = subprocess.run(["docker", "stack", "config", "-c", str(STACKS / "swarmops" / "stack.yml")], cwd=tmp_path,
                         capture_output=True, text=True,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": "unix:///nope",
                              "SWARMOPS_REGISTRY": "registry.local:5000", "SWARMOPS_VERSION": "0.1.0",
                              "SWARMOPS_CONFIG_FILE": str(tmp_path / "swarmops.yml"),
                              "SWARMOPS_WEBHOOK_SECRET_FILE": str(tmp_path / "webhook.secret"),
                              "SWARMOPS_REGISTRY_AUTH_FILE": str(tmp_path / "docker-config.json")})
    assert out.returncode == 0, out.stderr
    assert "registry.local:5000/swarmops/swarmops:0.1.0" in out.stdout


def test_every_proxy_entrypoint_strips_identity_headers_and_dynamic_yml_gets_all_it_reads() -> None:
    """The real Traefik's behaviour is tested in tests/integration/test_proxy_sso.py; this keeps the stack's
    flags, environment and mounts in step with stacks/proxy/dynamic.yml."""
    doc = YAML(typ="safe").load((STACKS / "proxy" / "stack.yml").read_text())
    svc = doc["services"]["traefik"]
    flags = svc["command"]
    entrypoints = {m[1] for f in flags if (m := re.match(r"--entrypoints\.(\w+)\.address=", f))}
    assert entrypoints == {"web", "websecure", "traefik"}   # traefik: the ping's, not published
    for ep in entrypoints:   # the aliases of any header (X_Auth_User ...) are removed
        assert f"--entrypoints.{ep}.http.aliasHeadersStrategy=delete" in flags
    for ep in ("web", "websecure"):   # and a client's own identity headers
        assert f"--entrypoints.{ep}.http.middlewares=sso-strip@file" in flags
    assert f"--providers.file.filename={svc['configs'][0]['target']}" in flags
    assert doc["configs"][svc["configs"][0]["source"]]["file"] == "dynamic.yml"
    dynamic = (STACKS / "proxy" / "dynamic.yml").read_text()
    read = set(re.findall(r'\benv "(\w+)"', dynamic))
    required = re.search(r'range \$var := list ((?:"\w+" ?)+)', dynamic)
    assert required and set(re.findall(r'"(\w+)"', required[1])) == read   # a missing one stops the file
    assert read <= set(svc["environment"])
    for var in ("TLS_CERT_FILE", "TLS_KEY_FILE"):   # the certificate and key are the stack's secrets
        secret = svc["environment"][var].removeprefix("/run/secrets/")
        assert secret in svc["secrets"] and doc["secrets"][secret]["file"] == f"secrets/{secret}.age"


def test_the_proxy_keeps_traefiks_api_off_and_its_sso_door_on_every_spelling_of_an_app_host() -> None:
    """Any `--api.*` flag turns Traefik's API on (`--api.dashboard=false` too: /api/rawdata then shows the whole
    routing config on a router naming api@internal); the door's host pattern takes a trailing dot, as an app's
    Host() does. tests/integration/test_proxy_sso.py shows both on the real Traefik."""
    flags = [str(f) for f in YAML(typ="safe").load((STACKS / "proxy" / "stack.yml").read_text())
             ["services"]["traefik"]["command"]]
    assert [f for f in flags if re.match(r"--api(\.|=|$)", f)] == []
    dynamic = (STACKS / "proxy" / "dynamic.yml").read_text()
    doors = re.findall(r"^ {6}rule: '(.*)'$", dynamic, re.M)
    assert doors == [r'HostRegexp(`^.+\.{{ env "SSO_DOMAIN" | regexQuoteMeta }}\.?$`) && PathPrefix(`/_sso/`)'] * 2

"""Issue 6, node checks over SSH: an sshd runs in every lab node's namespace (lab/swarm-lab sshd), with
its own host key; paramiko verifies it against known_hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import ROOT, Swarmops

pytestmark = pytest.mark.exclusive

SSH_DIR = Path("/var/lib/swarm-lab/ssh")


@pytest.fixture(scope="module")
def lab_ssh(lab: docker.APIClient) -> list[dict[str, str]]:
    subprocess.run(["bash", str(ROOT / "lab" / "swarm-lab"), "sshd"], check=True, capture_output=True)
    rows = [line.split() for line in (SSH_DIR / "inventory").read_text().splitlines()]
    return [{"name": n, "address": a, "role": r} for n, a, r in rows]


def nodes_config(swarmops: Swarmops, inventory: list[dict[str, str]], known_hosts: Path | None = None) -> None:
    swarmops.extra["nodes"] = {
        "ssh": {"user": "root", "key_file": str(SSH_DIR / "id_ed25519"), "port": 2222, "timeout": "3s",
                "known_hosts_file": str(known_hosts or SSH_DIR / "known_hosts")},
        "inventory": inventory, "min_free_disk_gb": 0.1}
    swarmops.write()


def check(swarmops: Swarmops) -> tuple[int, dict[str, Any]]:
    res = swarmops.run("nodes", "check", "--json", check=False)
    return res.returncode, {row["name"]: row for row in json.loads(res.stdout)}


def node_id(lab: docker.APIClient, address: str) -> str:
    return str(next(n["ID"] for n in lab.nodes() if n["Status"]["Addr"] == address))


def test_nodes_check_passes_on_the_healthy_lab(swarmops: Swarmops, lab_ssh: list[dict[str, str]]) -> None:
    nodes_config(swarmops, lab_ssh)
    code, rows = check(swarmops)
    assert code == 0, rows
    assert set(rows) == {"manager", "registry", "app2", "awdi", "minio", "db"}
    for row in rows.values():
        # the registry answers every node, asking for credentials (the nodes are never logged in)
        assert row["reachable"] and row["swarm"] == "active" and row["registry"] == "401"
        assert row["docker"].startswith("20.") and row["free_disk"].endswith("GB")
    table = swarmops.run("nodes", "check").stdout
    assert "NODE" in table and table.count(" ok\n") == 6


def test_a_wrong_label_is_reported_and_nodes_label_fixes_it(
        lab: docker.APIClient, swarmops: Swarmops, lab_ssh: list[dict[str, str]]) -> None:
    nodes_config(swarmops, lab_ssh)
    db = next(e for e in lab_ssh if e["name"] == "db")
    nid = node_id(lab, db["address"])
    spec = lab.inspect_node(nid)
    lab.update_node(nid, spec["Version"]["Index"], {**spec["Spec"], "Labels": {"role": "app"}})
    try:
        code, rows = check(swarmops)
        assert code == 1 and "label role=app, expected db" in " ".join(rows["db"]["problems"])
        out = swarmops.run("nodes", "label").stdout
        assert "db: set role=db (was app)" in out
        assert check(swarmops)[0] == 0
    finally:
        spec = lab.inspect_node(nid)
        lab.update_node(nid, spec["Version"]["Index"], {**spec["Spec"], "Labels": {"role": "db"}})


def test_a_stopped_registry_is_reported(swarmops: Swarmops, lab_ssh: list[dict[str, str]]) -> None:
    nodes_config(swarmops, lab_ssh)
    subprocess.run(["pkill", "-f", "docker-registry serve"], check=True)
    try:
        code, rows = check(swarmops)
        assert code == 1
        assert all("registry not reachable" in " ".join(r["problems"]) for r in rows.values())
    finally:
        subprocess.run(["bash", str(ROOT / "lab" / "swarm-lab"), "up"], check=True, capture_output=True)


def test_an_unreachable_node_times_out_with_a_clear_message(
        swarmops: Swarmops, lab_ssh: list[dict[str, str]]) -> None:
    nodes_config(swarmops, [*lab_ssh, {"name": "gone", "address": "198.18.0.250", "role": "app"}])
    code, rows = check(swarmops)
    assert code == 1 and rows["gone"]["problems"] == ["no answer from 198.18.0.250 within 3s"]
    assert rows["app2"]["ok"]


def test_a_changed_host_key_is_refused(swarmops: Swarmops, lab_ssh: list[dict[str, str]], tmp_path: Path) -> None:
    app2 = next(e for e in lab_ssh if e["name"] == "app2")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    lines = (SSH_DIR / "known_hosts").read_text().splitlines()
    forged = [f"[{app2['address']}]:2222 {other}" if line.startswith(f"[{app2['address']}]") else line
              for line in lines]
    (tmp_path / "known_hosts").write_text("\n".join(forged) + "\n")
    nodes_config(swarmops, lab_ssh, tmp_path / "known_hosts")
    code, rows = check(swarmops)
    assert code == 1 and "CHANGED: refused" in rows["app2"]["problems"][0]
    assert rows["db"]["ok"]
    (tmp_path / "known_hosts").write_text("\n".join(ln for ln in lines if not ln.startswith(f"[{app2['address']}]")))
    assert "unknown" in check(swarmops)[1]["app2"]["problems"][0]


def test_remote_builds_run_on_the_registry_node_over_ssh(
        lab: docker.APIClient, swarmops: Swarmops, lab_ssh: list[dict[str, str]], repo_factory: Any,
        tmp_path: Path) -> None:
    from tests.integration.conftest import GitRepo, services, stack_image, web_app

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(f"Host 198.18.0.2\n  Port 2222\n  IdentityFile {SSH_DIR / 'id_ed25519'}\n")
    (home / ".ssh" / "known_hosts").write_text((SSH_DIR / "known_hosts").read_text())
    swarmops.extra["build"] = {"docker_host": "ssh://root@198.18.0.2:2222"}
    repo: GitRepo = repo_factory()
    commit = repo.commit("built remotely", web_app("remote"))
    app = swarmops.add_app(swarmops.name("remote"), repo.url)
    res = subprocess.run([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "sync", app],
                         env={**os.environ, "HOME": str(home), "DOCKER_CONFIG": str(Path.home() / ".docker")},
                         capture_output=True, text=True, timeout=300)   # the manager's registry login
    assert res.returncode == 0, res.stdout + res.stderr
    image = f"{stack_image(services(lab, app)['web'])}"
    assert image.endswith(commit[:12])
    registry_node = docker.APIClient(base_url="unix:///run/swarm-lab/registry.sock")
    assert any(image in (i.get("RepoTags") or []) for i in registry_node.images())
    assert not any(image in (i.get("RepoTags") or []) for i in lab.images())

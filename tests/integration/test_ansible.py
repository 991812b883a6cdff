"""Issue 6, ansible: the playbook lints (production profile) and passes --syntax-check; its swarm-join
and node-label tasks run for real against the lab over SSH (an sshd in each node's namespace). The
docker, registry and swarmops roles are only linted here: the lab's engines and registry are its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import ROOT

ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
SSH_DIR = Path("/var/lib/swarm-lab/ssh")
GROUPS = {"app": "app", "registry": "registry", "awdi": "awdi", "minio": "minio", "db": "db"}


def run(*args: str, cwd: Path = ANSIBLE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_playbook_passes_ansible_lint_production_and_syntax_check() -> None:
    res = run(str(BIN / "ansible-playbook"), "--syntax-check", "site.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(str(BIN / "ansible-lint"), "--profile", "production", "--offline")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture
def lab_inventory(lab: docker.APIClient, tmp_path: Path) -> Path:
    subprocess.run(["bash", str(ROOT / "lab" / "swarm-lab"), "sshd"], check=True, capture_output=True)
    hosts = [line.split() for line in (SSH_DIR / "inventory").read_text().splitlines()]
    lines = ["all:", "  vars:", "    ansible_user: root", "    ansible_port: 2222",
             f"    ansible_ssh_private_key_file: {SSH_DIR / 'id_ed25519'}",
             f"    ansible_ssh_common_args: -o UserKnownHostsFile={SSH_DIR / 'known_hosts'} "
             "-o StrictHostKeyChecking=yes",
             "    ansible_python_interpreter: /usr/bin/python3", "  hosts:"]
    for name, address, _ in hosts:
        lines += [f"    {name}: {{ansible_host: {address}, docker_host: 'unix:///run/swarm-lab/{name}.sock'}}"]
    lines += ["  children:", "    manager:", "      hosts: {manager: {}}"]
    for group, role in GROUPS.items():
        members = [name for name, _, r in hosts if r == role]
        lines += [f"    {group}:", "      hosts: {" + ", ".join(f"{m}: {{}}" for m in members) + "}"]
    inventory = tmp_path / "lab.yml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


@pytest.mark.exclusive   # the db node leaves the swarm and joins again
def test_swarm_join_and_labels_run_for_real_and_are_idempotent(lab: docker.APIClient, lab_inventory: Path) -> None:
    db = docker.APIClient(base_url="unix:///run/swarm-lab/db.sock", timeout=30)
    old_id = db.info()["Swarm"]["NodeID"]
    db.leave_swarm(force=True)
    for _ in range(60):   # the manager sees it down before it can remove it
        if lab.inspect_node(old_id)["Status"]["State"] == "down":
            break
        time.sleep(0.5)
    lab.remove_node(old_id, force=True)
    try:
        res = run(str(BIN / "ansible-playbook"), "-i", str(lab_inventory), "site.yml", "--tags", "swarm,labels")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "changed=0" not in next(ln for ln in res.stdout.splitlines() if ln.startswith("db "))
        new = db.info()["Swarm"]
        assert new["LocalNodeState"] == "active" and new["NodeID"] != old_id
        assert lab.inspect_node(new["NodeID"])["Spec"]["Labels"] == {"role": "db"}
        again = run(str(BIN / "ansible-playbook"), "-i", str(lab_inventory), "site.yml", "--tags", "swarm,labels")
        assert again.returncode == 0 and all("changed=0" in ln for ln in again.stdout.splitlines()
                                             if " : ok=" in ln), again.stdout
        assert "SWMTKN" not in res.stdout + res.stderr   # the join token is never printed
    finally:
        if db.info()["Swarm"]["LocalNodeState"] != "active":   # leave the lab as it was
            subprocess.run(["bash", str(ROOT / "lab" / "swarm-lab"), "up"], capture_output=True, check=False)

"""Issue 6, systemd: the unit verifies, and the daemon speaks sd_notify (READY, WATCHDOG, STOPPING)
to a notify-aware runner and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from tests.integration.conftest import ROOT, GitRepo, Swarmops, web_app


def test_the_unit_file_verifies(tmp_path: Path) -> None:
    unit = tmp_path / "swarmops.service"
    binary = shutil.which("swarmops") or str(Path(sys.executable).with_name("swarmops"))
    unit.write_text((ROOT / "systemd" / "swarmops.service").read_text().replace("/opt/swarmops/bin/swarmops", binary))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    text = unit.read_text()
    for line in ("Type=notify", "Restart=on-failure", "WatchdogSec=", "Environment=SWARMOPS_CONFIG=",
                 "ReadWritePaths=/var/lib/swarmops", "SupplementaryGroups=docker", "ProtectSystem=strict"):
        assert line in text


def test_daemon_sends_ready_and_watchdog_and_stops_cleanly_on_sigterm(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    repo: GitRepo = repo_factory()
    repo.commit("init", web_app())
    swarmops.add_app(swarmops.name("notify"), repo.url)
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        messages = [sock.recv(4096).decode()]
        assert messages[0] == "READY=1"
        while "WATCHDOG=1" not in messages:
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        while "STOPPING=1" not in messages:
            messages.append(sock.recv(4096).decode())
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()

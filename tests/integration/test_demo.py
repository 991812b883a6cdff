"""The README's demo runs in the suite so that it cannot rot. It runs beside the other lab tests: its app
and port are its own, and it is the only user of the default deploy lock (the benches take their own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker

from tests.integration.conftest import ROOT, free_node_port, remove_stack


def test_demo_deploys_rolls_forward_and_reports(lab: docker.APIClient, run_id: str, tmp_path: Path) -> None:
    app = f"demo-{run_id}"
    env = {**os.environ, "SWARMOPS_DEMO_DIR": str(tmp_path / "demo"), "SWARMOPS_DEMO_APP": app,
           "SWARMOPS_DEMO_PORT": str(free_node_port())}
    try:
        res = subprocess.run(["bash", str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        out = res.stdout
        assert "hello from version 1" in out and "hello from version 2" in out
        assert f"{app}: deployed" in out and "1 relabel" in out
        status_line = next(line for line in out.splitlines() if line.startswith(app + " "))
        assert "Synced" in status_line and "succeeded" in status_line
    finally:
        remove_stack(lab, app)

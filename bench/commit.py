"""Issue 11's single-commit case: one commit to a one-service app, from push to the new task running,
done by swarmops (detect, fetch, build, push, render, policy, stack deploy, watch) against the same steps
done by hand with the docker CLI (build, push, stack deploy, wait for the new task), alternated in one run."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from bench import lab


def app_files(version: str) -> dict[str, str]:
    return {"web/Dockerfile": f"FROM {lab.BASE_IMAGE}\nCOPY index.html /www/index.html\n{lab.SERVE}\n",
            "web/index.html": f"{version}\n",
            "stack.yml": "version: \"3.8\"\nservices:\n  web:\n    build: ./web\n    stop_grace_period: 1s\n"
                         "    deploy: {update_config: {monitor: 1s}}\n"}


def docker_cli(*args: str, cwd: Path | None = None, stdin: str | None = None) -> None:
    subprocess.run(["docker", *args], cwd=cwd, input=stdin, text=True, check=True, capture_output=True,
                   env={**os.environ, "DOCKER_HOST": lab.MANAGER})


def running_image(api: docker.APIClient, service: str) -> set[str]:
    tasks = api.tasks(filters={"service": service, "desired-state": "running"})
    return {t["Spec"]["ContainerSpec"]["Image"].split("@")[0] for t in tasks if t["Status"]["State"] == "running"}


def by_hand(api: docker.APIClient, work: Path, stack: str, version: str) -> float:
    """What an operator would type, timed from the commit being there to the new task running."""
    image = f"{lab.REGISTRY}/{stack}/web:{version}"
    start = time.perf_counter()
    docker_cli("build", "-q", "-t", image, str(work / "web"))
    docker_cli("push", "-q", image)
    manifest = (f"version: \"3.8\"\nservices:\n  web:\n    image: {image}\n    stop_grace_period: 1s\n"
                "    deploy: {update_config: {monitor: 1s}, placement: {constraints: [node.labels.role == app]}}\n")
    docker_cli("stack", "deploy", "--prune", "-c", "-", stack, stdin=manifest)
    while running_image(api, f"{stack}_web") != {image}:
        time.sleep(0.1)
    return time.perf_counter() - start


def run(runs: int = 3) -> dict[str, Any]:
    api = docker.APIClient(base_url=lab.MANAGER, timeout=60)
    rid = lab.run_id()
    name, hand_stack = f"bench-commit-{rid}", f"bench-hand-{rid}"
    with tempfile.TemporaryDirectory(prefix="swarmops-commit-") as tmp:
        repo = lab.Repo(Path(tmp) / "repo")
        repo.commit("init", app_files("v0"))
        cfg = lab.config(Path(tmp) / "state", [{"name": name, "repo": repo.url}], settle="0s")
        rec = lab.reconciler(cfg)
        ours: list[float] = []
        hand: list[float] = []
        try:
            rec.reconcile(cfg.apps[0], trigger="poll")
            by_hand(api, repo.work, hand_stack, "v0")
            for i in range(1, runs + 1):
                repo.commit(f"v{i}", app_files(f"v{i}"))
                start = time.perf_counter()
                outcome = rec.reconcile(cfg.apps[0], trigger="poll")
                ours.append(time.perf_counter() - start)
                if outcome.result != "deployed":
                    raise SystemExit(f"bench: {name} did not deploy: {outcome.message}")
                hand.append(by_hand(api, repo.work, hand_stack, f"v{i}"))
        finally:
            lab.remove_stack(api, name)
            lab.remove_stack(api, hand_stack)
    o, h = statistics.median(ours), statistics.median(hand)
    return {"case": "one commit to running (1 service, build + push + deploy)", "runs": runs,
            "swarmops_s": round(o, 3), "by_hand_s": round(h, 3), "ratio": round(o / h, 3), "target": "<= 1.1x"}


def report(result: dict[str, Any]) -> None:
    print(f"{'case':56} {'swarmops':>9} {'by hand':>8} {'ratio':>6}  target")
    print(f"{result['case']:56} {result['swarmops_s']:>8.2f}s {result['by_hand_s']:>7.2f}s "
          f"{result['ratio']:>5.2f}x  {result['target']}")
    print(json.dumps(result))

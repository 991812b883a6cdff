"""Issue 8's benchmark: a docs-only commit from detection to synced, against a commit that rebuilds
every service of the same app, measured in the same run on the lab."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from bench import lab


def _timed(rec: Any, app: Any) -> tuple[float, str]:
    start = time.perf_counter()
    outcome = rec.reconcile(app, trigger="poll")
    elapsed = time.perf_counter() - start
    if outcome.result != "deployed":
        raise SystemExit(f"bench: {app.name} did not deploy: {outcome.result} {outcome.message}")
    return elapsed, outcome.result


def run(runs: int = 3) -> dict[str, Any]:
    api = docker.APIClient(base_url=lab.MANAGER, timeout=60)
    app_name = f"bench-docs-{lab.run_id()}"
    with tempfile.TemporaryDirectory(prefix="swarmops-bench-") as tmp:
        repo = lab.Repo(Path(tmp) / "repo")
        repo.commit("init", lab.two_service_app("v0"))
        cfg = lab.config(Path(tmp) / "state", [{"name": app_name, "repo": repo.url}])
        rec = lab.reconciler(cfg)
        app = cfg.apps[0]
        try:
            _timed(rec, app)
            docs: list[float] = []
            full: list[float] = []
            docs_restarts: list[int] = []
            full_restarts: list[int] = []
            for i in range(runs):
                before = lab.task_ids(api, app_name)
                repo.commit(f"docs {i}", {"docs/USAGE.md": f"# Usage\nrevision {i}\n"})
                docs.append(_timed(rec, app)[0])
                docs_restarts.append(len(before - lab.task_ids(api, app_name)))
                before = lab.task_ids(api, app_name)
                repo.commit(f"code {i}", lab.two_service_app(f"v{i + 1}"))
                full.append(_timed(rec, app)[0])
                full_restarts.append(len(before - lab.task_ids(api, app_name)))
        finally:
            lab.remove_stack(api, app_name)
    docs_s, full_s = statistics.median(docs), statistics.median(full)
    return {"case": "docs-only commit vs full rebuild (2 services)", "runs": runs,
            "docs_commit_s": round(docs_s, 3), "full_rebuild_s": round(full_s, 3),
            "ratio_full_over_docs": round(full_s / docs_s, 2),
            "tasks_restarted_docs": max(docs_restarts), "tasks_restarted_full": min(full_restarts)}


def report(result: dict[str, Any]) -> None:
    print(f"{'case':48} {'docs-only':>10} {'full rebuild':>13} {'ratio':>7} {'restarts docs/full':>19}")
    print(f"{result['case']:48} {result['docs_commit_s']:>9.2f}s {result['full_rebuild_s']:>12.2f}s "
          f"{result['ratio_full_over_docs']:>6.1f}x "
          f"{result['tasks_restarted_docs']:>9}/{result['tasks_restarted_full']}")
    print(json.dumps(result))

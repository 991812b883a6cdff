"""Issue 26's restart: N synced apps, the daemon started again over them (`swarmops daemon --once` in a new
process: the history copy restored, interrupted deploys resolved, removed apps looked for, every app checked
once), beside the no-change cycle of the same apps measured in the same run (rounds alternated, medians).
Also a start on a new manager (an empty state directory): every app's history read back from the Swarm's
copy, and still no deploy. Engine calls are counted at docker-py's session, in the restarted process too."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import docker

from bench import lab, scale
from swarmops.config.loader import load_config
from swarmops.reconcile.events import Observer, Outcome

ROUNDS = 3
GIT_PORT = 9428
TARGET = "first full check <= 2x the no-change cycle (1,000 apps); 0 deploys; Engine calls not per app"


def write_config(tmp: Path, state_dir: Path, urls: list[str], rid: str) -> Path:
    path = tmp / f"swarmops-{state_dir.name}.json"
    path.write_text(json.dumps({
        "registry": lab.REGISTRY, "registry_insecure": True, "state_dir": str(state_dir),
        "docker_host": lab.MANAGER, "settle": "0s", "deploy_timeout": "120s", "poll_interval": "60s",
        "git": {"concurrency": scale.CONCURRENCY}, "lock": {"name": f"bench-lock-{rid}"},
        "apps": [{"name": f"rs{i}-{rid}", "repo": u} for i, u in enumerate(urls)]}))
    return path


def start(config: Path, log: Path, mode: str = "once") -> dict[str, Any]:
    """`daemon --once` (or the daemon for its first full check) in a new process (see `child`): what it did,
    its Engine calls, its times."""
    result = log.with_suffix(".json")
    t0 = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run([sys.executable, "-m", "bench.restart", str(config), str(result), mode], stdout=out,
                              stderr=subprocess.STDOUT, check=False, cwd=Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not result.is_file():
        raise SystemExit(f"bench: daemon --once failed ({done.returncode}); its log: {log}")
    return {**json.loads(result.read_text()), "process_s": wall}


def deploy_rows(state_dir: Path) -> int:
    with sqlite3.connect(state_dir / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM deploys").fetchone()[0])


def run(n: int = 10, rounds: int = ROUNDS) -> dict[str, Any]:
    api = docker.APIClient(base_url=lab.MANAGER, timeout=120)
    rid = lab.run_id()
    with tempfile.TemporaryDirectory(prefix="swarmops-restart-") as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "served"
        base.mkdir()
        scale.make_repos(base, n)
        state = tmp / "state"
        # its own port: the suite may run `bench scale` (port 9418) at the same time
        with scale.git_daemon(base, GIT_PORT) as url:
            urls = [f"{url}/app{i}.git" for i in range(n)]
            path = write_config(tmp, state, urls, rid)
            cfg = load_config(path).config
            try:
                sync = start(path, tmp / "sync.log")
                if sync["results"].get("deployed", 0) != n:
                    raise SystemExit(f"bench: the first sync did not deploy every app: {sync['results']}")
                rec = lab.reconciler(cfg)
                scale._cycle(rec, cfg)   # warm, as the cycle of scale is measured
                rows = deploy_rows(state)
                cycles: list[tuple[float, int]] = []
                restarts: list[dict[str, Any]] = []
                for r in range(rounds):   # alternated, medians: one noisy round does not decide the ratio
                    calls = lab.EngineCalls()
                    with calls.counting():
                        wall, _ = scale.timed(lambda: _no_change(rec, cfg))
                    cycles.append((wall, calls.total))
                    restarts.append(start(path, tmp / f"restart{r}.log"))
                deployed_again = deploy_rows(state) - rows   # every deploy starts with its entry
                daemon = start(path, tmp / "daemon.log", "daemon")   # the daemon itself, to its first full check
                daemon_deployed = deploy_rows(state) - rows - deployed_again
                fresh = tmp / "state-new"   # a new manager: nothing local, the history read back from the Swarm
                new = start(write_config(tmp, fresh, urls, rid), tmp / "new-manager.log")
                restored = deploy_rows(fresh)
            finally:
                scale.parallel([a.name for a in cfg.apps], lambda name: lab.remove_stack(api, name))
    cycle = statistics.median(c[0] for c in cycles)
    first = statistics.median(r["first_check_s"] for r in restarts)
    median = sorted(restarts, key=lambda r: r["first_check_s"])[len(restarts) // 2]
    return {
        "apps": n, "rounds": rounds, "concurrency": scale.CONCURRENCY,
        "no_change_cycle_s": round(cycle, 3), "no_change_cycle_engine_calls": max(c[1] for c in cycles),
        "restart_first_check_s": round(first, 3),
        "restart_process_s": round(statistics.median(r["process_s"] for r in restarts), 3),
        "restart_engine_calls": max(r["engine_calls"] for r in restarts),
        "restart_engine_calls_by_call": median["by_call"], "restart_steps": median["steps"],
        "restart_imports_s": round(median["imports_s"], 3),
        "restart_deploys": max(deployed_again, sum(r["results"].get("deployed", 0) for r in restarts)),
        "restart_results": median["results"],
        "restart_over_cycle": round(first / cycle, 2),
        "daemon_first_check_s": round(daemon["first_check_s"], 3), "daemon_engine_calls": daemon["engine_calls"],
        "daemon_engine_calls_by_call": daemon["by_call"], "daemon_steps": daemon["steps"],
        "daemon_over_cycle": round(daemon["first_check_s"] / cycle, 2),
        "daemon_deploys": max(daemon_deployed, daemon["results"].get("deployed", 0)),
        "new_manager_first_check_s": round(new["first_check_s"], 3), "new_manager_engine_calls": new["engine_calls"],
        "new_manager_engine_calls_by_call": new["by_call"], "new_manager_steps": new["steps"],
        "new_manager_deploys": new["results"].get("deployed", 0),
        "new_manager_history_restored": restored, "initial_sync_s": round(sync["first_check_s"], 2),
        "target": TARGET,
    }


def _no_change(rec: Any, cfg: Any) -> None:
    outcomes = scale._cycle(rec, cfg)
    assert all(o.result == "noop" for o in outcomes), "a no-change cycle must do nothing"


def report(result: dict[str, Any]) -> None:
    n = result["apps"]
    calls = ", ".join(f"{k} {v}" for k, v in sorted(result["restart_engine_calls_by_call"].items()))
    steps = ", ".join(f"{k} {v['s']} s/{v['engine_calls']}" for k, v in result["restart_steps"].items())
    rows = [("apps", n, ""),
            ("no-change cycle", f"{result['no_change_cycle_s']} s, {result['no_change_cycle_engine_calls']} "
             "Engine calls", ""),
            ("restart: first full check", f"{result['restart_first_check_s']} s (process {result['restart_process_s']}"
             f" s, imports {result['restart_imports_s']} s)", "<= 2x the cycle (1,000 apps)"),
            ("restart / cycle", f"{result['restart_over_cycle']}x", "<= 2x"),
            ("restart: Engine calls", result["restart_engine_calls"], "bounded, not per app"),
            ("  of which", calls, ""),
            ("restart: steps", steps, ""),
            ("restart: deploys", result["restart_deploys"], "0"),
            ("daemon: first full check", f"{result['daemon_first_check_s']} s, {result['daemon_engine_calls']} "
             f"Engine calls ({result['daemon_over_cycle']}x the cycle)", "first checks spread over 5 s by design"),
            ("daemon: deploys", result["daemon_deploys"], "0"),
            ("new manager: first full check", f"{result['new_manager_first_check_s']} s, "
             f"{result['new_manager_engine_calls']} Engine calls", ""),
            ("new manager: history read back", f"{result['new_manager_history_restored']} entries", f"{n}"),
            ("new manager: deploys", result["new_manager_deploys"], "0")]
    print(f"{'measure':32} {'value':44} target")
    for name, value, target in rows:
        print(f"{name:32} {value!s:44} {target}")
    print(json.dumps(result))


# the steps of `run_once` before the checks, timed and counted apart (those a version lacks are skipped)
STEPS = ("open_store", "make_adapters", "restore_history", "resolve_interrupted", "read_every_app",
         "handle_removed_apps")


def _time_steps(module: Any, calls: lab.EngineCalls) -> dict[str, list[float]]:
    """Wrap the module's start-up steps: each step's seconds and Engine calls."""
    spent: dict[str, list[float]] = {}
    for name in STEPS:
        fn = getattr(module, name, None)
        if fn is None:
            continue

        def step(*args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            t0, n0 = time.perf_counter(), calls.total
            try:
                return _fn(*args, **kwargs)
            finally:
                s, n = spent.setdefault(_name, [0.0, 0])
                spent[_name] = [s + time.perf_counter() - t0, n + calls.total - n0]
        setattr(module, name, step)
    return spent


def child(config: Path, result: Path, mode: str) -> None:
    """The restarted daemon, its Engine calls counted: `daemon --once` as the CLI runs it, or (`daemon`) the
    daemon itself until every app was checked once, then stopped with SIGTERM as systemd stops it."""
    t0 = time.perf_counter()
    from swarmops.daemon import main
    from swarmops.util import logs

    imports = time.perf_counter() - t0
    logs.setup("INFO", json_lines=True, to_stdout=True)
    calls = lab.EngineCalls()
    steps = _time_steps(main, calls)
    loaded = load_config(config)
    with calls.counting():
        t0 = time.perf_counter()
        if mode == "daemon":
            first = FirstCheck({a.name for a in loaded.config.apps}, calls, t0)
            make = vars(main)["make_reconciler"]   # run_forever's own name for it

            def watched(*args: Any, **kwargs: Any) -> Any:
                reconciler = make(*args, **kwargs)
                reconciler.observers.append(first)
                return reconciler
            vars(main)["make_reconciler"] = watched
            main.run_forever(loaded)
            spent, total, results, by_call = first.spent, first.calls, first.results, first.by_call
        else:
            outcomes = main.run_once(loaded)
            spent, results = time.perf_counter() - t0, Counter(o.result for o in outcomes)
            total, by_call = calls.total, calls.by_call
    before_checks = sum(s for s, _ in steps.values())
    steps["checks"] = [spent - before_checks, total - sum(int(n) for _, n in steps.values())]
    result.write_text(json.dumps({
        "first_check_s": spent, "imports_s": imports, "engine_calls": total, "by_call": by_call,
        "steps": {k: {"s": round(v[0], 3), "engine_calls": int(v[1])} for k, v in steps.items()},
        "results": results}))


class FirstCheck(Observer):
    """Notes when every app's first check ended (the time and Engine calls so far), then stops the daemon."""

    def __init__(self, apps: set[str], calls: lab.EngineCalls, t0: float) -> None:
        self.apps, self.calls_so_far, self.t0 = apps, calls, t0
        self.results: Counter[str] = Counter()
        self.spent, self.calls = 0.0, 0
        self.by_call: dict[str, int] = {}
        self._lock = threading.Lock()

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        with self._lock:
            if outcome.app not in self.apps:
                return
            self.apps.discard(outcome.app)
            self.results[outcome.result] += 1
            if self.apps:
                return
            self.spent, self.calls = time.perf_counter() - self.t0, self.calls_so_far.total
            self.by_call = dict(self.calls_so_far.by_call)
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    child(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])

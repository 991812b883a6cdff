"""Issue 11's benchmark: N apps served by a real `git daemon` on a lab node (every check crosses a
network stack), measured beside the floor (parallel `git ls-remote` with the same concurrency) and the
naive baseline (a `git fetch` loop over N clones), all in the same run."""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker

from bench import lab

GIT_HOST = "198.18.0.2"
GIT_PORT = 9418
CONCURRENCY = 8
ROUNDS = 3
STACK = f"""version: "3.8"
services:
  web:
    image: {lab.BASE_IMAGE}
    command: ["sleep", "100000"]
    deploy:
      replicas: 0
"""


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


@contextmanager
def git_daemon(base: Path, port: int = GIT_PORT) -> Iterator[str]:
    """`git daemon` in the registry node's network namespace, serving `base` on `port` (a bench that may run
    beside another one picks its own port)."""
    proc = subprocess.Popen(["ip", "netns", "exec", "lab-registry", "git", "daemon", "--export-all", "--reuseaddr",
                             f"--base-path={base}", f"--listen={GIT_HOST}", f"--port={port}", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"git://{GIT_HOST}:{port}"
        for _ in range(100):
            if subprocess.run(["git", "ls-remote", f"{url}/app0.git"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        time.sleep(0.2)
        if proc.poll() is not None:   # it could not listen: what answered is another bench's daemon
            raise SystemExit(f"bench: git daemon could not listen on {GIT_HOST}:{port} (taken?)")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


RUNNING = 5   # apps whose stack runs a real task; the rest have replicas: 0 (the lab's memory is not the limit)


def make_repos(base: Path, n: int) -> None:
    for i in range(n):
        repo = lab.Repo(base / f"r{i}")
        repo.commit("init", {"stack.yml": stack_of(i), "docs/USAGE.md": f"app {i}\n"})
        shutil.move(str(repo.bare), base / f"app{i}.git")


def parallel(items: list[Any], fn: Callable[[Any], object]) -> None:
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(fn, items))


def stack_of(i: int) -> str:
    return STACK.replace("replicas: 0", "replicas: 1") if i < RUNNING else STACK


def by_hand_first_deploy(api: docker.APIClient, tmp: Path, n: int, rid: str) -> float:
    """The floor of a first deploy: the same N stack files deployed with `docker stack deploy`, as many at a
    time as swarmops deploys (CONCURRENCY), then removed so that swarmops meets a Swarm of the same size."""
    folder = tmp / "by-hand"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i}.yml").write_text(stack_of(i))
    env = {**os.environ, "DOCKER_HOST": lab.MANAGER}

    def deploy(i: int) -> None:
        subprocess.run(["docker", "stack", "deploy", "--with-registry-auth", "-c", str(folder / f"{i}.yml"),
                        f"h{i}-{rid}"], env=env, check=True, capture_output=True)
    try:
        wall, _ = timed(lambda: parallel(list(range(n)), deploy))
    finally:
        parallel([f"h{i}-{rid}" for i in range(n)], lambda name: lab.remove_stack(api, name))
    return wall


def run(n: int = 10, idle_seconds: float = 0.0) -> dict[str, Any]:
    api = docker.APIClient(base_url=lab.MANAGER, timeout=120)
    rid = lab.run_id()
    with tempfile.TemporaryDirectory(prefix="swarmops-scale-") as tmp:
        base = Path(tmp) / "served"
        base.mkdir()
        make_repos(base, n)
        with git_daemon(base) as url:
            urls = [f"{url}/app{i}.git" for i in range(n)]

            def ls_remote_all() -> None:
                parallel(urls, lambda u: subprocess.run(["git", "ls-remote", "--heads", u], capture_output=True,
                                                        check=True))

            ls_remote_all()   # warm: the floor and the cycle are both measured on warm caches
            clones = Path(tmp) / "clones"
            parallel(list(enumerate(urls)), lambda iu: subprocess.run(
                ["git", "clone", "-q", iu[1], str(clones / str(iu[0]))], check=True, capture_output=True))
            fetch = timed(lambda: [subprocess.run(["git", "-C", str(clones / str(i)), "fetch", "-q"], check=True)
                                   for i in range(n)])
            cfg = lab.config(Path(tmp) / "state", [{"name": f"s{i}-{rid}", "repo": u} for i, u in enumerate(urls)],
                             settle="0s", git={"concurrency": CONCURRENCY})
            rec = lab.reconciler(cfg)
            hand = by_hand_first_deploy(api, Path(tmp), n, rid)
            try:
                outcomes: list[Any] = []
                first = timed(lambda: outcomes.extend(_cycle(rec, cfg, shared_read=False)))
                bad = [o for o in outcomes if o.result != "deployed"]
                if bad:
                    raise SystemExit(f"bench: first deploy failed: {bad[0].app}: {bad[0].message}")
                cycles, floors = [], []
                for _ in range(ROUNDS):   # alternated, medians: one noisy round does not decide the ratio
                    floors.append(timed(ls_remote_all))
                    cycle_outcomes: list[Any] = []

                    def one_cycle(out: list[Any] = cycle_outcomes) -> None:
                        out.extend(_cycle(rec, cfg))
                    cycles.append(timed(one_cycle))
                    assert all(o.result == "noop" for o in cycle_outcomes), "a no-change cycle must do nothing"
                floor, cycle = _median(floors), _median(cycles)
                idle = _idle(cfg, Path(tmp), idle_seconds) if idle_seconds else None
            finally:
                parallel([a.name for a in cfg.apps], lambda name: lab.remove_stack(api, name))
    return {
        "apps": n, "concurrency": CONCURRENCY, "rounds": ROUNDS,
        "floor_ls_remote_s": round(floor[0], 3), "floor_cpu_s": round(floor[1], 3), "fetch_loop_s": round(fetch[0], 3),
        "no_change_cycle_s": round(cycle[0], 3), "no_change_cycle_cpu_s": round(cycle[1], 3),
        "cycle_over_floor": round(cycle[0] / floor[0], 2), "fetch_loop_over_cycle": round(fetch[0] / cycle[0], 2),
        "first_deploy_s": round(first[0], 2), "apps_per_s": round(n / first[0], 2),
        "first_deploy_by_hand_s": round(hand, 2), "first_deploy_over_by_hand": round(first[0] / hand, 2),
        "running_apps": RUNNING, **({"idle": idle} if idle else {}),
    }


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _cycle(rec: Any, cfg: Any, shared_read: bool = True) -> list[Any]:
    """One check of every app, as the daemon does it: the live state of all apps read once (the daemon's
    status refresh; a fixed number of Engine calls), then one git check per app, `git.concurrency` at once."""
    lab.SHARED.clear()
    if shared_read:
        lab.SHARED.update(rec.reader.read_all())
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(lambda app: rec.reconcile(app, trigger="poll"), cfg.apps))


def _idle(cfg: Any, tmp: Path, seconds: float) -> dict[str, float]:
    """The real daemon (a subprocess) with every app on a 60 s interval: its CPU, its git children's
    included, as % of one core over `seconds`, and its peak RSS, read from /proc."""
    path = tmp / "swarmops.json"
    path.write_text(json.dumps({
        "registry": lab.REGISTRY, "registry_insecure": True, "state_dir": str(cfg.state_dir),
        "docker_host": lab.MANAGER, "poll_interval": "60s", "git": {"concurrency": CONCURRENCY},
        "lock": {"name": f"bench-lock-{lab.run_id()}"},   # not the default one: the demo may run beside it
        "apps": [{"name": a.name, "repo": a.repo} for a in cfg.apps]}))
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(path), "daemon"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(15)   # first checks within 5 s of the start; the measure begins after them
        cpu0, wall0 = _proc_cpu(proc.pid), time.perf_counter()
        time.sleep(seconds)
        cpu1, wall1 = _proc_cpu(proc.pid), time.perf_counter()
        peak = _proc_peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    wall = wall1 - wall0
    return {"seconds": round(wall, 1), "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 2),
            "peak_rss_mb": round(peak, 1)}


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def _proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(result: dict[str, Any]) -> None:
    n = result["apps"]
    cycle_target = "<= 1.5x floor (200 apps)" + ("; <= 10 s (1,000 apps)" if n >= 1000 else "")
    rows = [("apps", n, ""),
            ("floor: parallel ls-remote", f"{result['floor_ls_remote_s']} s (cpu {result['floor_cpu_s']} s)", ""),
            ("naive: fetch loop", f"{result['fetch_loop_s']} s", ""),
            ("swarmops no-change cycle", f"{result['no_change_cycle_s']} s (cpu {result['no_change_cycle_cpu_s']} s)",
             cycle_target),
            ("cycle / floor", f"{result['cycle_over_floor']}x", "<= 1.5x"),
            ("fetch loop / cycle", f"{result['fetch_loop_over_cycle']}x", ">= 5x"),
            (f"first deploy ({RUNNING} with a task)", f"{result['first_deploy_s']} s ({result['apps_per_s']} apps/s)",
             ""),
            (f"by hand: stack deploy, {CONCURRENCY} at once", f"{result['first_deploy_by_hand_s']} s", ""),
            ("first deploy / by hand", f"{result['first_deploy_over_by_hand']}x", "<= 1.5x (200 apps)")]
    if "idle" in result:
        idle = result["idle"]
        rows += [(f"idle {idle['seconds']:g} s: cpu", f"{idle['cpu_percent_of_one_core']} % of one core",
                  "<= 1.5 % (200 apps)"),
                 ("idle: peak rss", f"{idle['peak_rss_mb']} MB", "<= 80 MB (200 apps)")]
    print(f"{'measure':32} {'value':34} target")
    for name, value, target in rows:
        print(f"{name:32} {value!s:34} {target}")
    print(json.dumps(result))

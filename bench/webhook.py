"""Issue 10's benchmark: a real daemon with its HTTP server; the time from a webhook request to the
reconcile's start and to synced, for one push and for N pushes to N apps at once, against the same kind of
commit found by a poll, measured in the same run. Times come from the daemon's own JSON log (start =
the reconcile log line's time minus its duration)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

from bench import lab

SECRET = b"bench-webhook-secret"


def stack(value: int) -> str:
    # replicas: 0 keeps the lab's memory out of the measure; the env change is a real service update
    return f"""version: "3.8"
services:
  web:
    image: {lab.BASE_IMAGE}
    command: ["sleep", "100000"]
    environment:
      VERSION: "{value}"
    deploy:
      replicas: 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reconciles(log: Path) -> list[dict[str, Any]]:
    """The daemon's reconcile records, with start and end as epoch seconds."""
    out = []
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "reconcile" and "duration_s" in rec:
            end = datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp()
            out.append({**rec, "end": end, "start": end - float(rec["duration_s"])})
    return out


class Bench:
    def __init__(self, tmp: Path, n: int) -> None:
        self.tmp, self.rid, self.port = tmp, lab.run_id(), free_port()
        self.repos = [lab.Repo(tmp / f"r{i}") for i in range(n)]
        self.apps = [f"wh{i}-{self.rid}" for i in range(n)]
        self.values = [0] * n
        (tmp / "webhook.secret").write_bytes(SECRET)
        for repo in self.repos:
            repo.commit("init", {"stack.yml": stack(0)})

    def write_config(self, interval: str) -> Path:
        config = {"registry": lab.REGISTRY, "registry_insecure": True, "state_dir": str(self.tmp / "state"),
                  "docker_host": lab.MANAGER, "settle": "0s", "deploy_timeout": "120s", "poll_interval": interval,
                  "lock": {"name": f"bench-lock-{lab.run_id()}"},
                  "http": {"listen": f"127.0.0.1:{self.port}"},
                  "webhooks": {"secret_file": str(self.tmp / "webhook.secret")},
                  "apps": [{"name": a, "repo": r.url} for a, r in zip(self.apps, self.repos, strict=True)]}
        path = self.tmp / "swarmops.yml"
        path.write_text(json.dumps(config))
        return path

    @contextmanager
    def daemon(self, interval: str) -> Iterator[Path]:
        log = self.tmp / f"daemon-{interval}.log"
        proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(self.write_config(interval)),
                                 "daemon"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            wait(lambda: _ready(self.port), 60, "the daemon's HTTP server")
            yield log
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)

    def commit(self, i: int) -> str:
        self.values[i] += 1
        return self.repos[i].commit(f"v{self.values[i]}", {"stack.yml": stack(self.values[i])})

    def push(self, i: int, commit: str) -> float:
        """Send a signed GitHub push for app i; returns the time the request was sent."""
        body = json.dumps({"ref": "refs/heads/main", "after": commit,
                           "repository": {"clone_url": self.repos[i].url}}).encode()
        sig = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/hooks/github", data=body, method="POST", headers={
            "X-GitHub-Event": "push", "X-GitHub-Delivery": f"{commit}-{i}", "X-Hub-Signature-256": f"sha256={sig}",
            "Content-Type": "application/json"})
        sent = time.time()
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 202:
                raise SystemExit(f"bench: webhook answered {resp.status}")
        return sent


def _ready(port: int) -> bool:
    """The daemon's HTTP side answers (/metrics needs a token: a 401 is an answer too)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"bench: timed out waiting for {what}")


def deployed(log: Path, app: str, after: float, trigger: str | None = None) -> dict[str, Any] | None:
    for rec in reconciles(log):
        if rec["app"] == app and rec["result"] == "deployed" and rec["start"] >= after - 0.05 and \
                (trigger is None or rec["trigger"] == trigger):
            return rec
    return None


def measure(log: Path, sent: dict[int, float], apps: list[str], trigger: str, timeout: float) -> dict[str, Any]:
    found: dict[int, dict[str, Any]] = {}

    def all_found() -> bool:
        for i, t0 in sent.items():
            if i not in found and (rec := deployed(log, apps[i], t0, trigger)) is not None:
                found[i] = rec
        return len(found) == len(sent)

    wait(all_found, timeout, f"{len(sent)} {trigger} deploys")
    to_start = [found[i]["start"] - t0 for i, t0 in sent.items()]
    to_synced = [found[i]["end"] - t0 for i, t0 in sent.items()]
    return {"n": len(sent), "to_start": summary(to_start), "to_synced": summary(to_synced)}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3), "max": round(ordered[-1], 3)}


def by_hand_burst(api: docker.APIClient, tmp: Path, n: int, rid: str) -> dict[str, Any]:
    """The floor of a burst: the same N stacks (deployed once first, not timed) updated to a new version by N
    `docker stack deploy` started at once; each finish time from the common start."""
    env = {**os.environ, "DOCKER_HOST": lab.MANAGER}
    names = [f"hand{i}-{rid}" for i in range(n)]

    def deploy(i: int, value: int) -> float:
        path = tmp / f"hand{i}-{value}.yml"
        path.write_text(stack(value))
        subprocess.run(["docker", "stack", "deploy", "--with-registry-auth", "-c", str(path), names[i]], env=env,
                       check=True, capture_output=True)
        return time.time()
    try:
        with ThreadPoolExecutor(max_workers=min(32, n)) as pool:
            list(pool.map(lambda i: deploy(i, 0), range(n)))
            t0 = time.time()
            done = list(pool.map(lambda i: deploy(i, 1), range(n)))
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda app: lab.remove_stack(api, app), names))
    return {"n": n, "to_deployed": summary([t - t0 for t in done])}


def run(n: int = 100, singles: int = 5, polled: int = 10, interval: float = 30.0) -> dict[str, Any]:
    api = docker.APIClient(base_url=lab.MANAGER, timeout=120)
    with tempfile.TemporaryDirectory(prefix="swarmops-webhook-") as tmp:
        b = Bench(Path(tmp), n)
        try:
            with b.daemon("10m") as log:   # polls that would race the webhooks are out of the way
                wait(lambda: sum(1 for r in reconciles(log) if r["result"] == "deployed") >= n, 60 + n,
                     "the first deploy of every app")
                single: dict[int, float] = {}
                for i in range(min(singles, n)):       # one push at a time, each waited for
                    single[i] = b.push(i, b.commit(i))
                    measure(log, {i: single[i]}, b.apps, "webhook", 120)
                one = measure(log, single, b.apps, "webhook", 1)
                commits = {i: b.commit(i) for i in range(n)}
                with ThreadPoolExecutor(max_workers=min(32, n)) as pool:   # every push at once
                    sent = dict(zip(commits, pool.map(lambda i: b.push(i, commits[i]), commits), strict=True))
                burst = measure(log, sent, b.apps, "webhook", 120 + 2 * n)
            with b.daemon(f"{interval:g}s") as log:
                time.sleep(6)   # the first checks of a new daemon run within 5 s of its start
                polls: dict[int, float] = {}
                for i in range(min(polled, n)):   # commits spread over one interval, as pushes come in real life
                    polls[i] = time.time()
                    b.commit(i)
                    time.sleep(interval / max(1, polled))
                by_poll = measure(log, polls, b.apps, "poll", 3 * interval + 60)
            hand = by_hand_burst(api, Path(tmp), n, b.rid)
        finally:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda app: lab.remove_stack(api, app), b.apps))
    return {"apps": n, "poll_interval_s": interval, "one_push": one, f"{n}_pushes_at_once": burst,
            "found_by_poll": by_poll, "by_hand_burst": hand,
            "burst_synced_p99_over_by_hand_p99": round(burst["to_synced"]["p99"] / hand["to_deployed"]["p99"], 2),
            "target": "a pushed commit's reconcile starts within 1 s of the request; a burst's reconcile start "
                      "p99 within 2 s and synced p99 within 1.5x the same deploys by hand"}


def report(result: dict[str, Any]) -> None:
    n = result["apps"]
    print(f"{'case':28} {'n':>4} {'start p50':>10} {'start p99':>10} {'synced p50':>11} {'synced p99':>11}")
    for name, key in (("one push", "one_push"), (f"{n} pushes at once", f"{n}_pushes_at_once"),
                      (f"poll ({result['poll_interval_s']:g} s interval)", "found_by_poll")):
        r = result[key]
        print(f"{name:28} {r['n']:>4} {r['to_start']['p50']:>9}s {r['to_start']['p99']:>9}s "
              f"{r['to_synced']['p50']:>10}s {r['to_synced']['p99']:>10}s")
    hand = result["by_hand_burst"]
    print(f"{'by hand: ' + str(hand['n']) + ' stack deploys':28} {hand['n']:>4} {'':>10} {'':>10} "
          f"{hand['to_deployed']['p50']:>10}s {hand['to_deployed']['p99']:>10}s")
    print(f"{'burst / by hand (synced p99)':28} {result['burst_synced_p99_over_by_hand_p99']}x")
    poll, one = result["found_by_poll"]["to_synced"]["p50"], result["one_push"]["to_synced"]["p50"]
    print(f"{'poll / webhook (synced p50)':28} {poll / one:.1f}x")
    print(f"{'target':28} {result['target']}")
    print(json.dumps(result))

"""Prometheus metrics (swarmops_ prefix, base units, _total counters), fed by reconciler events.
Per-app state is collected from the status cache at scrape time, so a scrape costs no Docker call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from swarmops.domain.status import AppStatus
from swarmops.reconcile.events import Observer, Outcome

BUCKETS = (0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class _AppCollector(Collector):
    def __init__(self, statuses: Callable[[], Iterable[AppStatus]], clock: Callable[[], float] = time.time) -> None:
        self.statuses = statuses
        self.clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily | InfoMetricFamily]:
        info = InfoMetricFamily("swarmops_app", "Each app's status word and synced commit, and the app and "
                                "environment a stack is of", labels=["app"])
        up = GaugeMetricFamily("swarmops_app_synced", "1 when the app runs its git version", labels=["app"])
        age = GaugeMetricFamily("swarmops_backup_age_seconds", "Seconds since the app's last backup that "
                                "succeeded started", labels=["app"])
        result = GaugeMetricFamily("swarmops_backup_last_result", "1 when the app's last backup run succeeded, "
                                   "0 when it failed", labels=["app"])
        now = self.clock()
        for s in self.statuses():
            # an environment's app and name (issue 27): its series sit beside the app's others (group by them)
            info.add_metric([s.app], {"status": s.status, "commit": s.commit or "", "group": s.group or s.app,
                                      "environment": s.environment})
            up.add_metric([s.app], 1.0 if s.status == "Synced" else 0.0)
            if s.backup_ok_at is not None:   # no series: no backup of the app ever succeeded
                age.add_metric([s.app], max(0.0, now - s.backup_ok_at))
            if s.backup_at is not None:
                result.add_metric([s.app], 1.0 if s.backup_result == "succeeded" else 0.0)
        yield info
        yield up
        yield age
        yield result


class Metrics(Observer):
    def __init__(self, statuses: Callable[[], Iterable[AppStatus]], clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter("swarmops_reconciles_total", "Reconciles by result and trigger",
                                  ["result", "trigger"], registry=r)
        self.deploys = Counter("swarmops_deploys_total", "Deploys by result and trigger", ["result", "trigger"],
                               registry=r)
        self.reconcile_seconds = Histogram("swarmops_reconcile_duration_seconds", "Reconcile duration",
                                           ["trigger"], buckets=BUCKETS, registry=r)
        self.build_seconds = Histogram("swarmops_build_duration_seconds", "Image builds of one deploy",
                                       buckets=BUCKETS, registry=r)
        self.convergence_seconds = Histogram("swarmops_convergence_duration_seconds",
                                             "From stack deploy to converged", buckets=BUCKETS, registry=r)
        self.git = Counter("swarmops_git_requests_total", "Change checks against git remotes", ["result"], registry=r)
        self.drift = Counter("swarmops_drift_total", "Drift found and healed", ["action"], registry=r)
        self.webhooks = Counter("swarmops_webhook_requests_total", "Webhook deliveries", ["provider", "result"],
                                registry=r)
        self.policy = Counter("swarmops_policy_violations_total", "Deploys refused by policy", registry=r)
        r.register(_AppCollector(statuses, clock))

    def on_git(self, app: str, ok: bool) -> None:
        self.git.labels("ok" if ok else "error").inc()

    def on_phase(self, app: str, phase: str, seconds: float) -> None:
        (self.build_seconds if phase == "build" else self.convergence_seconds).observe(seconds)

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        self.reconciles.labels(outcome.result, trigger).inc()
        self.reconcile_seconds.labels(trigger).observe(seconds)
        if outcome.attempted:
            self.deploys.labels("succeeded" if outcome.result != "failed" else "failed", trigger).inc()
        if outcome.drift:
            self.drift.labels("found").inc(len(outcome.drift))
        if outcome.result == "healed":
            self.drift.labels("healed").inc(len(outcome.drift))
        if outcome.error_kind == "PolicyError":
            self.policy.inc()

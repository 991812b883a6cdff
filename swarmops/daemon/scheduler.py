"""APScheduler wiring: one job per app, interval plus jitter, spread over the interval, never two
runs of one app at once; transient failures retried with backoff."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from swarmops.config.models import AppConfig, Config
from swarmops.reconcile.reconciler import Reconciler

log = logging.getLogger("swarmops.scheduler")


class AppScheduler:
    def __init__(self, config: Config, reconciler: Reconciler, workers: int = 8) -> None:
        self.config = config
        self.reconciler = reconciler
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(workers)}, timezone="UTC")

    def start(self) -> None:
        start = datetime.now().astimezone()
        for app in self.config.apps:
            self.add_app(app, start)
        self.scheduler.start()

    def add_app(self, app: AppConfig, start: datetime) -> None:
        interval = self.config.interval_for(app)
        jitter = self.config.poll_jitter if self.config.poll_jitter is not None else interval * 0.1
        # each app's first run at a random point of the first interval: no burst of every app at once
        first = start + timedelta(seconds=random.uniform(0, min(interval, 5.0)))
        self.scheduler.add_job(
            self.run, "interval", seconds=interval, jitter=jitter or None, args=[app], kwargs={"trigger": "poll"},
            id=f"reconcile:{app.name}", name=app.name, max_instances=1, coalesce=True, next_run_time=first,
            misfire_grace_time=max(1, int(interval)))

    def run(self, app: AppConfig, trigger: str = "poll") -> None:
        outcome = self.reconciler.reconcile(app, trigger=trigger)
        if outcome.retry_in is not None and self.scheduler.running:
            log.info("retrying %s in %gs: %s", app.name, outcome.retry_in, outcome.message)
            when = datetime.now().astimezone() + timedelta(seconds=outcome.retry_in)
            self.scheduler.add_job(self.run, "date", run_date=when, args=[app], kwargs={"trigger": "retry"},
                                   id=f"retry:{app.name}", replace_existing=True, misfire_grace_time=60)

    def add_periodic(self, func: object, seconds: float, name: str, at_once: bool = False) -> None:
        """`at_once`: the first run when the scheduler starts, not one interval later."""
        first = {"next_run_time": datetime.now().astimezone(), "misfire_grace_time": None} if at_once else {}
        self.scheduler.add_job(func, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True, **first)

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

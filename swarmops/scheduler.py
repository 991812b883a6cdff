"""APScheduler wiring: one job per app, interval plus jitter, spread over the interval, never two
runs of one app at once."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from swarmops.config.models import AppConfig, Config
from swarmops.reconciler import Reconciler

log = logging.getLogger("swarmops.scheduler")


def make_scheduler(config: Config, reconciler: Reconciler, workers: int = 8) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(workers)}, timezone="UTC")
    start = datetime.now().astimezone()
    for app in config.apps:
        add_app(scheduler, config, reconciler, app, start)
    return scheduler


def add_app(scheduler: BackgroundScheduler, config: Config, reconciler: Reconciler, app: AppConfig,
            start: datetime) -> None:
    interval = config.interval_for(app)
    jitter = config.poll_jitter if config.poll_jitter is not None else interval * 0.1
    # the first run of each app at a random point of the first interval: no burst of every app at once
    first = start + timedelta(seconds=random.uniform(0, min(interval, 5.0)))
    scheduler.add_job(
        reconciler.reconcile, "interval", seconds=interval, jitter=jitter or None, args=[app],
        kwargs={"trigger": "poll"}, id=f"reconcile:{app.name}", name=app.name, max_instances=1,
        coalesce=True, next_run_time=first, misfire_grace_time=max(1, int(interval)))

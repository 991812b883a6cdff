"""The daemon: resolve interrupted deploys, schedule every app, stop cleanly on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import docker

from swarmops.adapters.engine import api_client
from swarmops.adapters.forge import ForgeStatus
from swarmops.adapters.notify import Notifier
from swarmops.adapters.store import StateStore
from swarmops.adapters.swarm.lock import SwarmLock
from swarmops.config.loader import LoadedConfig
from swarmops.config.models import Config
from swarmops.daemon.backups import TICK_SECONDS, BackupSchedule
from swarmops.daemon.scheduler import AppScheduler
from swarmops.daemon.statuscache import REFRESH_SECONDS, StatusCache
from swarmops.daemon.systemd import notify, watchdog_interval
from swarmops.domain.live import LiveStack
from swarmops.domain.status import removed_apps
from swarmops.errors import SwarmopsError
from swarmops.http.server import HttpServer
from swarmops.reconcile.events import Outcome
from swarmops.reconcile.ports import HistoryCopy
from swarmops.reconcile.reconciler import Adapters, Reconciler
from swarmops.runtime import SwarmHistoryCopy, make_adapters, make_reconciler, open_store

log = logging.getLogger("swarmops.daemon")
ONCE_WORKERS = 8
# webhook reconciles running at once; git, build and deploy work inside them stays bounded by its own limits
TRIGGER_WORKERS = 32


def _report_config_errors(loaded: LoadedConfig) -> None:
    for err in loaded.app_errors:
        log.error("app skipped: %s", err)


def restore_history(adapters: Adapters, config: Config) -> None:
    """At start, every app's entries the Swarm's history copy has and this database lacks."""
    if isinstance(adapters.history, SwarmHistoryCopy):
        adapters.history.restore_all({a.name for a in config.apps})


def resolve_interrupted(store: StateStore, history: HistoryCopy) -> None:
    """Deploys a previous process left unfinished are marked interrupted before anything runs;
    the next reconcile of each app reads the live state and finishes the job."""
    for d in store.interrupt_unfinished():
        log.warning("deploy %s of %s (commit %s) was interrupted; it will be reconciled from the live state",
                    d.id, d.app, d.commit_sha[:12])
        store.set_app(d.app, pending_check=d.id)
        history.save(d.app)


def read_every_app(adapters: Adapters) -> dict[str, LiveStack] | None:
    """Every stack's live state in one read (a fixed number of Engine calls); None when it cannot be read."""
    try:
        return adapters.reader.read_all()
    except SwarmopsError as e:
        log.error("cannot read the live state of the apps: %s", e)
        return None


class StartSnapshot:
    """Every configured app's live stack from the one read `daemon --once` makes at start (the removed-apps
    check reads the same), each handed out once: an app's first check reads it instead of the Engine (ruling
    36), so a restart over N synced apps costs a fixed number of Engine calls, not one per app. A second read
    within the same reconcile (after it resolved an interrupted deploy) goes to the Engine: it may have changed."""

    def __init__(self, apps: Iterable[str], stacks: dict[str, LiveStack]) -> None:
        # an app with no service is not in the read: its first check sees it empty, as its own read would
        self._stacks = {app: stacks.get(app) or LiveStack(app, {}, [], {}) for app in apps}
        self._lock = threading.Lock()

    def take(self, app: str) -> LiveStack | None:
        with self._lock:
            return self._stacks.pop(app, None)


def handle_removed_apps(adapters: Adapters, loaded: LoadedConfig,
                        stacks: dict[str, LiveStack] | None = None) -> list[str]:
    """Stacks swarmops deployed for apps no longer in the config: reported, and removed only when the
    config says prune_removed_apps and every apps.d file loaded (a broken file is not a removal).
    `stacks`: every app's live state when the caller read it already."""
    known = {a.name for a in loaded.config.apps}
    if stacks is None:
        try:
            stacks = adapters.reader.read_all()
        except SwarmopsError as e:
            log.error("cannot look for removed apps: %s", e)
            return []
    removed = removed_apps(stacks, known, lambda app: bool(adapters.store.history(app, 1)))
    prune = loaded.config.prune_removed_apps and not loaded.app_errors
    for app in removed:
        if prune:
            log.warning("app %s is no longer in the config: removing its stack (prune_removed_apps)", app)
            try:
                adapters.deployer.remove(app)
            except SwarmopsError as e:
                log.error("cannot remove the stack of %s: %s", app, e)
        else:
            log.warning("app %s runs in the cluster but is no longer in the config; it is left running "
                        "(set prune_removed_apps: true to remove such stacks)", app)
    return removed


def add_notifier(reconciler: Reconciler, store: StateStore, config: Config) -> Notifier | None:
    if not config.notify.urls and not any(a.notify_urls for a in config.apps):
        return None

    def author_of(app: str, commit: str) -> str:
        last = store.last_deploy(app)
        return last.author if last and last.commit_sha == commit else ""

    notifier = Notifier(config, author_of, sent=store)
    reconciler.observers.append(notifier)
    return notifier


def run_once(loaded: LoadedConfig, store: StateStore | None = None, adapters: Adapters | None = None
             ) -> list[Outcome]:
    """Every app reconciled once. The Engine calls are a fixed number plus each deploy's own: the history
    copy is read in one call, every app's live state in one read shared by every app's first check."""
    store = open_store(loaded.config) if store is None else store
    adapters = make_adapters(loaded.config, store) if adapters is None else adapters
    restore_history(adapters, loaded.config)
    _report_config_errors(loaded)
    resolve_interrupted(store, adapters.history)
    stacks = read_every_app(adapters)
    if stacks is not None:
        handle_removed_apps(adapters, loaded, stacks)
    # a failed read shares nothing: each check reads its own app (an empty snapshot would look undeployed)
    snapshot = StartSnapshot((a.name for a in loaded.config.apps), stacks).take if stacks is not None \
        else lambda _app: None
    reconciler = make_reconciler(loaded.config, adapters, snapshot=snapshot)
    notifier = add_notifier(reconciler, store, loaded.config)
    # as the daemon does: apps in parallel, builds and git operations bounded by their own limits
    with ThreadPoolExecutor(max_workers=max(1, min(ONCE_WORKERS, len(loaded.config.apps)))) as pool:
        outcomes = list(pool.map(lambda app: reconciler.reconcile(app, trigger="poll"), loaded.config.apps))
    # then the backups that are due, as the daemon's first tick runs them (a time missed meanwhile: once)
    schedule = backup_schedule(loaded.config, store, adapters, reconciler, threading.Event(), notifier)
    schedule.tick()
    if notifier is not None:
        notifier.flush(timeout=60)
    return outcomes


def backup_schedule(config: Config, store: StateStore, adapters: Adapters, reconciler: Reconciler,
                    cancel: threading.Event, notifier: Notifier | None) -> BackupSchedule:
    schedule = BackupSchedule(config, store, adapters.backups, reconciler, cancel, volumes=adapters.volumes)
    if notifier is not None:
        schedule.listeners.append(notifier.on_backup)
    return schedule


def run_forever(loaded: LoadedConfig) -> int:
    config = loaded.config
    cancel = threading.Event()
    stop = threading.Event()
    store = open_store(config)
    adapters = make_adapters(config, store)
    restore_history(adapters, config)
    statuses = StatusCache(config, store, adapters.reader)
    reconciler = make_reconciler(config, adapters, cancel=cancel, snapshot=statuses.snapshot)
    reconciler.observers.append(statuses)
    notifier = add_notifier(reconciler, store, config)
    if notifier is not None:
        statuses.listeners.append(notifier.on_status)
    if config.forge.token_file is not None:
        reconciler.observers.append(ForgeStatus(config))
    _report_config_errors(loaded)
    resolve_interrupted(store, adapters.history)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing running work (at most %gs)", signal.Signals(signum).name,
                 config.shutdown_grace)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lock = take_lock(config, api_client(config.docker_host, config.docker_timeout), stop)
    if stop.is_set():
        store.close()
        return 0
    scheduler = AppScheduler(config, reconciler)
    lost = threading.Event()
    if lock is not None:
        scheduler.add_periodic(lambda: keep_lock(lock, stop, lost), max(1.0, config.lock.ttl / 3), "deploy-lock")
    scheduler.add_periodic(lambda: handle_removed_apps(adapters, loaded), 300, "removed-apps")
    statuses.refresh()
    scheduler.add_periodic(statuses.refresh, REFRESH_SECONDS, "status-refresh")
    if any(a.backup for a in config.apps):   # the first tick at once: a time missed while down runs at start
        backups = backup_schedule(config, store, adapters, reconciler, cancel, notifier)
        backups.listeners.append(lambda run: statuses.refresh_app(run.app))
        scheduler.add_periodic(lambda: backups.tick(stop), TICK_SECONDS, "backups", at_once=True)
    http = start_http(config, reconciler, store, adapters, statuses)
    scheduler.start()
    log.info("daemon started with %d app(s), polling every %gs", len(config.apps), config.poll_interval)
    notify("READY=1")
    notify(f"STATUS=reconciling {len(config.apps)} app(s)")
    while not stop.wait(timeout=watchdog_interval()):
        if scheduler.running:   # the watchdog only while the scheduler lives: systemd restarts a dead one
            notify("WATCHDOG=1")
    notify("STOPPING=1")
    scheduler.shutdown()
    if http is not None:
        http.stop()
    _drain(reconciler, config.shutdown_grace, cancel)
    if lock is not None and not lost.is_set():
        lock.release()
    store.close()
    log.info("daemon stopped")
    return 1 if lost.is_set() else 0   # non-zero: systemd starts it again, as a waiter


def take_lock(config: Config, api: docker.APIClient, stop: threading.Event) -> SwarmLock | None:
    """Wait for the deploy lock in the Swarm (another daemon may hold it), saying who holds it."""
    if not config.lock.enabled:
        return None
    lock = SwarmLock(api, config.lock.ttl, config.lock.name)
    said = 0.0
    while not stop.is_set():
        try:
            holder = lock.try_acquire()
        except SwarmopsError as e:
            if not e.transient:
                raise
            log.error("cannot take the deploy lock: %s; trying again", e)
            holder = None
            stop.wait(max(1.0, config.lock.ttl / 3))
            continue
        if holder is None:
            log.info("holding the deploy lock as %s", lock.holder)
            return lock
        if time.monotonic() - said > 60:
            log.warning("another swarmops holds the deploy lock: %s; waiting for it", holder.describe())
            notify(f"STATUS=waiting for the deploy lock held by {holder.holder}")
            said = time.monotonic()
        stop.wait(max(1.0, config.lock.ttl / 3))
    return None


def keep_lock(lock: SwarmLock, stop: threading.Event, lost: threading.Event) -> None:
    """Renew the lease; when the lock was taken over, stop deploying (systemd starts us again as a waiter)."""
    try:
        if lock.renew():
            return
    except SwarmopsError as e:
        log.warning("cannot renew the deploy lock: %s", e)
        return
    log.error("the deploy lock was taken over by another swarmops; stopping so that only one deploys")
    lost.set()
    stop.set()


def start_http(config: Config, reconciler: Reconciler, store: StateStore, adapters: Adapters,
               statuses: StatusCache) -> HttpServer | None:
    """Webhooks, the API, the page and /metrics, when the config has an http section."""
    if config.http is None:
        return None
    from swarmops.adapters.tokens import TokenStore
    from swarmops.daemon.metrics import Metrics
    from swarmops.daemon.triggers import Triggers
    from swarmops.http.app import build_app
    from swarmops.http.context import HttpContext

    metrics = Metrics(statuses.all)
    reconciler.observers.append(metrics)
    triggers = Triggers(reconciler, ThreadPoolExecutor(max_workers=TRIGGER_WORKERS, thread_name_prefix="trigger"))
    ctx = HttpContext(config=config, reconciler=reconciler, store=store, sources=adapters.sources,
                      statuses=statuses,
                      tokens=TokenStore(config.state_dir / "tokens.json"), triggers=triggers, metrics=metrics)
    host, port = config.http.address()
    server = HttpServer(build_app(ctx), host, port)
    server.start()
    log.info("HTTP on %s:%d (webhooks, API, status page, /metrics)", host, port)
    return server


def _drain(reconciler: Reconciler, grace: float, cancel: threading.Event) -> None:
    """Let running reconciles finish within the grace period, then cancel what still waits."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and reconciler.busy():
        time.sleep(0.2)
    if reconciler.busy():
        cancel.set()
        end = time.monotonic() + 10
        while time.monotonic() < end and reconciler.busy():
            time.sleep(0.2)

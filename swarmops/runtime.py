"""Wire the adapters for a loaded config: the one place that constructs them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from swarmops.adapters.engine import api_client
from swarmops.adapters.images.builder import ImageBuilder
from swarmops.adapters.images.ledger import ImageLedger
from swarmops.adapters.images.registry import Registry
from swarmops.adapters.store import StateStore
from swarmops.adapters.swarm.backups import S3VolumeStore, VolumeBackups
from swarmops.adapters.swarm.deploy import StackDeployer
from swarmops.adapters.swarm.history import KEPT, SwarmHistory
from swarmops.adapters.swarm.jobs import SwarmJobs
from swarmops.adapters.swarm.live import SwarmReader
from swarmops.adapters.swarm.secrets import SwarmSecrets
from swarmops.config.models import Config
from swarmops.domain.live import LiveStack
from swarmops.errors import SwarmopsError
from swarmops.reconcile.gather import git_source
from swarmops.reconcile.ports import HistoryCopy, NoHistoryCopy
from swarmops.reconcile.reconciler import Adapters, Reconciler

log = logging.getLogger("swarmops.runtime")


def open_store(config: Config) -> StateStore:
    return StateStore(config.state_dir / "state.db")


class SwarmHistoryCopy:
    """The copy of each app's history in the Swarm. Entries this manager's database lacks (a new manager,
    a lost disk, a manager that was away or stood by while another ran swarmops) are read back: every
    app's when the daemon starts (for its page and API), and one app's each time its history is about to
    decide or be written (a deploy's target is chosen, a rollback picks its target, `swarmops history`).
    That read is one Engine call per deploy; it keeps a daemon that took over after standing by from
    writing a copy that drops the other's entries. Every finished deploy entry then updates that app's
    copy. Neither ever fails a deploy: the local database is the record."""

    def __init__(self, store: StateStore, history: SwarmHistory) -> None:
        self.store = store
        self.history = history

    def restore(self, app: str) -> None:
        self.restore_all({app})

    def restore_all(self, apps: set[str]) -> None:
        try:
            counts = {app: self.store.import_history(app, records) for app, records in self.history.load(apps).items()}
        except SwarmopsError as e:
            log.warning("the history copy in the Swarm cannot be read (history here may miss entries written on "
                        "another manager): %s", e)
            return
        if any(counts.values()):
            log.warning("read back %d history entries of %d apps from the Swarm (written on another manager "
                        "or before this state database)", sum(counts.values()), sum(1 for n in counts.values() if n))

    def save(self, app: str) -> None:
        try:
            self.history.save(app, [d.to_dict() for d in self.store.history(app, KEPT)])
        except SwarmopsError as e:
            log.warning("the history copy of %s in the Swarm was not updated: %s", app, e)


def history_copy(config: Config, store: StateStore) -> HistoryCopy:
    if not config.history.in_swarm:
        return NoHistoryCopy()
    return SwarmHistoryCopy(store, SwarmHistory(api_client(config.docker_host, config.docker_timeout)))


def make_adapters(config: Config, store: StateStore | None = None) -> Adapters:
    store = store or open_store(config)
    jobs = SwarmJobs(api_client(config.docker_host, config.docker_timeout))
    secrets = SwarmSecrets(api_client(config.docker_host, config.docker_timeout))
    volumes = (S3VolumeStore(jobs, secrets, config.registry, config.backup_s3, config.role_label)
               if config.backup_s3 is not None else None)
    return Adapters(
        store=store,
        reader=SwarmReader(api_client(config.docker_host, config.docker_timeout)),
        deployer=StackDeployer(config.docker_host, timeout=config.docker_timeout),
        registry=Registry(config.registry, config.registry_insecure),
        builder=ImageBuilder(api_client(config.build.docker_host or config.docker_host, config.build.timeout)),
        secrets=secrets,
        ledger=ImageLedger(config.state_dir / "images.json"),
        sources=partial(git_source, config, slots=threading.Semaphore(config.git.concurrency)),
        history=history_copy(config, store),
        jobs=jobs,
        backups=VolumeBackups(jobs, config.registry, config.role_label),
        volumes=volumes,
    )


def make_reconciler(config: Config, adapters: Adapters | None = None, cancel: threading.Event | None = None,
                    progress: Callable[[str], None] | None = None,
                    snapshot: Callable[[str], LiveStack | None] = lambda _app: None) -> Reconciler:
    return Reconciler(config, adapters or make_adapters(config), cancel=cancel, progress=progress, snapshot=snapshot)

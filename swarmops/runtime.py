"""Wire the adapters for a loaded config: the one place that constructs them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from swarmops.config.models import Config
from swarmops.dockerclient import api_client
from swarmops.errors import SwarmopsError
from swarmops.images.builder import ImageBuilder
from swarmops.images.registry import Registry
from swarmops.reconciler import Adapters, Reconciler
from swarmops.state import StateStore
from swarmops.swarm.deploy import StackDeployer
from swarmops.swarm.history import KEPT, SwarmHistory
from swarmops.swarm.live import SwarmReader
from swarmops.swarm.secrets import SwarmSecrets


def open_store(config: Config) -> StateStore:
    return StateStore(config.state_dir / "state.db")


log = logging.getLogger("swarmops.runtime")


def keep_history_in_swarm(store: StateStore, history: SwarmHistory, apps: set[str], restore_all: bool) -> None:
    """Entries this manager's database lacks (a new manager, a lost disk, a manager that was away or stood
    by while another ran swarmops) are read back from the Swarm's copy: every app's when the daemon starts
    (`restore_all`, for its page and API), and one app's each time its history is about to decide or be
    written (a deploy starts, a rollback picks its target, `swarmops history`). That last read is one
    Engine call per deploy; it keeps a daemon that took over after standing by from writing a copy that
    drops the other's entries. Every finished deploy entry then updates that app's copy. Neither ever
    fails a deploy: the local database is the record."""

    def restore(names: set[str]) -> None:
        try:
            counts = {app: store.import_history(app, records) for app, records in history.load(names).items()}
        except SwarmopsError as e:
            log.warning("the history copy in the Swarm cannot be read (history here may miss entries written on "
                        "another manager): %s", e)
            return
        if any(counts.values()):
            log.warning("read back %d history entries of %d apps from the Swarm (written on another manager "
                        "or before this state database)", sum(counts.values()), sum(1 for n in counts.values() if n))

    def save(app: str) -> None:
        try:
            history.save(app, [d.to_dict() for d in store.history(app, KEPT)])
        except SwarmopsError as e:
            log.warning("the history copy of %s in the Swarm was not updated: %s", app, e)

    if restore_all and apps:
        restore(apps)
    store.refresh = lambda app: restore({app})
    store.on_record = save


def store_with_history(config: Config) -> StateStore:
    """The state database for a read-only command, reading an app's entries from the Swarm's copy when it
    is asked for them; with the Engine away, this manager's entries alone (said in a warning)."""
    store = open_store(config)
    if config.history.in_swarm:
        try:
            keep_history_in_swarm(store, SwarmHistory(api_client(config.docker_host, config.docker_timeout)),
                                  set(), False)
        except SwarmopsError as e:
            log.warning("history from this manager's database only: %s", e)
    return store


def make_adapters(config: Config, store: StateStore | None = None, restore_history: bool = False) -> Adapters:
    """`restore_history`: read back every app's history copy now (the daemon, at start)."""
    store = store or open_store(config)
    if config.history.in_swarm:
        keep_history_in_swarm(store, SwarmHistory(api_client(config.docker_host, config.docker_timeout)),
                              {a.name for a in config.apps}, restore_history)
    return Adapters(
        store=store,
        reader=SwarmReader(api_client(config.docker_host, config.docker_timeout)),
        deployer=StackDeployer(config.docker_host, timeout=config.docker_timeout),
        registry=Registry(config.registry, config.registry_insecure),
        builder=ImageBuilder(api_client(config.build.docker_host or config.docker_host, config.build.timeout)),
        secrets=SwarmSecrets(api_client(config.docker_host, config.docker_timeout)),
    )


def make_reconciler(config: Config, cancel: threading.Event | None = None,
                    progress: Callable[[str], None] | None = None, restore_history: bool = False) -> Reconciler:
    return Reconciler(config, make_adapters(config, restore_history=restore_history), cancel=cancel,
                      progress=progress)

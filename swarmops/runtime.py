"""Wire the adapters for a loaded config: the one place that constructs them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from swarmops.config.models import Config
from swarmops.dockerclient import api_client
from swarmops.images.builder import ImageBuilder
from swarmops.images.registry import Registry
from swarmops.reconciler import Adapters, Reconciler
from swarmops.state import StateStore
from swarmops.swarm.deploy import StackDeployer
from swarmops.swarm.live import SwarmReader
from swarmops.swarm.secrets import SwarmSecrets


def open_store(config: Config) -> StateStore:
    return StateStore(config.state_dir / "state.db")


def make_adapters(config: Config, store: StateStore | None = None) -> Adapters:
    return Adapters(
        store=store or open_store(config),
        reader=SwarmReader(api_client(config.docker_host, config.docker_timeout)),
        deployer=StackDeployer(config.docker_host, timeout=config.docker_timeout),
        registry=Registry(config.registry, config.registry_insecure),
        builder=ImageBuilder(api_client(config.build.docker_host or config.docker_host, config.build.timeout)),
        secrets=SwarmSecrets(api_client(config.docker_host, config.docker_timeout)),
    )


def make_reconciler(config: Config, cancel: threading.Event | None = None,
                    progress: Callable[[str], None] | None = None) -> Reconciler:
    return Reconciler(config, make_adapters(config), cancel=cancel, progress=progress)

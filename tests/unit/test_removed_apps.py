"""Apps removed from the config (daemon/main.py's handle_removed_apps, domain/status.removed_apps) on the
fakes: a stack this swarmops deployed is reported and pruned when the config says so; one another swarmops
deployed into the same Swarm (its own state directory: a staging daemon, a test's) is neither."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from swarmops.adapters.store import StateStore
from swarmops.config.loader import LoadedConfig
from swarmops.config.models import AppConfig
from swarmops.daemon.main import handle_removed_apps
from swarmops.reconcile.reconciler import Reconciler
from tests.fakes import World
from tests.unit.test_reconciler import FILES


def two_swarmops(tmp_path: Path) -> tuple[World, str]:
    """`shop` deployed by this swarmops; `other` by another one into the same Swarm, with its own state."""
    w = World(tmp_path / "ours")
    w.source.commit("first", FILES)
    assert w.sync().result == "deployed"
    other = AppConfig.model_validate({**w.app.model_dump(mode="json"), "name": "other"})
    theirs = w.config.model_copy(update={"apps": [other], "state_dir": tmp_path / "theirs"})
    adapters = replace(w.adapters, store=StateStore(tmp_path / "theirs" / "state.db"))
    assert Reconciler(theirs, adapters, clock=w.clock).reconcile(other, trigger="manual", force=True).result == \
        "deployed"
    return w, "other"


def test_only_a_stack_this_swarmops_deployed_is_reported_and_pruned(tmp_path: Path) -> None:
    w, other = two_swarmops(tmp_path)
    gone = w.config.model_copy(update={"apps": [], "prune_removed_apps": True})
    assert set(w.swarm.read_all()) == {"shop", other}
    removed = handle_removed_apps(w.adapters, LoadedConfig(gone, tmp_path / "swarmops.yml"))
    assert removed == ["shop"]
    assert set(w.swarm.read_all()) == {other}   # the other swarmops' app runs on


def test_a_removed_app_is_left_running_without_prune_removed_apps(tmp_path: Path) -> None:
    w, other = two_swarmops(tmp_path)
    gone = w.config.model_copy(update={"apps": []})
    assert handle_removed_apps(w.adapters, LoadedConfig(gone, tmp_path / "swarmops.yml")) == ["shop"]
    assert set(w.swarm.read_all()) == {"shop", other}

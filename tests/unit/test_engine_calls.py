"""Issue 26: the Engine calls of one deploy, and of a restarted daemon's first full check, do not grow with
the number of apps in the Swarm. Counted on the fakes: the Swarm reader's reads (tests/fakes.py) and the
config calls of the history copy, made by the real SwarmHistory over an in-memory configs API."""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker
import pytest

from swarmops.adapters.store import StateStore
from swarmops.adapters.swarm.history import LABEL, SwarmHistory
from swarmops.adapters.swarm.live import SwarmReader
from swarmops.config.loader import LoadedConfig
from swarmops.daemon.main import run_once
from swarmops.reconcile.reconciler import Reconciler
from swarmops.runtime import SwarmHistoryCopy
from tests.fakes import FakeSource, World

STACK = """services:
  web:
    image: reg:5000/base/busybox:1
    command: ["sleep", "1000"]
    deploy:
      replicas: 1
"""
PUBLISHED = STACK.replace("    deploy:", "    ports: [\"30700:80\"]\n    deploy:")


class FakeConfigsApi:
    """The part of docker-py's APIClient the history copy uses, as the Engine answers it: configs with a
    unique name, data base64 in the spec, listed by label (`key` or `key=value`). Every call is counted."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self._ids = itertools.count(1)

    def configs(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        self.calls["configs"] += 1
        key, _, value = (filters or {}).get("label", "").partition("=")
        return [c for c in self.items.values() if not key or (key in c["Spec"]["Labels"] and
                                                               (not value or c["Spec"]["Labels"][key] == value))]

    def create_config(self, name: str, data: bytes, labels: dict[str, str]) -> dict[str, str]:
        self.calls["create_config"] += 1
        if any(c["Spec"]["Name"] == name for c in self.items.values()):
            raise docker.errors.APIError(f"config {name} already exists")
        cid = f"cfg{next(self._ids)}"
        self.items[cid] = {"ID": cid, "Spec": {"Name": name, "Labels": dict(labels),
                                               "Data": base64.b64encode(data).decode()}}
        return {"ID": cid}

    def remove_config(self, cid: str) -> None:
        self.calls["remove_config"] += 1
        if self.items.pop(cid, None) is None:
            raise docker.errors.NotFound(f"config {cid} not found")


@dataclass
class Cluster:
    """A Swarm of fakes with apps in it, and the daemon's pieces over it."""

    world: World
    api: FakeConfigsApi
    sources: dict[str, FakeSource]

    def reads(self) -> Counter[str]:
        return Counter(reads=self.world.swarm.reads, all_reads=self.world.swarm.all_reads,
                       deploys=len(self.world.swarm.deploys)) + self.api.calls

    def wire(self, store: StateStore) -> None:
        """A new process: a new history copy (nothing seen yet) over the same Swarm, and its reconciler."""
        w = self.world
        w.adapters = replace(w.adapters, store=store, history=SwarmHistoryCopy(store, SwarmHistory(self.api)),
                             sources=lambda app: self.sources[app.name])
        w.reconciler = Reconciler(w.config, w.adapters, progress=w.said.append, clock=w.clock)


def cluster(tmp_path: Path, apps: int, stack: str = STACK) -> Cluster:
    """`apps` apps in the config, each with one commit, none deployed yet."""
    names = [f"app{i}" for i in range(apps)]
    w = World(tmp_path, apps=[{"name": n, "repo": f"file:///srv/git/{n}.git", "settle": "1s",
                               "deploy_timeout": "30s"} for n in names])
    sources = {n: FakeSource() for n in names}
    for n in names:
        sources[n].commit("first", {"stack.yml": stack if n == names[0] else STACK})
    c = Cluster(w, FakeConfigsApi(), sources)
    c.wire(w.store)
    return c


def deploy_all(c: Cluster) -> None:
    outcomes = [c.world.reconciler.reconcile(app, trigger="poll") for app in c.world.config.apps]
    assert {o.result for o in outcomes} == {"deployed"}, [o.message for o in outcomes]


def calls_of_one_deploy(tmp_path: Path, others: int, stack: str = STACK) -> Counter[str]:
    c = cluster(tmp_path, 1 + others, stack)
    deploy_all(c)
    app = c.world.config.apps[0]
    c.sources[app.name].commit("second", {"stack.yml": stack.replace("1000", "2000")})
    before = c.reads()
    assert c.world.reconciler.reconcile(app, trigger="poll").result == "deployed"
    return c.reads() - before


@pytest.mark.parametrize("stack", [STACK, PUBLISHED], ids=["no-port", "published-port"])
def test_the_engine_calls_of_one_deploy_are_the_same_with_50_other_apps_in_the_swarm(
        tmp_path: Path, stack: str) -> None:
    alone = calls_of_one_deploy(tmp_path / "alone", 0, stack)
    among = calls_of_one_deploy(tmp_path / "among", 50, stack)
    assert among == alone
    assert alone["deploys"] == 1
    # the history copy: listed once before the decision (another manager's entries), then one create and
    # one remove of the copy it replaces; the save lists nothing more
    assert (alone["configs"], alone["create_config"], alone["remove_config"]) == (1, 1, 1)
    assert alone["all_reads"] == (1 if stack == PUBLISHED else 0)   # every app's services only for a port


def calls_of_a_restart(tmp_path: Path, apps: int, new_manager: bool = False) -> tuple[Counter[str], list[str], int]:
    c = cluster(tmp_path, apps)
    deploy_all(c)
    store = StateStore(tmp_path / "new" / "state.db") if new_manager else c.world.store
    c.wire(store)   # the daemon started again (or on another manager: an empty state directory)
    before = c.reads()
    outcomes = run_once(LoadedConfig(c.world.config, Path("swarmops.yml")), store, c.world.adapters)
    restored = sum(len(store.history(a.name)) for a in c.world.config.apps)
    return c.reads() - before, sorted({o.result for o in outcomes}), restored


@pytest.mark.parametrize("new_manager", [False, True], ids=["same-manager", "new-manager"])
def test_a_restart_over_synced_apps_deploys_nothing_in_the_same_calls_for_1_or_50_apps(
        tmp_path: Path, new_manager: bool) -> None:
    one, results_one, restored_one = calls_of_a_restart(tmp_path / "one", 1, new_manager)
    many, results_many, restored_many = calls_of_a_restart(tmp_path / "many", 50, new_manager)
    assert results_one == results_many == ["noop"]
    assert one == many
    # one config list for every app's history copy, one read of every app's live state, no deploy
    assert many == Counter(configs=1, reads=1, all_reads=1)
    assert (restored_one, restored_many) == (1, 50)   # a new manager read every app's entry back


class Ticking:
    """The history copy's clock: each save one second after the last (two processes never share a name)."""

    def __init__(self) -> None:
        self.ns = 1_800_000_000 * 10**9

    def time_ns(self) -> int:
        self.ns += 10**9
        return self.ns


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("swarmops.adapters.swarm.history.time", Ticking())


@pytest.mark.usefixtures("ticking")
def test_a_save_after_a_start_replaces_the_copy_it_read_without_listing_again() -> None:
    api = FakeConfigsApi()
    first = SwarmHistory(api)
    first.save("web", [{"app": "web", "commit_sha": "c1", "started": 1.0}])   # nothing seen yet: it lists
    assert api.calls == Counter(configs=1, create_config=1)
    restarted = SwarmHistory(api)
    assert restarted.load({"web", "api"})["web"][0]["commit_sha"] == "c1"
    api.calls.clear()
    restarted.save("web", [{"app": "web", "commit_sha": "c2", "started": 2.0}])
    restarted.save("api", [{"app": "api", "commit_sha": "a1", "started": 3.0}])   # seen: it has none
    assert api.calls == Counter(create_config=2, remove_config=1)
    copies = sorted((c["Spec"]["Labels"][LABEL], c["Spec"]["Name"]) for c in api.items.values())
    assert [app for app, _ in copies] == ["api", "web"]   # one copy each


@pytest.mark.usefixtures("ticking")
def test_a_copy_another_writer_made_meanwhile_is_removed_by_the_next_save_after_a_load() -> None:
    api = FakeConfigsApi()
    ours, theirs = SwarmHistory(api), SwarmHistory(api)
    ours.load({"web"})
    theirs.save("web", [{"app": "web", "commit_sha": "c1", "started": 1.0}])   # a CLI on another manager
    ours.save("web", [{"app": "web", "commit_sha": "c2", "started": 2.0}])     # did not see it: both remain
    assert ours.load({"web"})["web"][0]["commit_sha"] == "c2"                  # the newest is read
    ours.save("web", [{"app": "web", "commit_sha": "c3", "started": 3.0}])     # the load saw both: both go
    assert [c["Spec"]["Name"] for c in api.items.values()] == [max(c["Spec"]["Name"] for c in api.items.values())]
    assert len(api.items) == 1


class CountingReadApi:
    """The Engine calls a Swarm read makes, counted: one app's service and its task, one node, no network."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def services(self, **_: Any) -> list[dict[str, Any]]:
        self.calls["services"] += 1
        return [{"ID": "s1", "Version": {"Index": 1}, "Spec": {
            "Name": "shop_web", "Labels": {"com.docker.stack.namespace": "shop"},
            "TaskTemplate": {"ContainerSpec": {"Image": "reg:5000/shop/web:abc"}},
            "Mode": {"Replicated": {"Replicas": 1}}}}]

    def tasks(self, **_: Any) -> list[dict[str, Any]]:
        self.calls["tasks"] += 1
        return []

    def nodes(self, **_: Any) -> list[dict[str, Any]]:
        self.calls["nodes"] += 1
        return []

    def networks(self, **_: Any) -> list[dict[str, Any]]:
        self.calls["networks"] += 1
        return []


def test_a_convergence_watch_reads_services_and_tasks_only_and_the_applied_record_the_networks_once() -> None:
    api = CountingReadApi()
    reader = SwarmReader(api)
    for _ in range(10):   # a watch's polls
        reader.read_app("shop", networks=False)
    assert api.calls == {"services": 10, "tasks": 10, "nodes": 1}   # nodes: cached across reads
    reader.read_app("shop")
    assert api.calls["networks"] == 1

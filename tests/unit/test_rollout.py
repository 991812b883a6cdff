import threading
from typing import Any

import pytest

from swarmops.config.models import AppConfig, Config
from swarmops.domain.live import LiveStack
from swarmops.errors import Interrupted
from swarmops.reconcile.rollout import Rollout
from tests.unit.fakes import service, stack, task

WEB = service("web", replicas=2)
COMING_BACK = stack([WEB], [task(WEB, at=1), task(WEB, state="starting", at=2)])
BOTH_UP = stack([WEB], [task(WEB, at=1), task(WEB, at=2)])


class FakeReader:
    """The swarm reader's `read_app`, answering from a list of snapshots (the last one repeats)."""

    def __init__(self, *snapshots: LiveStack) -> None:
        self.snapshots, self.reads = list(snapshots), 0

    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack:
        self.reads += 1
        return self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]

    def networks(self, app: str) -> dict[str, str]:
        return {}

    def read_all(self) -> dict[str, LiveStack]:
        return {"app": self.read_app("app")}


def rollout(reader: FakeReader, timeout: str = "30s", cancel: threading.Event | None = None,
            said: list[str] | None = None) -> tuple[Rollout, AppConfig]:
    app = AppConfig.model_validate({"name": "app", "repo": "file:///srv/git/app.git", "deploy_timeout": timeout})
    config = Config.model_validate({"registry": "reg:5000", "state_dir": "/nonexistent", "apps": [app]})
    store: Any = None   # waiting for replicas neither records nor deploys
    return Rollout(config, store, reader, store, cancel or threading.Event(),
                   (said if said is not None else []).append), app


def test_the_update_waits_until_swarm_has_brought_the_replica_back() -> None:
    reader, said = FakeReader(COMING_BACK, COMING_BACK, BOTH_UP), list[str]()
    r, app = rollout(reader, said=said)
    r.await_replicas(app, ("web",))
    assert reader.reads == 3
    assert said == ["app: waiting for Swarm to bring back replicas before the update: web: 1/2 running, "
                    "a task starting on vm"]


def test_a_healthy_service_is_updated_at_once_with_one_read() -> None:
    reader, said = FakeReader(BOTH_UP), list[str]()
    r, app = rollout(reader, said=said)
    r.await_replicas(app, ("web",))
    assert (reader.reads, said) == (1, [])


def test_past_the_deploy_timeout_the_update_goes_ahead(caplog: pytest.LogCaptureFixture) -> None:
    r, app = rollout(FakeReader(COMING_BACK), timeout="1s")
    r.await_replicas(app, ("web",))
    assert "updating although Swarm has not brought back every replica" in caplog.text


def test_a_daemon_stopping_ends_the_wait() -> None:
    cancel = threading.Event()
    cancel.set()
    r, app = rollout(FakeReader(COMING_BACK), cancel=cancel)
    with pytest.raises(Interrupted):
        r.await_replicas(app, ("web",))


class WatchedReader(FakeReader):
    """Also counts the network reads, and which reads came with networks."""

    def __init__(self, *snapshots: LiveStack) -> None:
        super().__init__(*snapshots)
        self.full_reads = self.network_reads = 0

    def read_app(self, app: str, services_only: bool = False, networks: bool = True) -> LiveStack:
        self.full_reads += networks and not services_only
        return super().read_app(app, services_only, networks)

    def networks(self, app: str) -> dict[str, str]:
        self.network_reads += 1
        return {"n1": "app_default"}


class Recorded:
    def __init__(self) -> None:
        self.deployed: list[str] = []
        self.applied: list[Any] = []

    def deploy(self, app: str, stack_file: Any) -> None:
        self.deployed.append(app)

    def save_applied(self, app: str, record: Any) -> None:
        self.applied.append(record)


def test_a_converged_deploy_returns_the_watchs_last_read_with_the_networks_read_once(tmp_path: Any) -> None:
    reader, edges = WatchedReader(COMING_BACK, BOTH_UP), Recorded()
    app = AppConfig.model_validate({"name": "app", "repo": "file:///srv/git/app.git", "settle": "0s"})
    config = Config.model_validate({"registry": "reg:5000", "state_dir": str(tmp_path), "apps": [app]})
    r = Rollout(config, edges, reader, edges, threading.Event(), list[str]().append)   # type: ignore[arg-type]
    live = r.apply(app, tmp_path / "stack.yml", ["web"])
    # two polls (starting, then both running), then the stack's networks: no read of every service again
    assert (reader.reads, reader.full_reads, reader.network_reads) == (2, 0, 1)
    assert live.tasks == BOTH_UP.tasks and live.networks == {"n1": "app_default"}
    assert edges.deployed == ["app"] and len(edges.applied) == 1

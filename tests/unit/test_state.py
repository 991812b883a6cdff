"""The state store's per-app facts."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from swarmops.adapters.store import StateStore
from swarmops.runtime import SwarmHistoryCopy


def test_the_state_store_keeps_the_last_fault_and_when_it_cleared(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.set_app("portal", last_error="registry 198.18.0.2:5000 did not answer", last_error_at=100.0)
    seen = store.app_state("portal")
    assert (seen.last_fault, seen.last_fault_at, seen.fault_cleared_at) == (
        "registry 198.18.0.2:5000 did not answer", 100.0, 0.0)
    store.set_app("portal", last_error="")
    cleared = store.app_state("portal")
    assert cleared.last_fault == "registry 198.18.0.2:5000 did not answer" and cleared.fault_cleared_at > 100.0
    store.set_app("portal", last_error="build failed", last_error_at=200.0)   # a new fault: not cleared yet
    assert store.app_state("portal").fault_cleared_at == 0.0


class FakeHistory:
    """Honours SwarmHistory's interface: save replaces an app's copy, load returns the copies asked for."""

    def __init__(self) -> None:
        self.copies: dict[str, list[dict[str, object]]] = {}
        self.loads: list[set[str]] = []

    def save(self, app: str, records: list[dict[str, object]]) -> None:
        self.copies[app] = records

    def load(self, apps: set[str]) -> dict[str, list[dict[str, object]]]:
        self.loads.append(set(apps))
        return {a: r for a, r in self.copies.items() if a in apps}


def copy_of(store: StateStore, swarm: FakeHistory, apps: set[str]) -> SwarmHistoryCopy:
    """A daemon's start: every app's entries read back from the Swarm's copy."""
    copy = SwarmHistoryCopy(store, swarm)   # type: ignore[arg-type]
    copy.restore_all(apps)
    return copy


def record(store: StateStore, copy: SwarmHistoryCopy, commit: str, result: str = "succeeded", error: str = "") -> None:
    """What the executor does with each deploy entry: write it, then update the app's copy."""
    store.finish_deploy(store.start_deploy("web", commit, "Ann", f"add {commit}", "poll", "/d"), result, error)
    copy.save("web")


def test_a_new_state_database_reads_the_history_back_from_the_swarm_copy(tmp_path: Path) -> None:
    swarm = FakeHistory()
    first = StateStore(tmp_path / "a" / "state.db")
    copy = copy_of(first, swarm, {"web"})
    record(first, copy, "c1")
    record(first, copy, "c2", "failed", "boom")
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c2", "c1"]   # updated after each entry

    second = StateStore(tmp_path / "b" / "state.db")   # another manager: an empty state directory
    copy_of(second, swarm, {"web", "api"})
    got = [(d.commit_sha, d.result, d.author, d.error) for d in second.history("web")]
    assert got == [("c2", "failed", "Ann", "boom"), ("c1", "succeeded", "Ann", "")]
    assert second.last_good("web") is not None and second.last_good("web").commit_sha == "c1"  # type: ignore[union-attr]


def test_a_database_that_was_away_gets_only_the_entries_it_lacks(tmp_path: Path) -> None:
    swarm = FakeHistory()
    a = StateStore(tmp_path / "a" / "state.db")
    record(a, copy_of(a, swarm, {"web"}), "c1")
    b = StateStore(tmp_path / "b" / "state.db")  # manager a is lost; b carries on
    record(b, copy_of(b, swarm, {"web"}), "c2")
    copy_of(a, swarm, {"web"})    # a returns and runs swarmops again
    assert [d.commit_sha for d in a.history("web")] == ["c2", "c1"]
    copy_of(a, swarm, {"web"})    # and again: nothing doubled
    assert [d.commit_sha for d in a.history("web")] == ["c2", "c1"]


def test_one_apps_restore_reads_only_its_copy_and_keeps_the_older_entries(tmp_path: Path) -> None:
    swarm = FakeHistory()
    daemon = StateStore(tmp_path / "a" / "state.db")
    record(daemon, copy_of(daemon, swarm, {"web", "api"}), "c1")
    swarm.loads.clear()
    cli = StateStore(tmp_path / "b" / "state.db")   # `swarmops sync web` on a manager with a new state dir
    copy = SwarmHistoryCopy(cli, swarm)   # type: ignore[arg-type]
    assert swarm.loads == []                                    # nothing read at start
    copy.restore("web")                                         # before its history decides or is written
    record(cli, copy, "c2")
    assert swarm.loads == [{"web"}]                             # that app's copy only
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c2", "c1"]   # c1 is not dropped
    assert [d.commit_sha for d in cli.history("web")] == ["c2", "c1"]       # and sorts before c2


def test_a_daemon_that_stood_by_keeps_what_the_active_one_recorded_meanwhile(tmp_path: Path) -> None:
    swarm = FakeHistory()
    active, standby = StateStore(tmp_path / "a" / "state.db"), StateStore(tmp_path / "b" / "state.db")
    active_copy = copy_of(active, swarm, {"web"})
    standby_copy = copy_of(standby, swarm, {"web"})   # starts, waits on the lock
    for commit in ("c1", "c2"):
        record(active, active_copy, commit)
    # the active manager is lost; the standby takes the lock and deploys (its history read in before it decides)
    standby_copy.restore("web")
    record(standby, standby_copy, "c3", "failed", "boom")
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c3", "c2", "c1"]
    good = standby.last_good("web", before_commit="c3")
    assert good is not None and good.commit_sha == "c2"   # its rollback target is what ran before


def test_a_deploy_left_running_by_a_dead_process_is_found_and_one_of_a_live_process_is_not(tmp_path: Path) -> None:
    import subprocess
    import sys
    store = StateStore(tmp_path / "state.db")
    mine = store.start_deploy("app", "c" * 40, "a", "m", "poll", "/d")
    db = str(tmp_path / "state.db")
    child = subprocess.Popen([sys.executable, "-c", "from pathlib import Path; "
                              "from swarmops.adapters.store import StateStore; "
                              f"print(StateStore(Path({db!r})).start_deploy('app', 'd' * 40, 'a', 'm', 'poll', '/d'))"],
                             stdout=subprocess.PIPE, text=True)
    theirs = int(child.communicate()[0])   # that process is gone now, its deploy still "running"
    assert store.orphaned("app") == [theirs] and mine not in store.orphaned("app")
    store.interrupt(theirs)
    assert store.orphaned("app") == [] and store.get_deploy(theirs).result == "interrupted"  # type: ignore[union-attr]


def _open_store(path: str, start: Any) -> None:
    start.wait()
    StateStore(Path(path)).close()


def test_processes_opening_a_new_state_database_at_once_all_open_it(tmp_path: Path) -> None:
    # the daemon and CLI commands can open the same new database together: each must not add the
    # columns another has just added
    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"state-{attempt}.db"
        start = ctx.Barrier(8)
        procs = [ctx.Process(target=_open_store, args=(str(path), start)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 8
    assert StateStore(path).app_state("x").fault_cleared_at == 0.0

"""The state store's per-app facts."""

from __future__ import annotations

from pathlib import Path

from swarmops.runtime import keep_history_in_swarm
from swarmops.state import StateStore


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


def test_a_new_state_database_reads_the_history_back_from_the_swarm_copy(tmp_path: Path) -> None:
    swarm = FakeHistory()
    first = StateStore(tmp_path / "a" / "state.db")
    keep_history_in_swarm(first, swarm, {"web"}, True)     # type: ignore[arg-type]
    for commit, result, error in (("c1", "succeeded", ""), ("c2", "failed", "boom")):
        first.finish_deploy(first.start_deploy("web", commit, "Ann", f"add {commit}", "poll", "/d"), result, error)
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c2", "c1"]   # updated after each entry

    second = StateStore(tmp_path / "b" / "state.db")   # another manager: an empty state directory
    keep_history_in_swarm(second, swarm, {"web", "api"}, True)   # type: ignore[arg-type]
    got = [(d.commit_sha, d.result, d.author, d.error) for d in second.history("web")]
    assert got == [("c2", "failed", "Ann", "boom"), ("c1", "succeeded", "Ann", "")]
    assert second.last_good("web") is not None and second.last_good("web").commit_sha == "c1"  # type: ignore[union-attr]


def test_a_database_that_was_away_gets_only_the_entries_it_lacks(tmp_path: Path) -> None:
    swarm = FakeHistory()
    a = StateStore(tmp_path / "a" / "state.db")
    keep_history_in_swarm(a, swarm, {"web"}, True)    # type: ignore[arg-type]
    a.finish_deploy(a.start_deploy("web", "c1", "Ann", "m", "poll", "/d"), "succeeded")
    b = StateStore(tmp_path / "b" / "state.db")  # manager a is lost; b carries on
    keep_history_in_swarm(b, swarm, {"web"}, True)    # type: ignore[arg-type]
    b.finish_deploy(b.start_deploy("web", "c2", "Ann", "m", "poll", "/d"), "succeeded")
    keep_history_in_swarm(a, swarm, {"web"}, True)    # a returns and runs swarmops again
    assert [d.commit_sha for d in a.history("web")] == ["c2", "c1"]
    keep_history_in_swarm(a, swarm, {"web"}, True)    # and again: nothing doubled
    assert [d.commit_sha for d in a.history("web")] == ["c2", "c1"]


def test_a_cli_process_reads_only_the_copy_of_the_app_it_records_and_keeps_the_older_entries(
        tmp_path: Path) -> None:
    swarm = FakeHistory()
    daemon = StateStore(tmp_path / "a" / "state.db")
    keep_history_in_swarm(daemon, swarm, {"web", "api"}, True)   # type: ignore[arg-type]
    daemon.finish_deploy(daemon.start_deploy("web", "c1", "Ann", "m", "poll", "/d"), "succeeded")
    swarm.loads.clear()
    cli = StateStore(tmp_path / "b" / "state.db")   # `swarmops sync web` on a manager with a new state dir
    keep_history_in_swarm(cli, swarm, {"web", "api"}, False)   # type: ignore[arg-type]
    assert swarm.loads == []                                    # nothing read at start
    cli.finish_deploy(cli.start_deploy("web", "c2", "Ann", "m", "cli", "/d"), "succeeded")
    assert swarm.loads == [{"web"}]                             # that app's copy, before writing its entry
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c2", "c1"]   # c1 is not dropped
    assert [d.commit_sha for d in cli.history("web")] == ["c2", "c1"]       # and sorts before c2


def test_a_daemon_that_stood_by_keeps_what_the_active_one_recorded_meanwhile(tmp_path: Path) -> None:
    swarm = FakeHistory()
    active, standby = StateStore(tmp_path / "a" / "state.db"), StateStore(tmp_path / "b" / "state.db")
    keep_history_in_swarm(active, swarm, {"web"}, True)    # type: ignore[arg-type]
    keep_history_in_swarm(standby, swarm, {"web"}, True)   # type: ignore[arg-type]   # starts, waits on the lock
    for commit in ("c1", "c2"):
        active.finish_deploy(active.start_deploy("web", commit, "Ann", "m", "poll", "/d"), "succeeded")
    # the active manager is lost; the standby takes the lock and deploys
    standby.finish_deploy(standby.start_deploy("web", "c3", "Ann", "m", "poll", "/d"), "failed", "boom")
    assert [r["commit_sha"] for r in swarm.copies["web"]] == ["c3", "c2", "c1"]
    good = standby.last_good("web", before_commit="c3")
    assert good is not None and good.commit_sha == "c2"   # its rollback target is what ran before


def test_a_deploy_left_running_by_a_dead_process_is_found_and_one_of_a_live_process_is_not(tmp_path: Path) -> None:
    import subprocess
    import sys
    store = StateStore(tmp_path / "state.db")
    mine = store.start_deploy("app", "c" * 40, "a", "m", "poll", "/d")
    db = str(tmp_path / "state.db")
    child = subprocess.Popen([sys.executable, "-c", "from pathlib import Path; from swarmops.state import StateStore; "
                              f"print(StateStore(Path({db!r})).start_deploy('app', 'd' * 40, 'a', 'm', 'poll', '/d'))"],
                             stdout=subprocess.PIPE, text=True)
    theirs = int(child.communicate()[0])   # that process is gone now, its deploy still "running"
    assert store.orphaned("app") == [theirs] and mine not in store.orphaned("app")
    store.interrupt(theirs)
    assert store.orphaned("app") == [] and store.get_deploy(theirs).result == "interrupted"  # type: ignore[union-attr]

"""The state store's per-app facts."""

from __future__ import annotations

from pathlib import Path

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

"""The state store under state_dir: the history of deploys and the few per-app facts that are not in the
Swarm. History and a cache, never the only truth: what runs is read from the services' labels."""

from __future__ import annotations

from swarmops.adapters.store.applied import Applied
from swarmops.adapters.store.backups import BackupRecord, BackupRecords
from swarmops.adapters.store.flags import AppState, Flags
from swarmops.adapters.store.history import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, Deploy, History
from swarmops.adapters.store.notified import Notified

__all__ = ["FAILED", "INTERRUPTED", "RUNNING", "SUCCEEDED", "AppState", "BackupRecord", "Deploy", "StateStore"]


class StateStore(History, Flags, Notified, BackupRecords, Applied):
    """One SQLite database (history, flags, notified, backups) and the applied-spec files beside it."""

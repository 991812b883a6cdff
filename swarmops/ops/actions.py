"""The operator's actions, one implementation shared by the CLI and the HTTP API."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from swarmops.config.models import AppConfig
from swarmops.domain.specdiff import diff_summaries, summarize_compose, summarize_live
from swarmops.reconcile.events import Outcome
from swarmops.reconcile.ports import Store
from swarmops.reconcile.reconciler import Reconciler


@dataclass(frozen=True)
class ServiceDiff:
    service: str
    action: str
    reason: str
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)   # (field, git, live)


def cli_actor() -> str:
    """Who runs a CLI command, as the history names them: the sudo caller, else the process's user."""
    return "cli:" + (os.environ.get("SUDO_USER") or getpass.getuser())


def sync(reconciler: Reconciler, app: AppConfig, dry_run: bool = False, actor: str = "") -> Outcome:
    # a dry run decides as the sync would (heal drift, retry a failed commit), and writes nothing
    return reconciler.reconcile(app, trigger="manual", dry_run=dry_run, force=True, actor=actor)


def pause(store: Store, app: AppConfig) -> str:
    store.set_app(app.name, paused=True)
    return f"{app.name}: auto-sync suspended; `swarmops resume {app.name}` to sync again"


def resume(store: Store, app: AppConfig) -> str:
    store.set_app(app.name, paused=False, failed_commit="")
    return f"{app.name}: auto-sync resumed; the next poll syncs it to git"


def rollback(reconciler: Reconciler, app: AppConfig, to: str | None, across_migrations: bool = False,
             actor: str = "") -> Outcome:
    return reconciler.roll_back_to(app, to, across_migrations, actor)


def diff(reconciler: Reconciler, app: AppConfig) -> tuple[str, list[ServiceDiff]]:
    """Per service: what git renders now against the live spec, field by field."""
    preview = reconciler.preview(app)
    live = preview.live
    doc = preview.rendered.doc
    builds = {b.service: b for b in preview.plan.builds}
    out = []
    for change in preview.plan.changes:
        action: str = change.action
        reason = change.reason
        if change.service in builds:
            action, reason = "rebuild", f"{builds[change.service].reason}; {reason}"
        fields: list[tuple[str, Any, Any]] = []
        want = (doc.get("services") or {}).get(change.service)
        have = live.services.get(change.service)
        if want is not None and have is not None:
            fields = diff_summaries(summarize_compose(app.name, want, doc), summarize_live(have.spec, live.networks))
        out.append(ServiceDiff(change.service, action, reason, fields))
    return preview.head, out


def diff_to_json(head: str, diffs: list[ServiceDiff], mask_key: bytes | None = None) -> dict[str, Any]:
    """The diff as JSON; with mask_key (the HTTP API and page) environment values become short keyed
    digests, so that a change shows without the value (it may be a password)."""
    def value(f: str, v: Any) -> Any:
        if mask_key is not None and f == "env" and isinstance(v, dict):
            return {k: "hmac:" + hmac.new(mask_key, str(x).encode(), hashlib.sha256).hexdigest()[:8]
                    for k, x in v.items()}
        return v

    return {"commit": head, "services": [
        {**asdict(d), "fields": [{"field": f, "git": value(f, g), "live": value(f, v)} for f, g, v in d.fields]}
        for d in diffs]}

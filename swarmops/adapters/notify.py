"""Notifications with Apprise: one message per (app, commit, outcome), sent off the reconcile's thread
so that a slow or failing notifier never delays or fails a deploy."""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import apprise

from swarmops.config.models import Config
from swarmops.domain.backups import BackupRun
from swarmops.domain.status import DEGRADED, SYNCED, AppStatus
from swarmops.errors import SwarmopsError
from swarmops.reconcile.events import Observer, Outcome
from swarmops.util.redact import redact_url, terminal_safe

log = logging.getLogger("swarmops.notify")
REMEMBERED = 10_000
DEGRADED_EVENT = "app degraded"
BACKUP_FAILED_EVENT = "backup failed"
BACKUP_MISSED_EVENT = "backup missed"


def outcome_event(outcome: Outcome) -> str | None:
    """The notification an outcome is worth, or None (no-change checks, skips, dry runs)."""
    if outcome.result == "deployed":
        return "deploy succeeded"
    if outcome.result == "healed":
        return "drift healed"
    if outcome.result == "rolled_back":
        return "rolled back by an operator"
    if outcome.result != "failed" or outcome.commit is None:
        return None
    if outcome.error_kind == "PolicyError":
        return "policy violation"
    if outcome.rolled_back_to:
        return "deploy failed, rolled back"
    return "deploy failed"


class Sent(Protocol):
    """Which (app, commit, event) were notified; the daemon's is the state store, so it survives restarts."""

    def claim_notification(self, app: str, commit: str, event: str) -> bool: ...

    def forget_notification(self, app: str, event: str) -> None: ...


class MemorySent:
    def __init__(self) -> None:
        self._sent: collections.OrderedDict[tuple[str, str, str], None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def claim_notification(self, app: str, commit: str, event: str) -> bool:
        with self._lock:
            if (app, commit, event) in self._sent:
                return False
            self._sent[(app, commit, event)] = None
            while len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)
            return True

    def forget_notification(self, app: str, event: str) -> None:
        with self._lock:
            for key in [k for k in self._sent if k[0] == app and k[2] == event]:
                del self._sent[key]


class Notifier(Observer):
    def __init__(self, config: Config, author_of: Callable[[str, str], str] | None = None,
                 send: Callable[[list[str], str, str], bool] | None = None, sent: Sent | None = None) -> None:
        self.config = config
        self.author_of = author_of or (lambda _app, _commit: "")
        self.send = send or _apprise_send
        self.sent: Sent = sent or MemorySent()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")   # in order: flush waits for all

    def _urls(self, app: str) -> list[str]:
        entry = self.config.app(app)
        return [*self.config.notify.urls, *(entry.notify_urls if entry else [])]

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        event = outcome_event(outcome)
        if event is not None:
            asked = f" (asked by {outcome.actor})" if outcome.actor else ""
            self._notify(outcome.app, outcome.commit or "", event, outcome.message + asked)

    def on_backup(self, run: BackupRun) -> None:
        """A backup that failed is notified as a failed deploy is: once per run (its start names it). One that
        ran too late for its time says so first, once per missed time."""
        if run.missed:
            self._notify(run.app, f"backup-missed-{run.missed}", BACKUP_MISSED_EVENT,
                         f"the backup scheduled for {run.missed} did not run at its time (the daemon was not "
                         "running, or the app's deploys held it off); it ran late instead: "
                         + ("succeeded" if run.ok else "failed, see the next message"), commit_line=False)
        if not run.ok:
            self._notify(run.app, f"backup-{run.started:.0f}", BACKUP_FAILED_EVENT, run.message, commit_line=False)

    def on_status(self, old: AppStatus | None, new: AppStatus) -> None:
        """The status cache saw an app's status change: a degradation notifies once per episode."""
        if new.status == DEGRADED and (old is None or old.status != DEGRADED):
            troubled = [f"{s.name}: {s.running}/{s.desired} running" + (f", {s.last_error}" if s.last_error else "")
                        for s in new.services if s.desired is not None and s.running < s.desired]
            self._notify(new.app, new.commit or "", DEGRADED_EVENT, "; ".join(troubled) or new.message)
        elif new.status == SYNCED and old is not None and old.status == DEGRADED:
            self.sent.forget_notification(new.app, DEGRADED_EVENT)

    def _notify(self, app: str, commit: str, event: str, cause: str, commit_line: bool = True) -> None:
        urls = self._urls(app)
        if not urls:
            return
        try:
            if not self.sent.claim_notification(app, commit, event):
                return
        except SwarmopsError as e:   # the state store is unwell: better one message too many than none
            log.warning("cannot record notification %s of %s: %s", event, app, e)
        title = f"swarmops: {app} {event}"
        cause = _shown(cause)
        lines = [f"app: {app}", f"commit: {commit[:12]}", f"author: {_shown(self.author_of(app, commit))}",
                 f"outcome: {event}", f"cause: {cause}"] if commit_line else \
            [f"app: {app}", f"outcome: {event}", f"cause: {cause}"]
        if self.config.http and self.config.http.external_url:
            lines.append(f"link: {self.config.http.external_url.rstrip('/')}/apps/{app}")
        self._pool.submit(self._deliver, urls, title, "\n".join(lines))

    def _deliver(self, urls: list[str], title: str, body: str) -> None:
        try:
            if not self.send(urls, title, body):
                log.warning("notification %r was not delivered to %s", title, ", ".join(map(redact_url, urls)))
        except Exception as e:   # a notifier's failure is logged, never raised into a deploy
            log.warning("notification %r failed: %s", title, redact_url(str(e)))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for queued deliveries (tests, shutdown)."""
        self._pool.submit(lambda: None).result(timeout=timeout)


CAUSE_LIMIT = 2000   # characters of a cause a message carries: a job's log tail is the server's own words


_LINE_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _shown(text: str) -> str:
    """Text from a repo, a job's log or a server (the app's own database may say anything) as a message
    shows it: on one line (a line break in a Dockerfile's command, quoted back in Docker's build error, would
    start a forged `outcome:` or `link:` line), control and bidirectional characters escaped, as on a
    terminal, and bounded."""
    safe = terminal_safe(_LINE_BREAKS.sub(" | ", text))
    if len(safe) <= CAUSE_LIMIT:
        return safe
    return f"{safe[:CAUSE_LIMIT]} ... ({len(safe) - CAUSE_LIMIT} more characters)"


def _apprise_send(urls: list[str], title: str, body: str) -> bool:
    notifier = apprise.Apprise()
    for url in urls:
        notifier.add(url)
    return bool(notifier.notify(title=title, body=body))

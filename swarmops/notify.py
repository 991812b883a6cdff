"""Notifications with Apprise: one message per (app, commit, outcome), sent off the reconcile's thread
so that a slow or failing notifier never delays or fails a deploy."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import apprise

from swarmops.config.models import Config
from swarmops.reconciler import Observer, Outcome
from swarmops.redact import redact_url

log = logging.getLogger("swarmops.notify")
REMEMBERED = 10_000


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
    if outcome.message.startswith("policy "):
        return "policy violation"
    if "; rolled back to " in outcome.message:
        return "deploy failed, rolled back"
    return "deploy failed"


class Notifier(Observer):
    def __init__(self, config: Config, author_of: Callable[[str, str], str] | None = None,
                 send: Callable[[list[str], str, str], bool] | None = None) -> None:
        self.config = config
        self.author_of = author_of or (lambda _app, _commit: "")
        self.send = send or _apprise_send
        self._sent: collections.OrderedDict[tuple[str, str, str], None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")   # in order: flush waits for all

    def _urls(self, app: str) -> list[str]:
        entry = self.config.app(app)
        return [*self.config.notify.urls, *(entry.notify_urls if entry else [])]

    def _first_time(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            if key in self._sent:
                return False
            self._sent[key] = None
            while len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)
            return True

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        event = outcome_event(outcome)
        urls = self._urls(outcome.app)
        if event is None or not urls or not self._first_time((outcome.app, outcome.commit or "", event)):
            return
        commit = (outcome.commit or "")[:12]
        title = f"swarmops: {outcome.app} {event}"
        author = self.author_of(outcome.app, outcome.commit or "")
        lines = [f"app: {outcome.app}", f"commit: {commit}", f"author: {author}", f"outcome: {event}",
                 f"cause: {outcome.message}"]
        if self.config.http and self.config.http.external_url:
            lines.append(f"link: {self.config.http.external_url.rstrip('/')}/apps/{outcome.app}")
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


def _apprise_send(urls: list[str], title: str, body: str) -> bool:
    notifier = apprise.Apprise()
    for url in urls:
        notifier.add(url)
    return bool(notifier.notify(title=title, body=body))

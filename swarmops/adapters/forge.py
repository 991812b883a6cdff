"""Commit statuses on the forge: `pending` when a deploy starts, then `success`, `failure` or `error`,
context `swarmops/<app>`, linking the app's page. Sent in order off the reconcile's thread; the token
travels only in a header."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import requests

from swarmops.config.models import AppConfig, Config
from swarmops.domain.webhook import normalise_url
from swarmops.reconcile.events import Observer, Outcome

log = logging.getLogger("swarmops.forge")


def forge_target(config: Config, app: AppConfig) -> tuple[str, str, str] | None:
    """(kind, statuses URL prefix, owner/name) for the app, or None when no forge token is configured."""
    if config.forge.token_file is None:
        return None
    host, _, path = normalise_url(app.repo).partition("/")
    repo = app.forge_repo or "/".join(path.split("/")[-2:])
    kind = config.forge.kind or ("github" if host == "github.com" else "gitea")
    api = config.forge.api_url or ("https://api.github.com" if kind == "github" else f"https://{host}/api/v1")
    return kind, api.rstrip("/"), repo


class ForgeStatus(Observer):
    def __init__(self, config: Config, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forge")   # pending before success

    def _post(self, app_name: str, commit: str, state: str, description: str) -> None:
        app = self.config.app(app_name)
        target = forge_target(self.config, app) if app else None
        if target is None or not commit or self.config.forge.token_file is None:
            return
        kind, api, repo = target
        try:
            token = self.config.forge.token_file.read_text().strip()
        except OSError as e:
            log.warning("forge token file %s unreadable: %s", self.config.forge.token_file, e.strerror)
            return
        auth = f"Bearer {token}" if kind == "github" else f"token {token}"
        link = self.config.http.external_url if self.config.http and self.config.http.external_url else None
        body = {"state": state, "context": f"swarmops/{app_name}", "description": description[:140],
                **({"target_url": f"{link.rstrip('/')}/apps/{app_name}"} if link else {})}
        self._pool.submit(self._send, f"{api}/repos/{repo}/statuses/{commit}", auth, body)

    def _send(self, url: str, auth: str, body: dict[str, str]) -> None:
        try:
            resp = requests.post(url, json=body, headers={"Authorization": auth, "Accept": "application/json"},
                                 timeout=self.timeout)
            if resp.status_code >= 300:
                log.warning("commit status for %s: the forge answered %s", body["context"], resp.status_code)
        except requests.RequestException as e:
            log.warning("commit status for %s not sent: %s", body["context"], type(e).__name__)

    def on_deploy(self, app: str, commit: str, trigger: str) -> None:
        self._post(app, commit, "pending", f"deploying ({trigger})")

    def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
        if outcome.commit is None or not outcome.attempted or outcome.result not in ("deployed", "failed"):
            return
        if outcome.result == "deployed":
            self._post(outcome.app, outcome.commit, "success", f"deployed in {seconds:.0f}s")
        else:   # the commit's own fault is a failure; the infrastructure's (retried) an error
            state = "error" if outcome.transient or outcome.error_kind == "Interrupted" else "failure"
            self._post(outcome.app, outcome.commit, state, outcome.message)

    def flush(self, timeout: float = 30.0) -> None:
        self._pool.submit(lambda: None).result(timeout=timeout)

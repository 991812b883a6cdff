"""The one adapter to swarmops: its read API with a `read` token (Polise never holds a deploy token, the
Docker socket or swarmops' state). It is also the only module that knows the shape of swarmops' answers:
the rest of Polise sees `AppInfo`, which carries what a citizen may see and nothing else (no image, node,
task or registry address). tests/unit/test_polise_contract.py runs it against swarmops' own HTTP app."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

# swarmops' app names (its config refuses others): anything else is no app, and never reaches its URL paths
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class SwarmopsUnavailable(Exception):
    """swarmops did not answer or refused; pages say so instead of failing. The message is for the log
    (it names the path and the cause), never for a page."""


@dataclass(frozen=True)
class AppInfo:
    """An app as Polise shows it: swarmops' status word, the deployed commit and its title, when, where."""
    name: str
    status: str                     # swarmops' word: Synced, Degraded, OutOfSync, ...; Unknown before its first look
    commit: str = ""                # the deployed commit, "" while nothing of the app runs
    title: str = ""                 # that commit's message, first line
    deployed_at: float | None = None
    url: str | None = None          # only from GET /api/v1/apps/{app}
    repo: str = ""                  # idem: the app's git repo
    forge_repo: str = ""            # idem: owner/name of the forge repo its reports are filed in; "" from `repo`
    sso: bool = False               # idem: behind the office's single sign-on (the proxy's shared middleware)
    backup_at: float | None = None  # the last backup run's start; None: none ran, or the app has no backup
    backup_result: str | None = None   # that run's result: "succeeded" or "failed" (BACKUP_RESULTS), else None
    backup_ok_at: float | None = None  # the start of the last run that succeeded; None: none ever did
    # never swarmops' backup_message: it is the operators' detail (hosts, paths, snapshots)


@dataclass(frozen=True)
class SsoApp:
    """An app behind the proxy's shared SSO middleware: its hosts, and the groups that may use it (none:
    every signed-in user) with whom to ask for access (polise.sso)."""
    app: str
    hosts: tuple[str, ...]
    groups: tuple[str, ...] = ()
    contact: str = ""


class ReadApi(Protocol):
    def apps(self) -> list[AppInfo]: ...

    def app(self, name: str) -> AppInfo | None: ...

    def history(self, name: str) -> list[dict[str, Any]]: ...

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]: ...

    def doc(self, name: str, which: str) -> str | None: ...


BACKUP_RESULTS = ("succeeded", "failed")
# a moment a page can show: after 1970 and before 9999 (datetime's last year, less a margin for the time zone)
LATEST = 253_370_764_800.0          # 9999-01-01T00:00:00Z


def moment(value: Any) -> float | None:
    """An epoch time of swarmops' JSON, or None for anything a page could not show as a time: missing, not a
    number (a string such as "1e400", a bool, null), NaN or infinite, zero or negative, or past year 9999 (where
    datetime, and with it the page, would fail)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < LATEST else None   # NaN compares false; an int of any size compares exactly


def app_info(status: Mapping[str, Any], url: str | None = None, repo: str = "", forge_repo: str = "",
             sso: bool = False) -> AppInfo:
    """From one of swarmops' AppStatus objects (an item of GET /api/v1/apps, or `status` of one app). Times and
    the backup's result are read defensively: an odd value is None, never an exception or a page's 500."""
    result = status.get("backup_result")
    return AppInfo(name=str(status["app"]), status=str(status.get("status") or "Unknown"),
                   commit=str(status.get("commit") or ""), title=str(status.get("title") or ""),
                   deployed_at=moment(status.get("deployed_at")), url=url, repo=repo, forge_repo=forge_repo, sso=sso,
                   backup_at=moment(status.get("backup_at")),
                   backup_result=result if isinstance(result, str) and result in BACKUP_RESULTS else None,
                   backup_ok_at=moment(status.get("backup_ok_at")))


class SwarmopsClient:
    def __init__(self, http: httpx.Client, token_file: Path) -> None:
        """`http` has swarmops' address as its base URL; `connect` makes it."""
        self._http = http
        self._token_file = token_file

    @classmethod
    def connect(cls, base_url: str, token_file: Path, timeout: float = 10.0) -> SwarmopsClient:
        return cls(httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False), token_file)

    def _get(self, path: str, **params: Any) -> Any:
        token = self._token_file.read_text().strip()   # read each time: a rotated token needs no restart
        try:
            resp = self._http.get(path, params={k: v for k, v in params.items() if v is not None},
                                  headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as e:
            raise SwarmopsUnavailable(f"swarmops did not answer {path}: {type(e).__name__}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise SwarmopsUnavailable(f"swarmops answered {resp.status_code} for {path}")
        return resp.json()

    def apps(self) -> list[AppInfo]:
        return [app_info(s) for s in self._get("/api/v1/apps") or []]

    def app(self, name: str) -> AppInfo | None:
        found = self._get(f"/api/v1/apps/{name}") if APP_NAME.match(name) else None
        if not found:
            return None
        status = found.get("status") or {"app": name}   # None until swarmops' first look at the Swarm
        return app_info(status, url=found.get("url") or None, repo=str(found.get("repo") or ""),
                        forge_repo=str(found.get("forge_repo") or ""), sso=found.get("sso") is True)

    def sso_apps(self) -> list[SsoApp]:
        """The apps behind the proxy's shared SSO middleware (polise.sso.SsoSource)."""
        return [SsoApp(str(a["app"]), tuple(str(h) for h in a.get("hosts") or []),
                       tuple(str(g) for g in a.get("groups") or []), str(a.get("contact") or ""))
                for a in self._get("/api/v1/sso") or []]

    def history(self, name: str) -> list[dict[str, Any]]:
        return list(self._get(f"/api/v1/apps/{name}/history", limit=500) or [])

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]:
        found = self._get(f"/api/v1/apps/{name}/commits", per_page=per_page,
                          since=since.isoformat() if since else None, until=until.isoformat() if until else None)
        return list((found or {}).get("commits", []))

    def doc(self, name: str, which: str) -> str | None:
        found = self._get(f"/api/v1/apps/{name}/docs/{which}") if APP_NAME.match(name) else None
        return str(found["markdown"]) if found else None

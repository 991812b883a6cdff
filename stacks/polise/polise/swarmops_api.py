"""The one adapter to swarmops: its read API with a `read` token (Polise never holds a deploy token, the
Docker socket or swarmops' state)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx


class SwarmopsUnavailable(Exception):
    """swarmops did not answer or refused; pages say so instead of failing."""


class ReadApi(Protocol):
    def apps(self) -> list[dict[str, Any]]: ...

    def app(self, name: str) -> dict[str, Any]: ...

    def history(self, name: str) -> list[dict[str, Any]]: ...

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]: ...

    def doc(self, name: str, which: str) -> str | None: ...


class SwarmopsClient:
    def __init__(self, base_url: str, token_file: Path, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False)
        self._token_file = token_file

    def _get(self, path: str, **params: Any) -> Any:
        token = self._token_file.read_text().strip()   # read each time: a rotated token needs no restart
        try:
            resp = self._http.get(path, params={k: v for k, v in params.items() if v is not None},
                                  headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as e:
            raise SwarmopsUnavailable(f"swarmops did not answer: {type(e).__name__}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise SwarmopsUnavailable(f"swarmops answered {resp.status_code} for {path}")
        return resp.json()

    def apps(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/apps") or [])

    def app(self, name: str) -> dict[str, Any]:
        return dict(self._get(f"/api/v1/apps/{name}") or {})

    def history(self, name: str) -> list[dict[str, Any]]:
        return list(self._get(f"/api/v1/apps/{name}/history", limit=500) or [])

    def commits(self, name: str, since: datetime | None = None, until: datetime | None = None,
                per_page: int = 200) -> list[dict[str, Any]]:
        found = self._get(f"/api/v1/apps/{name}/commits", per_page=per_page,
                          since=since.isoformat() if since else None, until=until.isoformat() if until else None)
        return list((found or {}).get("commits", []))

    def doc(self, name: str, which: str) -> str | None:
        found = self._get(f"/api/v1/apps/{name}/docs/{which}")
        return str(found["markdown"]) if found else None

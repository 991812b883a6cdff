"""Registry v2 queries: is a tag there, which image was built from a fingerprint. Asked of the
registry itself, never of the local image cache. Credentials come from the Docker config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests

from swarmops.errors import RegistryError

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])
FINGERPRINT_TAG = "fp-{}"
SOURCE_TAG_LABEL = "io.swarmops.source-tag"


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _basic_auth(host: str) -> str | None:
    try:
        data = json.loads((docker_config_dir() / "config.json").read_text())
    except (OSError, ValueError):
        return None
    entry = (data.get("auths") or {}).get(host) or {}
    auth = entry.get("auth")
    return str(auth) if auth else None


class Registry:
    def __init__(self, host: str, insecure: bool, timeout: float = 30.0) -> None:
        self.host = host
        self.base = f"{'http' if insecure else 'https'}://{host}/v2"
        self.timeout = timeout
        self._session = requests.Session()
        auth = _basic_auth(host)
        if auth:
            self._session.headers["Authorization"] = f"Basic {auth}"

    def _get(self, path: str, accept: str | None = None, method: str = "GET") -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        try:
            resp = self._session.request(method, f"{self.base}/{path}", headers=headers, timeout=self.timeout)
            if resp.status_code == 401 and "Bearer" in resp.headers.get("WWW-Authenticate", ""):
                self._bearer(resp.headers["WWW-Authenticate"])
                resp = self._session.request(method, f"{self.base}/{path}", headers=headers,
                                             timeout=self.timeout)
        except requests.RequestException as e:
            raise RegistryError(f"registry {self.host} did not answer: {type(e).__name__}") from e
        if resp.status_code >= 500:
            raise RegistryError(f"registry {self.host} answered {resp.status_code} for {path}; try again later")
        if resp.status_code in (401, 403):
            raise RegistryError(f"registry {self.host} refused access to {path} ({resp.status_code}); "
                                "log in on the manager with `docker login`")
        return resp

    def _bearer(self, challenge: str) -> None:
        fields = dict(part.split("=", 1) for part in challenge[len("Bearer "):].split(","))
        params = {k: v.strip('"') for k, v in fields.items() if k in ("service", "scope")}
        headers = {}
        basic = _basic_auth(self.host)
        if basic:
            headers["Authorization"] = f"Basic {basic}"
        try:
            token = requests.get(fields["realm"].strip('"'), params=params, headers=headers,
                                 timeout=self.timeout).json()
        except (requests.RequestException, ValueError, KeyError):
            raise RegistryError(f"registry {self.host}: token service did not answer") from None
        self._session.headers["Authorization"] = f"Bearer {token.get('token') or token.get('access_token')}"

    def digest(self, repo: str, tag: str) -> str | None:
        """The manifest digest the registry serves for a tag now."""
        resp = self._get(f"{repo}/manifests/{tag}", MANIFEST_TYPES, method="HEAD")
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None

    def has_tag(self, repo: str, tag: str) -> bool:
        return self._get(f"{repo}/manifests/{tag}", MANIFEST_TYPES, method="HEAD").status_code == 200

    def _manifest(self, repo: str, ref: str) -> dict[str, Any] | None:
        resp = self._get(f"{repo}/manifests/{ref}", MANIFEST_TYPES)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryError(f"registry {self.host}: {repo}:{ref} answered {resp.status_code}")
        manifest: dict[str, Any] = resp.json()
        if "manifests" in manifest:   # an index: every platform was built from the same inputs
            first = manifest["manifests"][0]["digest"]
            return self._manifest(repo, first)
        return manifest

    def find_fingerprint(self, repo: str, fingerprint: str) -> str | None:
        """The full image reference built from `fingerprint`, if the registry holds it."""
        manifest = self._manifest(repo, FINGERPRINT_TAG.format(fingerprint))
        if manifest is None:
            return None
        blob = self._get(f"{repo}/blobs/{manifest['config']['digest']}")
        if blob.status_code != 200:
            return None
        labels = ((blob.json().get("config") or {}).get("Labels")) or {}
        tag = labels.get(SOURCE_TAG_LABEL)
        if not tag or not self.has_tag(repo, tag):
            return None
        return f"{self.host}/{repo}:{tag}"

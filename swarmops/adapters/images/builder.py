"""Build and push images with docker-py, reading every stream: a push does not raise by itself
when the stream carries an error."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
import urllib3

from swarmops.errors import BuildError, EngineError, RegistryError

log = logging.getLogger("swarmops.build")


def _drain(stream: Iterable[dict[str, Any]], what: str, on_line: logging.Logger) -> str:
    """Read a build or push stream; raise with Docker's own error message. Returns the digest a push
    reports (its `aux` record), or ''."""
    digest = ""
    for chunk in stream:
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
        if "errorDetail" in chunk or "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
            raise BuildError(f"{what}: {message}")
        text = chunk.get("stream")
        if isinstance(text, str) and text.strip():
            on_line.info("%s", text.rstrip())
    return digest


class ImageBuilder:
    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def build(self, context: Path, dockerfile: Path, tag: str, args: Mapping[str, str],
              target: str | None, labels: Mapping[str, str]) -> None:
        try:
            stream = self.api.build(
                path=str(context), dockerfile=str(dockerfile), tag=tag, buildargs=dict(args),
                target=target, labels=dict(labels), rm=True, forcerm=True, pull=False, decode=True)
            _drain(stream, f"build of {tag} failed", log)
        except docker.errors.APIError as e:
            raise BuildError(f"build of {tag} failed: {e.explanation or e}") from e
        except docker.errors.DockerException as e:
            raise BuildError(f"build of {tag} failed: {e}") from e
        except (OSError, urllib3.exceptions.HTTPError) as e:   # the Engine went away: not the commit's fault
            raise EngineError(f"build of {tag} stopped: the Docker engine went away ({e}); it is retried") from e

    def tag(self, image: str, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        try:
            self.api.tag(image, repo, tag, force=True)
        except docker.errors.APIError as e:
            raise BuildError(f"tagging {image} as {ref} failed: {e.explanation or e}") from e
        except (docker.errors.DockerException, OSError, urllib3.exceptions.HTTPError) as e:
            raise EngineError(f"tagging {image} stopped: the Docker engine went away ({e}); it is retried") from e

    def push(self, ref: str) -> str:
        """Push; returns the manifest digest the registry took."""
        repo, _, tag = ref.rpartition(":")
        try:
            return _drain(self.api.push(repo, tag=tag, stream=True, decode=True), f"push of {ref} failed", log)
        except BuildError as e:
            raise RegistryError(str(e)) from e
        except docker.errors.DockerException as e:
            raise RegistryError(f"push of {ref} failed: {e}") from e
        except (OSError, urllib3.exceptions.HTTPError) as e:   # the local Engine went away mid-push
            raise EngineError(f"push of {ref} stopped: the Docker engine went away ({e}); it is retried") from e

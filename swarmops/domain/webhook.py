"""Push webhooks from GitHub, Gitea/Forgejo and GitLab: signatures checked in constant time, the
push parsed into (repo URLs, branch, commit), repo URLs normalised so ssh and https forms match."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmops.errors import WebhookError

MAX_BODY = 1024 * 1024
DRAIN_LIMIT = 32 * MAX_BODY      # GitHub's own cap on a delivery is 25 MB
PROVIDERS = ("github", "gitea", "gitlab")


@dataclass(frozen=True)
class Push:
    provider: str
    delivery: str
    repo_urls: tuple[str, ...]
    branch: str | None        # None for a tag push or a deleted ref
    commit: str
    tag: str | None = None    # the tag a tag push made or moved (None when deleted)


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower(), "")


def verify(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """True when the delivery carries the right signature for `secret` (compared in constant time)."""
    if provider == "gitlab":
        return hmac.compare_digest(_header(headers, "X-Gitlab-Token").encode(), secret)
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if provider == "github":
        return hmac.compare_digest(_header(headers, "X-Hub-Signature-256").encode(), f"sha256={digest}".encode())
    given = _header(headers, "X-Gitea-Signature") or _header(headers, "X-Forgejo-Signature")
    return hmac.compare_digest(given.encode(), digest.encode())


def event_kind(provider: str, headers: Mapping[str, str]) -> str:
    name = {"github": "X-GitHub-Event", "gitea": "X-Gitea-Event", "gitlab": "X-Gitlab-Event"}[provider]
    kind = _header(headers, name) or _header(headers, "X-Forgejo-Event")
    return kind.lower().replace(" hook", "")


def delivery_id(provider: str, headers: Mapping[str, str], body: bytes) -> str:
    name = {"github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "gitlab": "X-Gitlab-Event-UUID"}[provider]
    return _header(headers, name) or _header(headers, "X-Forgejo-Delivery") or hashlib.sha256(body).hexdigest()


def parse_push(provider: str, headers: Mapping[str, str], body: bytes) -> Push:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("the body is not JSON") from None
    except RecursionError:
        raise WebhookError("the body nests too deeply to be a push event") from None
    if not isinstance(data, dict):
        raise WebhookError("the body is not a JSON object")
    repo = data.get("repository") or data.get("project") or {}
    if not isinstance(repo, dict):
        raise WebhookError("the push names no repository")
    urls = tuple(str(repo[k]) for k in ("clone_url", "ssh_url", "git_url", "html_url", "git_http_url",
                                        "git_ssh_url", "url", "web_url") if isinstance(repo.get(k), str))
    if not urls:
        raise WebhookError("the push names no repository URL")
    ref = str(data.get("ref", ""))
    after = str(data.get("after") or data.get("checkout_sha") or "")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    if set(after) == {"0"}:
        branch = tag = None    # the ref was deleted: nothing to deploy
    return Push(provider, delivery_id(provider, headers, body), urls, branch, after, tag)


_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$")


def normalise_url(url: str) -> str:
    """host/path of a git URL, lowercased, without scheme, user, port, `.git` or trailing slash, so that
    git@host:org/app.git, ssh://git@host:22/org/app and https://host/org/app.git compare equal."""
    text = url.strip()
    m = _SCP.match(text)
    if m and "://" not in text:
        host, path = m.group("host"), m.group("path")
    else:
        rest = text.split("://", 1)[-1]
        hostport, _, path = rest.partition("/")
        host = hostport.rsplit("@", 1)[-1].split(":", 1)[0]
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"{host.lower()}/{path.lower()}"

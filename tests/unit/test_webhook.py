import hashlib
import hmac
import json

import pytest

from swarmops.config.models import AppConfig
from swarmops.domain.webhook import normalise_url, parse_push, verify
from swarmops.errors import WebhookError
from swarmops.http.webhooks import follows

SECRET = b"s3cret"
BODY = json.dumps({"ref": "refs/heads/main", "after": "a" * 40,
                   "repository": {"clone_url": "https://git.example.go.id/apps/portal.git",
                                  "ssh_url": "git@git.example.go.id:apps/portal.git"}}).encode()


def sig(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def test_github_signature_is_checked() -> None:
    assert verify("github", {"X-Hub-Signature-256": f"sha256={sig(BODY)}"}, BODY, SECRET)
    assert not verify("github", {"X-Hub-Signature-256": f"sha256={sig(BODY + b' ')}"}, BODY, SECRET)
    assert not verify("github", {}, BODY, SECRET)


def test_gitea_and_forgejo_signatures_are_checked() -> None:
    assert verify("gitea", {"X-Gitea-Signature": sig(BODY)}, BODY, SECRET)
    assert verify("gitea", {"X-Forgejo-Signature": sig(BODY)}, BODY, SECRET)
    assert not verify("gitea", {"X-Gitea-Signature": "0" * 64}, BODY, SECRET)


def test_gitlab_token_is_checked() -> None:
    assert verify("gitlab", {"X-Gitlab-Token": "s3cret"}, BODY, SECRET)
    assert not verify("gitlab", {"X-Gitlab-Token": "wrong"}, BODY, SECRET)


def test_a_push_is_parsed_into_urls_branch_and_commit() -> None:
    push = parse_push("github", {"X-GitHub-Delivery": "d1"}, BODY)
    assert (push.branch, push.commit, push.delivery) == ("main", "a" * 40, "d1")
    assert "git@git.example.go.id:apps/portal.git" in push.repo_urls


def test_tags_and_deleted_branches_name_no_branch() -> None:
    tag = json.dumps({"ref": "refs/tags/v1", "after": "b" * 40, "repository": {"clone_url": "https://h/x"}})
    deleted = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "repository": {"clone_url": "https://h/x"}})
    assert parse_push("gitea", {}, tag.encode()).branch is None
    assert parse_push("gitea", {}, deleted.encode()).branch is None


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"ref": "refs/heads/main"}'])
def test_malformed_pushes_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookError):
        parse_push("github", {}, body)


@pytest.mark.parametrize("url", ["git@git.example.go.id:apps/portal.git", "ssh://git@git.example.go.id:22/apps/portal",
                                 "https://git.example.go.id/apps/portal.git", "https://user:tok@git.example.go.id/apps/portal/",
                                 "HTTPS://Git.Example.go.id/Apps/Portal"])
def test_every_form_of_a_repo_url_normalises_the_same(url: str) -> None:
    assert normalise_url(url) == "git.example.go.id/apps/portal"


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_a_body_nested_too_deeply_is_refused(body: bytes) -> None:
    # was a RecursionError out of json.loads
    with pytest.raises(WebhookError, match="nests too deeply"):
        parse_push("github", {}, body)


def test_a_tag_push_moves_only_the_apps_following_matching_tags() -> None:
    tag = json.dumps({"ref": "refs/tags/v1.2.0", "after": "b" * 40, "repository": {"clone_url": "https://h/x"}})
    pushed = parse_push("gitlab", {}, tag.encode())
    assert (pushed.tag, pushed.branch) == ("v1.2.0", None)
    on_tags = AppConfig.model_validate({"name": "shop", "repo": "https://h/x", "tags": "v*"})
    on_main = AppConfig.model_validate({"name": "shop-staging", "repo": "https://h/x"})
    assert follows(on_tags, pushed) and not follows(on_main, pushed)
    assert not follows(AppConfig.model_validate({"name": "other", "repo": "https://h/x", "tags": "release-*"}), pushed)
    main = parse_push("github", {}, BODY)
    assert follows(on_main, main) and not follows(on_tags, main)   # a tags app ignores its branch's pushes
    deleted = json.dumps({"ref": "refs/tags/v1.3.0", "after": "0" * 40, "repository": {"clone_url": "https://h/x"}})
    assert not follows(on_tags, parse_push("gitea", {}, deleted.encode()))

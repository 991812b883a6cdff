"""`swarmops promote APP --from staging --to production` (issue 27, item 2): the target environment is moved
to the exact commit the source environment runs and has converged on, by pushing that commit to the branch
the target follows (a fast-forward, with swarmops' own git credentials), or as a new tag above the highest
of those it follows, then reconciled at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from swarmops.adapters.store import Deploy
from swarmops.config.models import AppConfig, Config
from swarmops.domain.decide import unchanged
from swarmops.domain.live import LiveStack
from swarmops.domain.refs import latest_tag, next_tag, promotable_tag
from swarmops.errors import PromotionError, SourceError
from swarmops.reconcile.ports import Source


class Deploys(Protocol):
    def deploy_of(self, app: str, commit: str) -> Deploy | None:
        """The latest successful deploy of `commit`."""
        ...


@dataclass(frozen=True)
class Promotion:
    source: AppConfig
    target: AppConfig
    commit: str
    ref: str | None   # what is pushed: the target's branch, or a new tag (refs/tags/...); None: it runs it already


def environment(config: Config, app: str, env: str) -> AppConfig:
    found = next((a for a in config.apps if a.group == app and a.environment == env), None)
    if found is None:
        envs = sorted(a.environment or "" for a in config.apps if a.group == app)
        raise PromotionError(f"{app} has no environment {env!r}" + (f" (it has {', '.join(envs)})" if envs else
                                                                   " (its entry declares no environments)"))
    return found


def plan_promotion(config: Config, store: Deploys, live: LiveStack, app: str, source_env: str,
                   target_env: str, target_refs: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
                   tag: str | None = None) -> Promotion:
    """What a promotion moves, or why it cannot (PromotionError): the source runs a commit it deployed
    successfully and still runs it as deployed. A target following tags gets a new tag, above its highest
    (`tag`, or that one's last number plus one), read from `target_refs`, the remote's tags (or what reads
    them, asked only once the source's checks have passed)."""
    source, target = environment(config, app, source_env), environment(config, app, target_env)
    if source.name == target.name or source.follows == target.follows:
        raise PromotionError(f"{app}: {source_env} and {target_env} follow the same {source.follows}; "
                             "a promotion moves the target's own branch or tags")
    commit = live.deployed_commit()
    if commit is None or not unchanged(live, commit):
        raise PromotionError(f"{source.name} runs no commit swarmops deployed as it is (status "
                             f"`swarmops status`); promote once it is synced")
    if store.deploy_of(source.name, commit) is None:
        raise PromotionError(f"{source.name} runs {commit[:12]}, but this swarmops' history has no successful "
                             "deploy of it; a commit that failed there is not promoted")
    if target.tags is None:
        if tag is not None:
            raise PromotionError(f"{target.name} follows {target.follows}, not tags: promote it without --tag")
        return Promotion(source, target, commit, target.branch)
    refs = target_refs() if callable(target_refs) else target_refs
    return Promotion(source, target, commit, _new_tag(target, dict(refs or {}), commit, tag))


def _new_tag(target: AppConfig, refs: dict[str, str], commit: str, tag: str | None) -> str | None:
    pattern = str(target.tags)
    current = latest_tag(refs, pattern)
    if current is not None and current[1] == commit and tag is None:
        return None
    name = tag or next_tag(refs, pattern)
    if name is None:
        raise PromotionError(f"{target.name} follows tags {pattern} and none is numbered to count from; name the "
                             "first with --tag (for example --tag v1.0.0)")
    why = promotable_tag(refs, pattern, name)
    if why is not None:
        raise PromotionError(f"{target.name}: {why}; name another with --tag")
    return f"refs/tags/{name}"


def shown(ref: str) -> str:
    return f"tag {ref.removeprefix('refs/tags/')}" if ref.startswith("refs/tags/") else f"branch {ref}"


def push_promotion(source: Source, p: Promotion) -> str:
    if p.ref is None:
        return f"{p.target.name}: runs {p.commit[:12]} already, the commit of its highest tag; nothing to move"
    try:
        source.push(p.commit, p.ref)
    except SourceError as e:
        raise PromotionError(f"cannot move {shown(p.ref)} to {p.commit[:12]}: {e}; if the branch has "
                             "commits of its own, merge them into the staging branch first") from e
    verb = "made at" if p.ref.startswith("refs/tags/") else "moved to"
    return f"{p.target.name}: {shown(p.ref)} {verb} {p.commit[:12]}, which {p.source.name} runs"


def promote(config: Config, store: Deploys, read_app: Callable[[str], LiveStack],
            sources: Callable[[AppConfig], Source], app: str, source_env: str, target_env: str,
            tag: str | None = None) -> tuple[Promotion, str]:
    """Plan and push a promotion (the CLI's and the API's): the target's reconcile is the caller's to start."""
    source, target = environment(config, app, source_env), environment(config, app, target_env)
    planned = plan_promotion(config, store, read_app(source.name), app, source_env, target_env,
                             lambda: sources(target).refs(), tag)
    return planned, push_promotion(sources(source), planned)

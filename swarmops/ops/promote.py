"""`swarmops promote APP --from staging --to production` (issue 27, item 2): the target environment is moved
to the exact commit the source environment runs and has converged on, by pushing that commit to the branch
the target follows (a fast-forward, with swarmops' own git credentials), then reconciled at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from swarmops.adapters.store import Deploy
from swarmops.config.models import AppConfig, Config
from swarmops.domain.decide import unchanged
from swarmops.domain.live import LiveStack
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


def environment(config: Config, app: str, env: str) -> AppConfig:
    found = next((a for a in config.apps if a.group == app and a.environment == env), None)
    if found is None:
        envs = sorted(a.environment or "" for a in config.apps if a.group == app)
        raise PromotionError(f"{app} has no environment {env!r}" + (f" (it has {', '.join(envs)})" if envs else
                                                                   " (its entry declares no environments)"))
    return found


def plan_promotion(config: Config, store: Deploys, live: LiveStack, app: str, source_env: str,
                   target_env: str) -> Promotion:
    """What a promotion moves, or why it cannot (PromotionError): the source runs a commit it deployed
    successfully and still runs it as deployed."""
    source, target = environment(config, app, source_env), environment(config, app, target_env)
    if source.name == target.name or source.branch == target.branch:
        raise PromotionError(f"{app}: {source_env} and {target_env} follow the same branch {source.branch}; "
                             "a promotion moves the target's own branch")
    commit = live.deployed_commit()
    if commit is None or not unchanged(live, commit):
        raise PromotionError(f"{source.name} runs no commit swarmops deployed as it is (status "
                             f"`swarmops status`); promote once it is synced")
    if store.deploy_of(source.name, commit) is None:
        raise PromotionError(f"{source.name} runs {commit[:12]}, but this swarmops' history has no successful "
                             "deploy of it; a commit that failed there is not promoted")
    return Promotion(source, target, commit)


def push_promotion(source: Source, p: Promotion) -> str:
    try:
        source.push(p.commit, p.target.branch)
    except SourceError as e:
        raise PromotionError(f"cannot move branch {p.target.branch} to {p.commit[:12]}: {e}; if the branch has "
                             "commits of its own, merge them into the staging branch first") from e
    return f"{p.target.name}: branch {p.target.branch} moved to {p.commit[:12]}, which {p.source.name} runs"

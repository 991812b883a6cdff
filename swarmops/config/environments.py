"""The environments of one app (issue 27, item 1): each declared under an apps.d entry's `environments:`
and expanded at load into an app of its own (its stack, branch or tags, values over the app's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from swarmops.config.backup import BackupSettings
from swarmops.config.fields import Replicas, Strict, TagPattern, Variables, stack_name
from swarmops.config.policy import PolicySettings

if TYPE_CHECKING:
    from swarmops.config.models import AppConfig


class EnvironmentSettings(Strict):
    """One environment of an app (issue 27): a stack of its own, from the same repo, following its own
    branch, with its own values over the app's. It is an app of its own from then on (named by its stack),
    whose secrets are read from `secrets/<env>/` and bound to that name."""

    branch: str | None = None                  # default: the app's
    tags: TagPattern | None = None             # follow the highest tag matching this (v*) in place of a branch
    name: str | None = None                    # the stack name; default <app>-<env>
    variables: Variables = Field(default_factory=dict)   # over the app's
    replicas: Replicas = Field(default_factory=dict)    # over the app's and the stack file's
    role: str | None = None
    allowed_roles: list[str] | None = None
    policy: PolicySettings | None = None
    url: str | None = Field(None, pattern=r"^https?://\S+$")
    backup: BackupSettings | None = None       # each environment its own: they hold different data
    # deploy only commits the app's staging environment has run successfully (`swarmops promote` moves them)
    require_staging: bool = False

    @field_validator("name")
    @classmethod
    def _stack_name(cls, v: str | None) -> str | None:
        return None if v is None else stack_name(v)

    @model_validator(mode="after")
    def _one_ref(self) -> EnvironmentSettings:
        if self.branch is not None and self.tags is not None:
            raise ValueError("an environment follows a branch or tags, not both: keep one of branch: and tags:")
        return self


def expand_environments(app: AppConfig) -> list[AppConfig]:
    """The app itself, or one app per environment it declares (ValueError naming the environment's key when
    one is not valid)."""
    if not app.environments:
        return [app]
    out: list[AppConfig] = []
    for env, settings in app.environments.items():
        name = settings.name or f"{app.name}-{env}"
        try:
            stack_name(name)
        except ValueError as e:
            raise ValueError(f"environment {env}: name: {e}") from e
        # model_copy, not a dump validated again: that would mark every policy key as set (over the config's
        # own policy) and rewrite durations; each value here was validated where it was written
        out.append(app.model_copy(update={
            "name": name, "branch": settings.branch or app.branch,
            "tags": settings.tags if settings.tags or settings.branch else app.tags,
            "variables": {**app.variables, **settings.variables}, "replicas": {**app.replicas, **settings.replicas},
            "role": settings.role or app.role,
            "allowed_roles": app.allowed_roles if settings.allowed_roles is None else settings.allowed_roles,
            "policy": settings.policy or app.policy, "url": settings.url or app.url, "backup": settings.backup,
            "environments": {}, "environment": env, "group": app.name,
            "requires": _staging_of(app, env) if settings.require_staging else None}))
        if out[-1].name in [a.name for a in out[:-1]]:
            raise ValueError(f"environment {env}: its stack name {out[-1].name!r} is another environment's too; "
                             "give each environment a name of its own")
    return out


def _staging_of(app: AppConfig, env: str) -> str:
    staging = app.environments.get("staging")
    if staging is None or env == "staging":
        raise ValueError(f"environment {env}: require_staging names the app's staging environment, and "
                         f"{'it is that one' if env == 'staging' else 'the app has none'}")
    return staging.name or f"{app.name}-staging"

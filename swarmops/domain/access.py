"""Who may do what to which app (issue 27, item 4), as Argo CD's RBAC does it: a grant is a set of actions on
app patterns; a person gets the grants of the config's `access:` rules that name one of their groups (from
the office's sign-in), a token the grants it was made with. Pure: the HTTP edge asks it, once per action."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from swarmops.config.models import AccessRule, AppConfig

Action = Literal["read", "sync", "pause", "resume", "rollback", "promote"]
ACTIONS: tuple[Action, ...] = ("read", "sync", "pause", "resume", "rollback", "promote")


@dataclass(frozen=True)
class Grant:
    apps: tuple[str, ...]      # patterns over an app's names: its stack name, and APP/ENV for an environment
    may: tuple[str, ...]       # actions, or "*"


EVERYTHING = Grant(("*",), ("*",))
READ_ALL = Grant(("*",), ("read",))


@dataclass(frozen=True)
class Principal:
    """Who asks: `token:NAME` or `user:LOGIN`, with the groups the sign-in gave and a token's own grants."""

    name: str
    groups: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()


def names_of(app: AppConfig) -> tuple[str, ...]:
    """What a pattern may match of an app: its stack name, and APP/ENV for an environment."""
    if app.group and app.environment:
        return (app.name, f"{app.group}/{app.environment}")
    return (app.name,)


def grants_of(who: Principal, rules: Sequence[AccessRule]) -> tuple[Grant, ...]:
    groups = set(who.groups)
    return who.grants + tuple(Grant(tuple(r.apps), tuple(r.may)) for r in rules if groups & set(r.groups))


def allowed(who: Principal, rules: Sequence[AccessRule], action: Action, app: AppConfig) -> bool:
    """Whether `who` may do `action` to `app`; any grant on an app lets its holder read it too."""
    names = names_of(app)
    return any(_covers(g, action, names) for g in grants_of(who, rules))


def _covers(grant: Grant, action: Action, names: Iterable[str]) -> bool:
    acts = "*" in grant.may or action in grant.may or action == "read"
    return acts and any(fnmatchcase(n, p) for p in grant.apps for n in names)


def refusal(who: Principal, action: Action, app: AppConfig) -> str:
    """The sentence a refused action answers with (403)."""
    shown = names_of(app)[-1]
    return (f"{who.name} may not {action} {shown}: no grant of the config's access rules or of the token "
            f"covers it; ask the ops team for one")

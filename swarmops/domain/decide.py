"""The reconcile decision: a pure function of what git, the Swarm and the state store say about one app.

`decide(facts)` answers either with a `Decision` (what to do, with everything execution needs) or with
a `Need` (the facts gathered so far cannot decide: read the full live state, or read the commit from git
and the registry). The gatherer fetches what is needed and asks again; `--dry-run` prints the final
decision; execution carries it out and decides nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose.model import Stack
from swarmops.domain.compose.schema import Version
from swarmops.domain.convergence import recovering
from swarmops.domain.drift import Drift, find_drift
from swarmops.domain.hooks import HookStep, plan_hooks
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Migrated, RollbackGuard, crossing, guard_rollback
from swarmops.domain.plan import BuildStep, Plan, make_plan
from swarmops.domain.policy import PolicyContext, check
from swarmops.domain.render import Rendered, RenderRequest, render_stack
from swarmops.domain.ssolabels import SsoKey
from swarmops.domain.stackfile import BuildSpec

FINGERPRINT_TAG = "fp-{}"
Trigger = str   # poll, retry, manual, webhook, api, self-heal, rollback


@dataclass(frozen=True)
class CommitMeta:
    author: str
    title: str


@dataclass(frozen=True)
class ImageFacts:
    """What the registry and swarmops' records say of the image one service's build inputs make."""

    service: str
    fingerprint: str
    found: str | None = None     # the image built from these inputs (registry ref, by its source tag)
    current: str | None = None   # the digest the registry serves for it now
    trusted: str | None = None   # the digest swarmops pushed (its ledger), or the one the running service has


@dataclass(frozen=True)
class Candidate:
    """One commit as read from git and the registry: everything its render needs, nothing decided."""

    commit: str
    meta: CommitMeta
    stack: Stack
    specs: Mapping[str, BuildSpec]
    images: tuple[ImageFacts, ...]
    file_digests: Mapping[str, str]
    secret_names: Mapping[str, str]              # stack key -> versioned Swarm secret name
    deploy_dir: str
    policy: PolicyContext
    cli_versions: tuple[Version, ...]
    notes: tuple[str, ...] = ()                  # said while reading (e.g. a secret bound to no app)
    secret_values: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class GoodDeploy:
    commit: str
    stack_file: str
    on_disk: bool   # the rendered stack is still in this manager's state_dir
    deploy_id: int = 0   # its history entry (0: not in the history)


@dataclass(frozen=True)
class Pending:
    """A deploy a previous process left unfinished (interrupted, or orphaned by a process that is gone)."""

    deploy_id: int
    commit: str
    started: float
    error: str
    orphaned: tuple[int, ...] = ()   # deploys still marked running whose process is gone: mark them first


@dataclass(frozen=True)
class Stored:
    """What the state store remembers of the app."""

    paused: bool = False
    failed_commit: str = ""
    pending: Pending | None = None
    applied: Mapping[str, Any] = field(default_factory=dict)
    good: tuple[GoodDeploy, ...] = ()   # successful deploys, newest first
    migrations: tuple[Migrated, ...] = ()   # migrations that succeeded, in any deploy, newest first
    proven: frozenset[str] = frozenset()    # commits the app's required staging deployed successfully
    failed_kind: str = ""                   # why failed_commit failed (the error's class)


PROMOTION_ERROR = "PromotionError"   # a commit the required staging has not run successfully


@dataclass(frozen=True)
class RollbackTarget:
    commit: str
    stack_file: str
    text: str | None = None   # the stack rendered again from git, written first (its file was gone)
    files: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)   # the repo files it references


@dataclass(frozen=True)
class Facts:
    config: Config
    app: AppConfig
    trigger: Trigger
    head: str
    live: LiveStack
    live_full: bool = False          # a fresh full read (tasks, networks), not the shared snapshot
    stored: Stored = field(default_factory=Stored)
    force: bool = False              # `sync APP`: make the cluster match git now
    previous: GoodDeploy | None = None   # the live commit's rendered stack in this manager's state_dir
    candidate: Candidate | None = None
    rollback_read: bool = False      # the previous commit was rendered again (or could not be)
    rollback_render: RollbackTarget | None = None


# ---- what the gatherer is asked for

@dataclass(frozen=True)
class Need:
    what: Literal["live", "candidate", "rollback"]
    commit: str = ""


# ---- the decisions

@dataclass(frozen=True)
class Skip:
    reason: str
    commit: str | None = None
    kind: Literal["skip"] = "skip"


@dataclass(frozen=True)
class InSync:
    commit: str
    message: str = "in sync"
    drift: tuple[Drift, ...] = ()    # found and left (self_heal off)
    plan: Plan | None = None
    failed: bool = False             # what runs is a commit whose deploy failed without a rollback: still Failed
    kind: Literal["in-sync"] = "in-sync"


@dataclass(frozen=True)
class Refuse:
    """The commit cannot be deployed as it is (policy): remembered, so it is not checked on every poll."""

    commit: str
    message: str
    error_kind: str = "PolicyError"
    kind: Literal["refuse"] = "refuse"


@dataclass(frozen=True)
class Resolve:
    """Finish an interrupted deploy from the live state: watch it, and roll back if it fails."""

    pending: Pending
    deployed: bool                   # the stack of that deploy reached the Swarm
    watch: tuple[str, ...] = ()
    rollback: RollbackTarget | None = None
    guard: RollbackGuard = field(default_factory=RollbackGuard)   # its migrations: no down hook at hand now
    kind: Literal["resolve"] = "resolve"


@dataclass(frozen=True)
class DeployWork:
    commit: str
    meta: CommitMeta
    trigger: Trigger
    rendered: Rendered
    deploy_dir: str
    plan: Plan
    builds: tuple[BuildStep, ...]
    specs: Mapping[str, BuildSpec]
    secrets: tuple[str, ...]         # Swarm secret names to create (values stay in the candidate's memory)
    watch: tuple[str, ...]
    rollback: RollbackTarget | None
    before: tuple[str, ...] = ()     # the services running before: watched again after a rollback
    notes: tuple[str, ...] = ()      # policy warnings and what reading the commit found
    hooks: tuple[HookStep, ...] = ()  # in the stack file's order, pre- and post-deploy
    guard: RollbackGuard = field(default_factory=RollbackGuard)   # what a rollback must respect (migrations)
    # why the update waits for Swarm to bring replicas back, from the live read decided on (None: it need not);
    # the executor asks the Swarm again only then, or when a build or a hook ran in between
    recovering: str | None = None


@dataclass(frozen=True)
class Deploy:
    work: DeployWork
    heal: tuple[Drift, ...] = ()     # the drift this deploy heals (the commit is unchanged)
    kind: Literal["deploy"] = "deploy"


@dataclass(frozen=True)
class RollBack:
    """An operator's rollback to an earlier good deploy; auto-sync is suspended."""

    target: GoodDeploy
    author: str
    message: str
    watch: tuple[str, ...]
    kind: Literal["rollback"] = "rollback"


Decision = Skip | InSync | Refuse | Resolve | Deploy | RollBack


def decide(f: Facts) -> Decision | Need:
    if f.stored.paused and f.trigger in ("poll", "retry"):
        return Skip("auto-sync is suspended; `swarmops resume` to sync again")
    if f.stored.pending is not None:
        return _resolve(f, f.stored.pending)
    if unchanged(f.live, f.head):
        return _check_drift(f)
    if not f.live_full:
        return Need("live")
    proven = not f.app.requires or f.head in f.stored.proven
    # a commit refused only for want of staging's run is asked again: staging may have run it since
    waited = f.stored.failed_kind == PROMOTION_ERROR and proven
    if not f.force and f.trigger == "poll" and f.stored.failed_commit == f.head and not waited:
        return Skip(f"commit {f.head[:12]} failed before; push a new commit or run `swarmops sync {f.app.name}`",
                    f.head)
    if not proven:
        return Refuse(f.head, f"{f.app.name} deploys only commits {f.app.requires} has run successfully "
                              f"(require_staging), and {f.head[:12]} has not: let it deploy there first; `swarmops "
                              f"promote {f.app.group} --from staging --to {f.app.environment}` moves what staging "
                              "runs", PROMOTION_ERROR)
    return _deploy(f, ())


def unchanged(live: LiveStack, head: str) -> bool:
    """What runs is `head`, deployed by swarmops (every service carries its spec hash)."""
    return live.deployed_commit() == head and all(s.spec_hash for s in live.services.values())


def _check_drift(f: Facts) -> Decision | Need:
    drift = tuple(find_drift(f.live, dict(f.stored.applied)))
    if not drift:
        return InSync(f.head, failed=f.stored.failed_commit == f.head)
    if not f.live_full:   # rare: a fresh full read, so that drift names networks and heals with tasks in view
        return Need("live")
    if not f.app.self_heal and not f.force:   # an operator's `sync` heals whatever self_heal says
        text = "; ".join(str(d) for d in drift)
        return InSync(f.head, f"drift (self_heal is off): {text}", drift)
    return _deploy(f, drift)


def _deploy(f: Facts, heal: tuple[Drift, ...]) -> Decision | Need:
    if f.candidate is None:
        return Need("candidate", f.head)
    c = f.candidate
    rendered, builds = render_candidate(f.config, f.app, c)
    found = check(rendered.policy_doc, c.policy, where=lambda path: c.stack.where(*path))
    denied = [v for v in found if v.severity == "deny"]
    if denied:
        return Refuse(c.commit, f"policy {c.policy.profile} refuses app {f.app.name}, file {f.app.stack}: "
                      + "; ".join(str(v) for v in denied))
    plan = make_plan(f.app.name, c.commit, rendered, f.live, builds)
    if not heal and not plan.deploy:
        return InSync(c.commit, plan.summary(), plan=plan)
    rollback = pick_rollback(f.stored.good, c.commit, f.previous)
    if rollback is None and (previous := f.live.deployed_commit()) and previous != c.commit:
        if not f.rollback_read:
            return Need("rollback", previous)
        rollback = f.rollback_render
    watch = tuple(d.service for d in heal if d.kind != "unmanaged") if heal else plan.restarts
    trigger = ("manual" if f.force else "self-heal") if heal else f.trigger
    hooks = plan_hooks(rendered.hooks, plan, f.live, bool(heal), retry=f.stored.failed_commit == c.commit)
    ignored = tuple(f"hook {h.name} leaves out {', '.join(h.ignored)} (it runs once as a job)"
                    for h in rendered.hooks.values() if h.ignored)
    return Deploy(DeployWork(
        commit=c.commit, meta=c.meta, trigger=trigger, rendered=rendered, deploy_dir=c.deploy_dir, plan=plan,
        builds=builds, specs=c.specs, secrets=tuple(sorted(set(c.secret_names.values()))), watch=watch,
        rollback=rollback, before=tuple(f.live.services),
        notes=c.notes + tuple(f"policy warning: {v}" for v in found if v.severity != "deny") + ignored,
        hooks=hooks, guard=guard_rollback(target_deploy(f.stored.good, rollback), f.stored.migrations, hooks,
                                          rendered.hooks), recovering=recovering(f.live, watch, None)), heal)


def target_deploy(good: tuple[GoodDeploy, ...], rollback: RollbackTarget | None) -> int | None:
    """The history id of the rollback target's last good deploy; 0 when the history lacks it."""
    if rollback is None:
        return None
    return next((g.deploy_id for g in good if g.commit == rollback.commit), 0)


def _resolve(f: Facts, p: Pending) -> Resolve:
    if f.live.deployed_commit() != p.commit:
        return Resolve(p, deployed=False)
    rollback = pick_rollback(f.stored.good, p.commit, None)
    return Resolve(p, deployed=True, watch=tuple(f.live.services), rollback=rollback,
                   guard=guard_rollback(target_deploy(f.stored.good, rollback), f.stored.migrations, (), {}))


def pick_rollback(good: tuple[GoodDeploy, ...], failed: str, previous: GoodDeploy | None) -> RollbackTarget | None:
    """The last good deploy other than the failing commit, if its rendered stack is on disk; else what ran
    before this deploy, if its rendered stack is."""
    last = next((g for g in good if g.commit != failed), None)
    for g in (last, previous):
        if g is not None and g.on_disk and g.commit != failed:
            return RollbackTarget(g.commit, g.stack_file)
    return None


def decide_rollback(good: tuple[GoodDeploy, ...], authors: Mapping[str, tuple[str, str]], live: LiveStack,
                    requested: str | None, migrations: Sequence[Migrated] = (),
                    across_migrations: bool = False) -> RollBack | str:
    """The target of `swarmops rollback [--to C]`, or why there is none. A target older than a migration
    that succeeded is refused unless the operator says they know (`--across-migrations`): the old code may
    not fit the migrated schema, as the automatic rollback knows too."""
    current = live.deployed_commit()
    if requested:
        target = next((g for g in good if g.commit.startswith(requested)), None)
        if target is None:
            return (f"no successful deploy of commit {requested} in the history of {live.app}; "
                    f"`swarmops history {live.app}` lists the rollback targets")
    else:
        target = next((g for g in good if g.commit != current), None)
        if target is None:
            return f"{live.app} has no earlier good deploy to roll back to"
    if not target.on_disk:
        return f"the rendered stack of {target.commit[:12]} is gone from {target.stack_file}"
    crossed = guard_rollback(target.deploy_id, migrations, (), {}).crossed
    if crossed is not None and not across_migrations:
        return (f"{crossing(crossed.commit, crossed.snapshot)}, or roll {live.app} back to {target.commit[:12]} "
                "with --across-migrations if its code fits the migrated schema")
    author, message = authors.get(target.commit, ("", ""))
    return RollBack(target, author, message, tuple(live.services))


def choose_image(facts: ImageFacts, registry: str, repo: str, commit: str) -> tuple[str, BuildStep | None]:
    """The image one service runs: the one built from its inputs, pinned to the digest swarmops pushed
    (or the running service was deployed with); otherwise a build, with the reason."""
    tag_ref = f"{registry}/{repo}:{commit[:12]}"
    alias = f"{registry}/{repo}:{FINGERPRINT_TAG.format(facts.fingerprint)}"

    def build(why: str, replaced: str = "") -> tuple[str, BuildStep]:
        return tag_ref, BuildStep(facts.service, tag_ref, facts.fingerprint, why, replaced, alias)
    if facts.found is None:
        return build("no image with these build inputs in the registry")
    if facts.trusted is None:
        return build(f"no record of the image swarmops pushed for {facts.found}: built again")
    if facts.current != facts.trusted:
        return build(f"{facts.found} in the registry is not the image swarmops pushed (registry: {facts.current}, "
                     f"pushed: {facts.trusted}): replaced outside swarmops; built again, not deployed",
                     str(facts.current))
    return f"{facts.found}@{facts.current}", None


def render_candidate(config: Config, app: AppConfig, c: Candidate) -> tuple[Rendered, tuple[BuildStep, ...]]:
    images: dict[str, str] = {}
    builds: list[BuildStep] = []
    for facts in c.images:
        images[facts.service], step = choose_image(facts, config.registry, f"{app.name}/{facts.service}", c.commit)
        if step is not None:
            builds.append(step)
    rendered = render_stack(c.stack, RenderRequest(
        app=app.name, commit=c.commit, role=app.role, allowed_roles=app.roles(), role_label=config.role_label,
        images=images, fingerprints={i.service: i.fingerprint for i in c.images}, file_digests=dict(c.file_digests),
        deploy_dir=c.deploy_dir, secret_names=dict(c.secret_names), cli_versions=c.cli_versions,
        sso=SsoKey(config.sso.middleware, config.sso.public_key or "")))
    return rendered, tuple(builds)


def describe(d: Decision) -> str:
    """One line for the operator: what this decision does."""
    match d:
        case Skip():
            return d.reason
        case InSync():
            return d.message
        case Refuse():
            return d.message
        case Resolve():
            return (f"resolve interrupted deploy {d.pending.deploy_id} of {d.pending.commit[:12]}: "
                    + ("watch it converge, roll back if it fails" if d.deployed else "it never reached the Swarm"))
        case Deploy() if d.heal:
            return "heal drift: " + "; ".join(str(x) for x in d.heal)
        case Deploy():
            return d.work.plan.summary() + _hooks_summary(d.work.hooks)
        case RollBack():
            return f"roll back to {d.target.commit[:12]} and suspend auto-sync"
    raise AssertionError(d)


def _hooks_summary(steps: tuple[HookStep, ...]) -> str:
    if not steps:
        return ""
    return "; hooks: " + ", ".join(f"{s.hook.kind} {s.hook.name} {'runs' if s.run else 'skipped'}"
                                   + (f" (snapshot of {s.hook.migrates} first)" if s.run and s.hook.migrates else "")
                                   for s in steps)


def to_dict(d: Decision) -> dict[str, Any]:
    """The decision as JSON for `--dry-run --json` (never a secret's value)."""
    out: dict[str, Any] = {"kind": d.kind, "summary": describe(d)}
    match d:
        case Deploy():
            w = d.work
            out |= {"commit": w.commit, "trigger": w.trigger, "plan": w.plan.to_dict(), "watch": list(w.watch),
                    "secrets": list(w.secrets), "deploy_dir": w.deploy_dir, "heal": [str(x) for x in d.heal],
                    "rollback": w.rollback.commit if w.rollback else None,
                    "hooks": [{"name": s.hook.name, "kind": s.hook.kind, "run": s.run, "why": s.why,
                               "timeout": s.hook.timeout, "image": s.hook.image, "spec_hash": s.hook.spec_hash,
                               "ignored": list(s.hook.ignored), "job": s.hook.job, "migrates": s.hook.migrates,
                               "down": s.hook.down} for s in w.hooks],
                    "rollback_crosses": w.guard.crossed.commit if w.guard.crossed else None}
        case Resolve():
            out |= {"deploy_id": d.pending.deploy_id, "commit": d.pending.commit, "deployed": d.deployed,
                    "rollback": d.rollback.commit if d.rollback else None}
        case InSync():
            out |= {"commit": d.commit, "drift": [str(x) for x in d.drift]}
        case Skip() | Refuse():
            out |= {"commit": d.commit}
        case RollBack():
            out |= {"commit": d.target.commit}
    return out

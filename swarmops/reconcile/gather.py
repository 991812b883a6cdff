"""Read the facts one reconcile decides on: the app's state from the store, the live stack from the Swarm,
and, when the decision asks for it, the commit from git and the registry (fetch, load, fingerprint,
decrypt). Nothing here decides what to deploy, and nothing here writes."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from swarmops.adapters import age as secrets
from swarmops.adapters.git import GitSource
from swarmops.adapters.store import SUCCEEDED, AppState
from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose.load import MAX_BYTES
from swarmops.domain.compose.model import Stack
from swarmops.domain.decide import (
    Candidate,
    CommitMeta,
    Facts,
    GoodDeploy,
    ImageFacts,
    Need,
    Pending,
    RollbackTarget,
    Stored,
    render_candidate,
)
from swarmops.domain.fingerprint import fingerprint
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Migrated, snapshots_from_json
from swarmops.domain.policy import published_ports
from swarmops.domain.policyctx import policy_context
from swarmops.domain.render import FINGERPRINT_LABEL, age_secrets, referenced_files
from swarmops.domain.stackfile import (
    BuildSpec,
    Variables,
    build_specs,
    dotenv_path,
    environment_secret,
    load_stack,
    parse_dotenv,
    with_replicas,
)
from swarmops.errors import SecretError, SourceError, StackError, SwarmopsError
from swarmops.reconcile.ports import HistoryCopy, Ledger, Registry, Source, Store, SwarmReader
from swarmops.reconcile.rollout import deploy_dir

log = logging.getLogger("swarmops.reconcile")
# Swarm keeps a config or secret to 500 KB; env files are read whole into the environment
FILE_LIMIT = 512 * 1024
PROVEN_READ = 500   # deploys of the required staging looked at: a promotion is of a recent one
GOOD_KEPT = 50   # successful deploys looked at for a rollback target


def git_source(config: Config, app: AppConfig, slots: threading.Semaphore) -> GitSource:
    return GitSource(app.repo, app.branch, config.state_dir / "repos" / f"{app.name}.git", config.auth_for(app),
                     config.git.timeout, slots, tags=app.tags)


def read_stack(config: Config, app: AppConfig, src: Source, commit: str) -> Stack:
    """The app's stack file at `commit` as its effective model, with the app's declared variables and
    the repo's .env beside the stack file."""
    try:
        text = src.read(commit, app.stack, MAX_BYTES).decode("utf-8")
    except SourceError as e:
        raise StackError(f"{app.stack}: not found in commit {commit[:12]}; a deploy without it would "
                         "remove every service, so it is refused", file=app.stack, commit=commit) from e
    except UnicodeDecodeError as e:
        raise StackError(f"{app.stack}: not UTF-8 text", file=app.stack) from e
    env_path = dotenv_path(app.stack)
    try:
        dotenv = parse_dotenv(src.read(commit, env_path, FILE_LIMIT).decode("utf-8", "replace"), env_path)
    except SourceError:
        dotenv = {}
    variables = Variables(config.builtin_variables(app), app.variables, dotenv)

    def read_file(rel: str) -> bytes:
        try:
            return src.read(commit, rel, FILE_LIMIT)
        except SourceError as e:
            raise StackError(f"{rel}: not in commit {commit[:12]}; add it or fix the path", file=rel) from e
    return with_replicas(load_stack(text, app.stack, variables, read_file, app.allow_empty), app.replicas,
                         f"the entry of {app.name}")


@dataclass(frozen=True)
class RollbackFacts:
    """What an operator's rollback chooses its target from."""

    good: tuple[GoodDeploy, ...]
    authors: dict[str, tuple[str, str]]
    live: LiveStack
    migrations: tuple[Migrated, ...]


class Gatherer:
    def __init__(self, config: Config, store: Store, reader: SwarmReader, registry: Registry, ledger: Ledger,
                 sources: Callable[[AppConfig], Source], history: HistoryCopy,
                 cli_versions: Callable[[], tuple[tuple[int, int], ...]],
                 snapshot: Callable[[str], LiveStack | None] = lambda _app: None) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.registry = registry
        self.ledger = ledger
        self.sources = sources
        self.history = history
        self.cli_versions = cli_versions
        # a recent read of an app's live stack shared by every check (the daemon's status cache), or None
        self.snapshot = snapshot

    def facts(self, app: AppConfig, head: str, trigger: str, force: bool, state: AppState,
              read_only: bool = False) -> Facts:
        """The cheap facts every check needs: the store's few fields (`state`, read by the caller) and the
        services' labels and specs (the daemon's shared snapshot of every app, a fixed number of Engine
        calls per refresh; else one)."""
        stored = Stored(paused=state.paused, failed_commit=state.failed_commit,
                        pending=self._pending(app.name, state.pending_check),
                        applied=self.store.load_applied(app.name), proven=self._proven(app),
                        failed_kind=state.last_error_kind if state.failed_commit else "")
        live = (None if force else self.snapshot(app.name)) or self.reader.read_app(app.name, services_only=True)
        facts = Facts(self.config, app, trigger, head, live, stored=stored, force=force)
        if stored.pending is not None:
            facts = self._with_history(facts, restore=not read_only)
        return facts

    def _proven(self, app: AppConfig) -> frozenset[str]:
        """The commits the app's required staging ran successfully (none asked for: none read)."""
        if not app.requires:
            return frozenset()
        return frozenset(d.commit_sha for d in self.store.history(app.requires, PROVEN_READ)
                         if d.result == SUCCEEDED)

    def _pending(self, app: str, pending_check: int) -> Pending | None:
        orphans = tuple(self.store.orphaned(app))
        deploy_id = orphans[-1] if orphans else pending_check
        if not deploy_id:
            return None
        d = self.store.get_deploy(deploy_id)
        if d is None:
            return Pending(deploy_id, "", 0.0, "", orphans)
        error = d.error or ("the process running this deploy stopped" if orphans else "")
        return Pending(deploy_id, d.commit_sha, d.started, error, orphans)

    def satisfy(self, facts: Facts, need: Need, read_only: bool = False) -> Facts:
        """`read_only` (a dry run): the Swarm's history copy is not read into the store."""
        match need.what:
            case "live":
                return replace(facts, live=self.reader.read_app(facts.app.name), live_full=True)
            case "candidate":
                facts = self._with_history(facts, restore=not read_only)
                return replace(facts, candidate=self.candidate(facts.app, need.commit or facts.head, facts.live),
                               previous=self._on_disk(facts.app, facts.live.deployed_commit()))
            case "rollback":
                return replace(facts, rollback_read=True, rollback_render=self.render_again(facts.app, need.commit,
                                                                                            facts.live))
        raise AssertionError(need)

    def _with_history(self, facts: Facts, restore: bool = True) -> Facts:
        good, _, migrations = self._history(facts.app.name, GOOD_KEPT, restore)
        return replace(facts, stored=replace(facts.stored, good=good, migrations=migrations))

    def _history(self, app: str, limit: int, restore: bool = True
                 ) -> tuple[tuple[GoodDeploy, ...], dict[str, tuple[str, str]], tuple[Migrated, ...]]:
        """From one read of the last `limit` history entries, with what another manager recorded read in first
        (unless `restore` is off): the successful deploys, newest first; each one's author and message; the
        migrations that succeeded."""
        if restore:
            self.history.restore(app)
        entries = self.store.history(app, limit)
        succeeded = [d for d in entries if d.result == SUCCEEDED]
        good = tuple(GoodDeploy(d.commit_sha, str(Path(d.render_dir) / "stack.yml"),
                                (Path(d.render_dir) / "stack.yml").is_file(), d.id) for d in succeeded)
        migrations = tuple(Migrated(s.commit, s.hook, s.id, d.id) for d in entries
                           for s in snapshots_from_json(d.snapshots) if s.migrated)
        return good, {d.commit_sha: (d.author, d.message) for d in reversed(succeeded)}, migrations

    def rollback_facts(self, app: AppConfig) -> RollbackFacts:
        """What an operator's rollback chooses its target from."""
        good, authors, migrations = self._history(app.name, 500)
        return RollbackFacts(good, authors, self.reader.read_app(app.name), migrations)

    def _on_disk(self, app: AppConfig, commit: str | None) -> GoodDeploy | None:
        if not commit:
            return None
        stack_file = deploy_dir(self.config, app.name, commit) / "stack.yml"
        return GoodDeploy(commit, str(stack_file), stack_file.is_file())

    def candidate(self, app: AppConfig, commit: str, live: LiveStack) -> Candidate:
        """Everything the decision needs of one commit, read from git and the registry."""
        src = self.sources(app)
        src.ensure(commit)
        info = src.info(commit)
        stack = read_stack(self.config, app, src, commit)
        specs = build_specs(stack)
        images = tuple(self._image_facts(app, commit, src, spec, live) for spec in specs.values())
        digests = {p: hashlib.sha256(src.read(commit, p, FILE_LIMIT)).hexdigest() for p in referenced_files(stack)}
        names, values, notes = self._decrypt_secrets(app, commit, src, stack)
        # the other apps' published ports matter only to a stack that publishes one: reading every app's
        # services for each deploy would cost more the more apps there are (restricted apps publish none)
        publishes = any(svc.ports for svc in stack.services.values())
        others = {name: [s.spec for s in st.services.values()] for name, st in self.reader.read_all().items()
                  if name != app.name} if publishes else {}
        return Candidate(
            commit=commit, meta=CommitMeta(info.author, info.title), stack=stack, specs=specs, images=images,
            file_digests=digests, secret_names=names, deploy_dir=str(deploy_dir(self.config, app.name, commit)),
            policy=policy_context(self.config, app, published_ports(others)), cli_versions=self.cli_versions(),
            notes=notes, secret_values=values)

    def _image_facts(self, app: AppConfig, commit: str, src: Source, spec: BuildSpec, live: LiveStack) -> ImageFacts:
        dockerfile = src.read(commit, spec.dockerfile, FILE_LIMIT).decode("utf-8", "replace")
        fp = fingerprint(spec, src.object_id(commit, spec.context), src.object_id(commit, spec.dockerfile),
                         dockerfile)
        repo = f"{app.name}/{spec.service}"
        found = self.registry.find_fingerprint(repo, fp)
        if found is None:
            return ImageFacts(spec.service, fp)
        trusted = self.ledger.get(repo, fp)
        running = live.services.get(spec.service)
        if trusted is None and running is not None and running.labels.get(FINGERPRINT_LABEL) == fp \
                and "@" in running.task_image:   # deployed before the ledger existed: what runs is trusted
            trusted = running.task_image.rpartition("@")[2]
        return ImageFacts(spec.service, fp, found, self.registry.digest(repo, found.rpartition(":")[2]), trusted)

    def _decrypt_secrets(self, app: AppConfig, commit: str, src: Source, stack: Stack
                         ) -> tuple[dict[str, str], dict[str, bytes], tuple[str, ...]]:
        """Decrypt the app's .age secrets in memory; names are keyed HMACs of the content."""
        encrypted = age_secrets(stack)
        if not encrypted:
            return {}, {}, ()
        identity = secrets.load_identity(self.config.state_dir)
        names: dict[str, str] = {}
        values: dict[str, bytes] = {}
        notes: list[str] = []
        for key, written in encrypted.items():
            rel = environment_secret(written, app.environment)
            try:
                sealed = src.read(commit, rel, FILE_LIMIT)
            except SourceError as e:
                raise SecretError(f"{rel}: not in commit {commit[:12]}: environment {app.environment} of "
                                  f"{app.group} reads its own copy of {written} there; `swarmops secret encrypt "
                                  f"{app.name} {key} --output {rel}` makes it", file=rel) from e
            plaintext, bound = secrets.unseal(secrets.decrypt(identity, sealed, rel), app.name, key, rel)
            if not bound and app.environment:
                raise SecretError(f"{rel} is bound to no app; an environment takes only secrets sealed for it: "
                                  f"`swarmops secret encrypt {app.name} {key} --output {rel}` makes one", file=rel)
            if not bound:
                notes.append(f"{rel} is bound to no app (made before secrets were); "
                             f"`swarmops secret rekey {app.name}` in a checkout rewrites it")
            names[key] = secrets.versioned_name(identity, app.name, key, plaintext)
            values[names[key]] = plaintext
        return names, values, tuple(notes)

    def render_again(self, app: AppConfig, commit: str, live: LiveStack) -> RollbackTarget | None:
        """The rendered stack of what ran before, from git, when this manager's disk does not have it
        (swarmops moved here from a lost manager, or state_dir was lost), so that a rollback can still
        redeploy it. Its images are already in the registry. None when it cannot be read."""
        try:
            c = self.candidate(app, commit, live)
            rendered, _ = render_candidate(self.config, app, c)
            src = self.sources(app)
            files = tuple((rel, src.read(commit, rel, FILE_LIMIT)) for rel in rendered.files)
        except SwarmopsError as e:
            log.warning("cannot render %s of %s again for the rollback: %s", commit[:12], app.name, e)
            return None
        return RollbackTarget(commit, str(Path(c.deploy_dir) / "stack.yml"), rendered.text, files)

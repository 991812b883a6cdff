"""Everything one deploy decision needs, read from git and the registry: fetch, load, fingerprint,
decrypt, render, check policy, then the pure plan."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from swarmops import secrets
from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose import schema
from swarmops.domain.compose.load import MAX_BYTES
from swarmops.domain.compose.model import Stack
from swarmops.domain.compose.schema import Version
from swarmops.domain.fingerprint import fingerprint
from swarmops.domain.live import LiveService, LiveStack
from swarmops.domain.plan import BuildStep, Plan, make_plan
from swarmops.domain.policy import check, published_ports
from swarmops.domain.render import (
    FINGERPRINT_LABEL,
    Rendered,
    RenderRequest,
    age_secrets,
    referenced_files,
    render_stack,
)
from swarmops.domain.stackfile import BuildSpec, Variables, build_specs, dotenv_path, load_stack, parse_dotenv
from swarmops.errors import PolicyError, SourceError, StackError
from swarmops.images.ledger import ImageLedger
from swarmops.images.registry import Registry
from swarmops.policyctx import policy_context
from swarmops.rollout import deploy_dir
from swarmops.source.git import CommitInfo, GitSource
from swarmops.swarm.live import SwarmReader


@dataclass
class Prepared:
    commit: str
    info: CommitInfo
    specs: dict[str, BuildSpec]
    rendered: Rendered
    plan: Plan
    deploy_dir: Path
    secret_values: dict[str, bytes] = field(default_factory=dict, repr=False)   # plaintext: memory only


# Swarm keeps a config or secret to 500 KB; env files are read whole into the environment
FILE_LIMIT = 512 * 1024


def git_source(config: Config, app: AppConfig, slots: threading.Semaphore) -> GitSource:
    return GitSource(app.repo, app.branch, config.state_dir / "repos" / f"{app.name}.git", config.auth_for(app),
                     config.git.timeout, slots)


def read_stack(config: Config, app: AppConfig, src: GitSource, commit: str) -> Stack:
    """The app's stack file at `commit` as its effective model, with the app's declared variables and
    the repo's .env beside the stack file."""
    try:
        text = src.read(commit, app.stack, MAX_BYTES).decode("utf-8")
    except SourceError:
        raise StackError(f"{app.stack}: not found in commit {commit[:12]}; a deploy without it would "
                         "remove every service, so it is refused") from None
    except UnicodeDecodeError:
        raise StackError(f"{app.stack}: not UTF-8 text") from None
    env_path = dotenv_path(app.stack)
    try:
        dotenv = parse_dotenv(src.read(commit, env_path, FILE_LIMIT).decode("utf-8", "replace"), env_path)
    except SourceError:
        dotenv = {}
    variables = Variables(config.builtin_variables(app), app.variables, dotenv)

    def read_file(rel: str) -> bytes:
        try:
            return src.read(commit, rel, FILE_LIMIT)
        except SourceError:
            raise StackError(f"{rel}: not in commit {commit[:12]}; add it or fix the path") from None
    return load_stack(text, app.stack, variables, read_file, app.allow_empty)


class Preparer:
    def __init__(self, config: Config, reader: SwarmReader, registry: Registry, git_slots: threading.Semaphore,
                 progress: Callable[[str], None],
                 schema_versions: Callable[[], tuple[Version, ...]] = lambda: schema.CLI_28) -> None:
        self.config = config
        self.schema_versions = schema_versions
        self.ledger = ImageLedger(config.state_dir / "images.json")
        self.reader = reader
        self.progress = progress
        self.registry = registry
        self.git_slots = git_slots

    def source(self, app: AppConfig) -> GitSource:
        return git_source(self.config, app, self.git_slots)

    def prepare(self, app: AppConfig, commit: str, live: LiveStack) -> Prepared:
        """Everything the decision needs, read from git and the registry; then the pure plan."""
        src = self.source(app)
        src.ensure(commit)
        info = src.info(commit)
        stack = read_stack(self.config, app, src, commit)
        specs = build_specs(stack)
        images, fingerprints, builds = self._resolve_images(app, commit, src, specs, live)
        digests = {p: hashlib.sha256(src.read(commit, p, FILE_LIMIT)).hexdigest() for p in referenced_files(stack)}
        secret_names, secret_values = self._decrypt_secrets(app, commit, src, stack)
        target = deploy_dir(self.config, app.name, commit)
        rendered = render_stack(stack, RenderRequest(
            app=app.name, commit=commit, role=app.role, allowed_roles=app.roles(),
            role_label=self.config.role_label, images=images, fingerprints=fingerprints,
            file_digests=digests, deploy_dir=str(target), secret_names=secret_names,
            cli_versions=self.schema_versions()))
        self._check_policy(app, stack, rendered)
        plan = make_plan(app.name, commit, rendered, live, tuple(builds))
        return Prepared(commit, info, specs, rendered, plan, target, secret_values)

    def _decrypt_secrets(self, app: AppConfig, commit: str, src: GitSource, stack: Stack
                         ) -> tuple[dict[str, str], dict[str, bytes]]:
        """Decrypt the app's .age secrets in memory; names are keyed HMACs of the content."""
        encrypted = age_secrets(stack)
        if not encrypted:
            return {}, {}
        identity = secrets.load_identity(self.config.state_dir)
        names: dict[str, str] = {}
        values: dict[str, bytes] = {}
        for key, rel in encrypted.items():
            plaintext, bound = secrets.unseal(secrets.decrypt(identity, src.read(commit, rel, FILE_LIMIT), rel),
                                              app.name, key, rel)
            if not bound:
                self.progress(f"{app.name}: {rel} is bound to no app (made before secrets were); "
                              f"`swarmops secret rekey {app.name}` in a checkout rewrites it")
            names[key] = secrets.versioned_name(identity, app.name, key, plaintext)
            values[names[key]] = plaintext
        return names, values

    def _check_policy(self, app: AppConfig, stack: Stack, rendered: Rendered) -> None:
        """Refuse the render before anything is built or deployed; warnings go to the log."""
        others = {name: [s.spec for s in st.services.values()] for name, st in self.reader.read_all().items()
                  if name != app.name}
        ctx = policy_context(self.config, app, published_ports(others))
        found = check(rendered.doc, ctx, where=lambda path: stack.where(*path))
        for v in found:
            if v.severity != "deny":
                self.progress(f"{app.name}: policy warning: {v}")
        denied = [v for v in found if v.severity == "deny"]
        if denied:
            raise PolicyError(f"policy {ctx.profile} refuses app {app.name}, file {app.stack}: "
                              + "; ".join(str(v) for v in denied))

    def _resolve_images(self, app: AppConfig, commit: str, src: GitSource, specs: dict[str, BuildSpec],
                        live: LiveStack) -> tuple[dict[str, str], dict[str, str], list[BuildStep]]:
        images: dict[str, str] = {}
        fingerprints: dict[str, str] = {}
        builds: list[BuildStep] = []
        for name, spec in specs.items():
            dockerfile = src.read(commit, spec.dockerfile, FILE_LIMIT).decode("utf-8", "replace")
            fp = fingerprint(spec, src.object_id(commit, spec.context), src.object_id(commit, spec.dockerfile),
                             dockerfile)
            fingerprints[name] = fp
            repo = f"{app.name}/{name}"
            pinned, why, replaced = self._reusable(repo, fp, live.services.get(name))
            if pinned:
                images[name] = pinned
                continue
            if why:
                self.progress(f"{app.name}: {why}")
            images[name] = f"{self.config.registry}/{repo}:{commit[:12]}"
            builds.append(BuildStep(name, images[name], fp, why or "no image with these build inputs in the registry",
                                    replaced))
        return images, fingerprints, builds

    def _reusable(self, repo: str, fp: str, running: LiveService | None) -> tuple[str | None, str, str]:
        """The image built from these inputs, pinned to the digest swarmops pushed (or the running service
        was deployed with); or why it is built again."""
        existing = self.registry.find_fingerprint(repo, fp)
        if existing is None:
            return None, "", ""
        current = self.registry.digest(repo, existing.rpartition(":")[2])
        trusted = self.ledger.get(repo, fp)
        if trusted is None and running is not None and running.labels.get(FINGERPRINT_LABEL) == fp:
            trusted = running.task_image.rpartition("@")[2] if "@" in running.task_image else None
        if trusted is None:
            return None, f"no record of the image swarmops pushed for {existing}: built again", ""
        if current != trusted:
            return None, (f"{existing} in the registry is not the image swarmops pushed (registry: {current}, "
                          f"pushed: {trusted}): replaced outside swarmops; built again, not deployed"), str(current)
        return f"{existing}@{current}", "", ""

"""The policy check and the render as developers run them offline: the same load, interpolation,
model and rules as the daemon, with placeholder image tags and secret names; no Engine, no registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose.model import Stack
from swarmops.domain.policy import Violation, check
from swarmops.domain.policyctx import policy_context
from swarmops.domain.render import Rendered, RenderRequest, age_secrets, render_stack
from swarmops.domain.ssolabels import SsoKey
from swarmops.domain.stackfile import Variables, build_specs, dotenv_path, load_stack, parse_dotenv, with_replicas
from swarmops.errors import StackError

FILE_LIMIT = 512 * 1024


def disk_reader(root: Path) -> Callable[[str], bytes]:
    """Repo-relative files of a checkout at `root`, kept inside it."""
    base = root.resolve()

    def read(rel: str) -> bytes:
        path = (base / rel).resolve()
        if base not in path.parents and path != base:
            raise StackError(f"{rel}: points outside the repo")
        try:
            if path.stat().st_size > FILE_LIMIT:
                raise StackError(f"{rel}: more than the {FILE_LIMIT} bytes allowed; make it smaller")
            return path.read_bytes()
        except OSError as e:
            raise StackError(f"{rel}: cannot read: {e.strerror}") from e
    return read


def load_from_disk(config: Config, app: AppConfig, text: str, filename: str, root: Path) -> Stack:
    """A stack file of a checkout at `root` (filename relative to it), with its .env beside it."""
    read = disk_reader(root)
    env_path = dotenv_path(filename)
    dotenv = parse_dotenv(read(env_path).decode("utf-8", "replace"), env_path) if (root / env_path).is_file() else {}
    variables = Variables(config.builtin_variables(app), app.variables, dotenv)
    return with_replicas(load_stack(text, filename, variables, read, app.allow_empty), app.replicas,
                         f"the entry of {app.name}")


def render_offline(config: Config, app: AppConfig, stack: Stack, commit: str = "offline",
                   file_digests: Mapping[str, str] | None = None) -> Rendered:
    images = {name: f"{config.registry}/{app.name}/{name}:{commit[:12]}" for name in build_specs(stack)}
    secret_names = {key: f"{app.name}_{key}_{commit[:12]}" for key in age_secrets(stack)}
    return render_stack(stack, RenderRequest(
        app=app.name, commit=commit, role=app.role, allowed_roles=app.roles(), role_label=config.role_label,
        images=images, fingerprints={}, file_digests=file_digests or {},
        deploy_dir=f"{config.state_dir}/deploys/{app.name}/{commit[:12]}",
        secret_names=secret_names, sso=SsoKey(config.sso.middleware, config.sso.public_key or "")))


def offline_policy_check(config: Config, app: AppConfig, stack: Stack, profile: str | None) -> list[Violation]:
    rendered = render_offline(config, app, stack)
    ctx = policy_context(config, app, {})
    if profile:
        ctx = type(ctx)(**{**ctx.__dict__, "profile": profile})
    return check(rendered.policy_doc, ctx, where=lambda path: stack.where(*path))   # hooks too


def check_stack_text(config: Config, app: AppConfig, text: str, filename: str, profile: str | None,
                     root: Path) -> list[Violation]:
    """Load a stack file of the checkout at `root` and run the policy on it, as `swarmops policy check`."""
    return offline_policy_check(config, app, load_from_disk(config, app, text, filename, root), profile)

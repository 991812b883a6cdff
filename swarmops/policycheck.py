"""The policy check as developers run it offline: render a stack file with placeholder images and
apply the app's policy, exactly as the daemon would before a deploy."""

from __future__ import annotations

from swarmops import yamlio
from swarmops.config.models import AppConfig, Config
from swarmops.domain.policy import Violation, check
from swarmops.domain.render import RenderRequest, age_secrets, render_stack
from swarmops.domain.stackfile import build_specs, load_stack
from swarmops.errors import StackError
from swarmops.policyctx import policy_context


def offline_policy_check(config: Config, app: AppConfig, text: str, filename: str,
                         profile: str | None) -> list[Violation]:
    stack = load_stack(text, filename, allow_empty=app.allow_empty)
    images = {name: f"{config.registry}/{app.name}/{name}:offline" for name in build_specs(stack)}
    secret_names = {key: f"{app.name}_{key}_offline" for key in age_secrets(stack)}
    rendered = render_stack(stack, RenderRequest(
        app=app.name, commit="offline", role=app.role, allowed_roles=app.roles(), role_label=config.role_label,
        images=images, fingerprints={}, file_digests={}, deploy_dir="/offline", secret_names=secret_names,
        registry=config.registry))
    ctx = policy_context(config, app, {})
    if profile:
        ctx = type(ctx)(**{**ctx.__dict__, "profile": profile})
    doc = yamlio.to_plain(yamlio.load(rendered.text, filename, StackError))
    return check(doc, ctx, where=lambda path: stack.where(*path))

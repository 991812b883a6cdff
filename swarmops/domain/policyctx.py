"""The policy context of an app, from its config: where configuration meets the pure policy rules."""

from __future__ import annotations

from collections.abc import Mapping

from swarmops.config.models import AppConfig, Config
from swarmops.domain.policy import PolicyContext


def policy_context(config: Config, app: AppConfig, ports_in_use: Mapping[int, str]) -> PolicyContext:
    p = config.policy_for(app)
    return PolicyContext(
        app=app.name, profile=p.profile, registry=config.registry, role_label=config.role_label,
        allowed_roles=app.roles(), allowed_registries=tuple(p.allowed_registries),
        allowed_cap_add=tuple(p.allowed_cap_add), allowed_bind_mounts=tuple(p.allowed_bind_mounts),
        port_range=p.port_range, allowed_ports=tuple(p.allowed_ports), ports_in_use=dict(ports_in_use),
        allowed_external=tuple(p.allowed_external), allow_global=p.allow_global,
        resource_limits=p.resource_limits, apps=tuple(a.name for a in config.apps), domain=config.domain,
        allowed_hosts=tuple(p.allowed_hosts), allowed_middlewares=tuple(p.allowed_middlewares),
        max_replicas=p.max_replicas, lock_name=config.lock.name, sso_middleware=config.sso.middleware)

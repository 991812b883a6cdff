"""The policy's settings in the config: what an app's stack may ask of the cluster (docs/policy.md), globally
and per app (an app's keys over the global ones)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from swarmops.config.fields import Strict


class PolicySettings(Strict):
    """What an app's stack may ask of the cluster (see docs/policy.md). Per-app keys override global ones."""

    profile: Literal["restricted", "privileged"] = "restricted"
    allowed_registries: list[str] = Field(default_factory=list)
    allowed_cap_add: list[str] = Field(default_factory=list)
    allowed_bind_mounts: list[str] = Field(default_factory=list)
    port_range: tuple[int, int] = (30000, 32767)
    allowed_ports: list[int] = Field(default_factory=list)
    # networks shared by the infrastructure stacks: the proxy, the databases, MinIO
    allowed_external: list[str] = Field(default_factory=lambda: ["proxy", "db-mysql", "db-postgres", "minio"])
    allow_global: bool = False
    resource_limits: Literal["warn", "deny", "off"] = "warn"
    allowed_hosts: list[str] = Field(default_factory=list)        # hosts besides <app>.<domain> its routers name
    allowed_middlewares: list[str] = Field(default_factory=list)  # shared Traefik middlewares, as name@provider
    max_replicas: int = Field(10, ge=0)

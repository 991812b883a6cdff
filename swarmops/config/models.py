"""pydantic models of the swarmops config file and of each apps.d entry: the single description
of the format. Unknown keys are errors everywhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from swarmops.config.access import AccessRule as AccessRule
from swarmops.config.access import OidcSettings as OidcSettings
from swarmops.config.backup import BackupS3 as BackupS3
from swarmops.config.backup import BackupSettings as BackupSettings
from swarmops.config.backup import S3StoreSettings as S3StoreSettings
from swarmops.config.duration import Duration
from swarmops.config.environments import EnvironmentSettings, expand_environments
from swarmops.config.fields import ENVIRONMENT, Replicas, Strict, TagPattern, Variables, one_line, stack_name
from swarmops.config.policy import PolicySettings as PolicySettings


class Auth(Strict):
    """Credentials for a git remote. Paths to the operator's files; swarmops copies them nowhere."""

    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    token_file: Path | None = None
    token_user: str = "x-access-token"


class GitSettings(Strict):
    concurrency: int = Field(8, ge=1, le=256)
    timeout: Duration = 60.0


class BuildSettings(Strict):
    concurrency: int = Field(2, ge=1, le=64)
    timeout: Duration = 1800.0
    # build elsewhere, e.g. ssh://swarmops@registry-node: the manager stays light and the push is local.
    # docker-py's ssh transport uses ~/.ssh/config and ~/.ssh/known_hosts (unknown keys refused).
    docker_host: str | None = None


class TemplateSettings(Strict):
    """Where `swarmops new` takes app templates from: a git repo (this project or the ops team's fork)
    and a tag, so that repos made from it can be updated with `copier update`."""

    source: str | None = None
    ref: str | None = None


class NodeEntry(Strict):
    name: str                  # the node's hostname in the Swarm
    address: str               # where its sshd answers
    role: str                  # the role label it must carry
    port: int | None = None


class SshSettings(Strict):
    user: str = "root"
    key_file: Path | None = None
    known_hosts_file: Path = Path("/etc/swarmops/known_hosts")
    port: int = 22
    timeout: Duration = 5.0


class NodesSettings(Strict):
    """The inventory `swarmops nodes check` and `nodes label` work on."""

    ssh: SshSettings = Field(default_factory=lambda: SshSettings.model_validate({}))
    inventory: list[NodeEntry] = Field(default_factory=list)
    max_clock_skew: Duration = 2.0
    min_free_disk_gb: float = 5.0


class HttpSettings(Strict):
    listen: str = "127.0.0.1:9480"
    public_read: bool = False
    external_url: str | None = None
    oidc: OidcSettings | None = None   # sign-in with the office's accounts beside tokens (needs external_url)

    @model_validator(mode="after")
    def _oidc_needs_its_url(self) -> HttpSettings:
        if self.oidc is not None and not self.external_url:
            raise ValueError("oidc: the provider sends people back to external_url/auth/callback; set external_url")
        return self

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{v!r}: write it as address:port, like 127.0.0.1:9480")
        return v

    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class WebhookSettings(Strict):
    secret_file: Path | None = None


class NotifySettings(Strict):
    urls: list[str] = Field(default_factory=list)


class ForgeSettings(Strict):
    """Commit statuses back to the forge (GitHub, Gitea/Forgejo) when a token is configured."""

    token_file: Path | None = None
    kind: Literal["github", "gitea"] | None = None     # default: github for github.com, else gitea
    api_url: str | None = None                          # default: https://api.github.com or https://HOST/api/v1


class LockSettings(Strict):
    """The deploy lock in the Swarm: one daemon deploys at a time across every manager."""

    enabled: bool = True
    ttl: Duration = Field(30.0, gt=0)   # a holder that does not renew within this is taken over
    name: str = Field("swarmops-lock", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")   # one per installation


class HistorySettings(Strict):
    """Where the deploy history lives: the state database, plus a copy of each app's recent entries in
    the Swarm (Raft, on every manager) that a daemon starting on another manager reads back."""

    in_swarm: bool = True


class RetrySettings(Strict):
    """Retries of transient faults (git unreachable, registry 5xx, Docker API errors)."""

    limit: int = Field(5, ge=0, le=100)
    backoff: Duration = 5.0
    max_backoff: Duration = 180.0


# a Traefik middleware as a router names it, with its provider: the shared one is defined outside any app
ED25519_KEY = re.compile(r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")   # 32 bytes: the last character holds 4 bits
MIDDLEWARE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}@[a-z][a-z0-9-]{0,62}$")
class SsoSettings(Strict):
    """The single sign-on door (Polise): the one shared Traefik forwardAuth middleware an app's router
    names to be behind it. Defined by the proxy stack in Traefik's file provider, which no app can write."""

    middleware: str = "sso@file"
    # Polise's Ed25519 public key, base64url of its 32 bytes (the `x` of Polise's /_sso/keys): set as
    # SSO_PUBLIC_KEY on every service behind the middleware, to check Polise's signed X-Auth-Token with
    public_key: str | None = None

    @field_validator("middleware")
    @classmethod
    def _reference(cls, v: str) -> str:
        if not MIDDLEWARE_REF.match(v):
            raise ValueError(f"{v!r}: write the shared middleware as name@provider, like sso@file")
        return v

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, v: str | None) -> str | None:
        if v is not None and not ED25519_KEY.match(v):
            raise ValueError(f"{v!r}: write Polise's Ed25519 public key as base64url of its 32 bytes, without "
                             "padding: the `x` of Polise's /_sso/keys (43 characters)")
        return v


class AppSso(Strict):
    """Who may use an app behind the SSO middleware: the OIDC groups (none: every signed-in user), and
    whom a refused user should ask (shown by Polise)."""

    groups: list[str] = Field(default_factory=list)
    contact: str | None = None

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        for group in v:
            one_line(group, "a group name", 256)
        twice = sorted({g for g in v if v.count(g) > 1})
        if twice:
            raise ValueError(f"group {twice[0]!r} is listed twice; list each group once")
        return v

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str | None) -> str | None:
        return None if v is None else one_line(v, "the contact", 200)


class AppConfig(Strict):
    name: str
    repo: str
    branch: str = "main"
    tags: TagPattern | None = None   # follow the highest tag matching this pattern (v*) in place of the branch
    stack: str = "stack.yml"
    role: str = "app"
    allowed_roles: list[str] = Field(default_factory=list)
    poll_interval: Duration | None = None
    deploy_timeout: Duration | None = None
    settle: Duration | None = None
    failure_threshold: int = Field(3, ge=1, description="failed tasks at the new spec before a deploy fails")
    allow_empty: bool = False
    self_heal: bool = True
    retry: RetrySettings | None = None
    policy: PolicySettings | None = None
    webhook_secret_file: Path | None = None
    forge_repo: str | None = None          # owner/name on the forge; default: from the repo URL
    notify_urls: list[str] = Field(default_factory=list)
    auth: Auth | None = None
    url: str | None = Field(None, pattern=r"^https?://\S+$")   # the app's public URL; default: its proxy rule
    variables: Variables = Field(default_factory=dict)   # ${VAR} values for the stack file (ops-controlled)
    sso: AppSso | None = None   # who may pass the SSO middleware when the app's routers name it
    backup: BackupSettings | None = None   # scheduled backups of the app's databases
    replicas: Replicas = Field(default_factory=dict)   # per service, over the stack file's (ops-controlled)
    environments: dict[str, EnvironmentSettings] = Field(default_factory=dict)
    environment: str | None = None   # set by the expansion of `environments` (expand_environments)
    group: str | None = None         # the app an environment belongs to, set with it
    requires: str | None = None      # the stack whose successful deploys of a commit come first (require_staging)

    @property
    def follows(self) -> str:
        """What the app follows in its repo, as messages name it."""
        return f"tags {self.tags}" if self.tags else f"branch {self.branch}"

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, v: dict[str, EnvironmentSettings]) -> dict[str, EnvironmentSettings]:
        for env in v:
            if not ENVIRONMENT.match(env):
                raise ValueError(f"{env!r} is not an environment name: lowercase letters, digits and '-', starting "
                                 "with a letter, at most 20 characters (like staging or production)")
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_expansion_fields(cls, data: Any) -> Any:
        set_here = sorted(k for k in ("environment", "group", "requires")
                          if isinstance(data, dict) and data.get(k) is not None)
        if set_here:
            raise ValueError(f"{', '.join(set_here)}: swarmops sets these for each environment an entry declares "
                             "under environments:; remove them")
        return data

    @model_validator(mode="after")
    def _environments_alone(self) -> AppConfig:
        if self.environments and self.backup is not None:
            raise ValueError("an app with environments backs up each environment on its own: move backup: under "
                             "the environments that have data to keep")
        return self

    @field_validator("name")
    @classmethod
    def _stack_name(cls, v: str) -> str:
        return stack_name(v)

    @field_validator("stack")
    @classmethod
    def _relative_stack(cls, v: str) -> str:
        if v.startswith("/") or ".." in Path(v).parts:
            raise ValueError(f"{v!r} must be a path inside the repo, like stack.yml or deploy/stack.yml")
        return v

    def roles(self) -> tuple[str, ...]:
        """Every role this app's services may run on: its own first."""
        return (self.role, *[r for r in self.allowed_roles if r != self.role])


def bucket_of(app: AppConfig) -> str | None:
    return app.backup.s3.bucket if app.backup is not None and app.backup.s3 is not None else None


def shared_bucket(apps: list[AppConfig]) -> str | None:
    """Why two apps' volume backups would share a bucket, or None: one app's prune, listing and restore would
    then take the other's archives."""
    owner: dict[str, str] = {}
    for app in apps:
        bucket = bucket_of(app)
        if bucket is None:
            continue
        if bucket in owner:
            return (f"apps {owner[bucket]} and {app.name} both back up into bucket {bucket}: give each app a bucket "
                    "of its own (and a backup account for that bucket only)")
        owner[bucket] = app.name
    return None


def check_overlaps(names: list[str]) -> None:
    """Ruling 30: an object name belongs to the stack whose name is its longest prefix followed by `_`,
    so `shop` and `shop_admin` cannot both be apps: `shop`'s volume `admin_data` would be `shop_admin`'s."""
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "_"):
                raise ValueError(f"apps {a!r} and {b!r}: the names of {b}'s objects start with {a}_, so the two "
                                 "could take each other's networks, volumes and secrets; rename one (a - instead "
                                 "of the _ works)")


class Config(Strict):
    registry: str
    registry_insecure: bool = False
    state_dir: Path = Path("/var/lib/swarmops")
    poll_interval: Duration = 60.0
    poll_jitter: Duration | None = None
    docker_host: str | None = None
    docker_timeout: Duration = 120.0
    role_label: str = "role"
    domain: str | None = Field(None, pattern=r"^[a-z0-9.-]+$")   # apps answer at <app>.<domain>; ${SWARMOPS_DOMAIN}
    apps_dir: Path | None = None
    deploy_timeout: Duration = 300.0
    settle: Duration = 5.0
    shutdown_grace: Duration = 60.0
    prune_removed_apps: bool = False
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings.model_validate({}))
    lock: LockSettings = Field(default_factory=lambda: LockSettings.model_validate({}))
    history: HistorySettings = Field(default_factory=lambda: HistorySettings.model_validate({}))
    policy: PolicySettings = Field(default_factory=lambda: PolicySettings.model_validate({}))
    templates: TemplateSettings = Field(default_factory=lambda: TemplateSettings.model_validate({}))
    nodes: NodesSettings = Field(default_factory=lambda: NodesSettings.model_validate({}))
    http: HttpSettings | None = None
    webhooks: WebhookSettings = Field(default_factory=lambda: WebhookSettings.model_validate({}))
    notify: NotifySettings = Field(default_factory=lambda: NotifySettings.model_validate({}))
    forge: ForgeSettings = Field(default_factory=lambda: ForgeSettings.model_validate({}))
    auth: Auth | None = None
    git: GitSettings = Field(default_factory=lambda: GitSettings.model_validate({}))
    build: BuildSettings = Field(default_factory=lambda: BuildSettings.model_validate({}))
    sso: SsoSettings = Field(default_factory=lambda: SsoSettings.model_validate({}))
    backup_s3: S3StoreSettings | None = None   # the S3 store volume backups go to
    access: list[AccessRule] = Field(default_factory=list)   # who of the sign-in may do what (domain/access.py)
    apps: list[AppConfig] = Field(default_factory=list)

    @field_validator("registry")
    @classmethod
    def _registry_host(cls, v: str) -> str:
        if "://" in v or v.endswith("/") or not v:
            raise ValueError(f"{v!r}: write the registry as host:port, like registry.local:5000 (no scheme)")
        return v

    @field_validator("apps")
    @classmethod
    def _each_environment_an_app(cls, v: list[AppConfig]) -> list[AppConfig]:
        return [expanded for app in v for expanded in expand_environments(app)]

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for app in self.apps:
            if app.name in seen:
                raise ValueError(f"duplicate app name {app.name!r}: every app needs its own name")
            seen.add(app.name)
            if (why := self.lacks_s3(app)) is not None:
                raise ValueError(why)
        check_overlaps([app.name for app in self.apps])
        if (why := shared_bucket(self.apps)) is not None:
            raise ValueError(why)
        return self

    def lacks_s3(self, app: AppConfig) -> str | None:
        """Why the app's volume backups have nowhere to go, or None."""
        if app.backup is None or not app.backup.volumes or self.backup_s3 is not None:
            return None
        return (f"app {app.name}: backup.volumes go to the S3 store, and this config names none: add backup_s3: "
                "{endpoint: http://minio:9000, network: minio} to swarmops.yml")

    @property
    def http_public_read(self) -> bool:
        return bool(self.http and self.http.public_read)

    def app(self, name: str) -> AppConfig | None:
        return next((a for a in self.apps if a.name == name), None)

    def interval_for(self, app: AppConfig) -> float:
        return app.poll_interval if app.poll_interval is not None else self.poll_interval

    def timeout_for(self, app: AppConfig) -> float:
        return app.deploy_timeout if app.deploy_timeout is not None else self.deploy_timeout

    def policy_for(self, app: AppConfig) -> PolicySettings:
        if app.policy is None:
            return self.policy
        return self.policy.model_copy(update={k: getattr(app.policy, k) for k in app.policy.model_fields_set})

    def retry_for(self, app: AppConfig) -> RetrySettings:
        return app.retry or self.retry

    def settle_for(self, app: AppConfig) -> float:
        return app.settle if app.settle is not None else self.settle

    def auth_for(self, app: AppConfig) -> Auth | None:
        return app.auth or self.auth

    def builtin_variables(self, app: AppConfig) -> dict[str, str]:
        """What swarmops itself gives `${SWARMOPS_*}` in a stack file."""
        found = {"SWARMOPS_REGISTRY": self.registry, "SWARMOPS_APP": app.group or app.name,
                 "SWARMOPS_STACK": app.name, "SWARMOPS_ENV": app.environment or ""}
        if self.domain:
            found["SWARMOPS_DOMAIN"] = self.domain
        return found

"""What a hook service (`x-swarmops: {hook: ...}`) may ask for. A hook is run once as a Swarm job through the
Engine API before or after the stack deploy, so it can use only what exists without the stack: external
networks and configs, external or age-encrypted secrets (swarmops creates those first), plain or external
volumes, bind and tmpfs mounts. Keys that only make sense for a long-running service are left out of the
job (and said so); anything else is refused here, with file, line and key."""

from __future__ import annotations

import re
from collections.abc import Callable

from swarmops.domain.compose.model import Service, Stack
from swarmops.errors import StackError

Fail = Callable[[tuple[str | int, ...], str], StackError]

# service keys (besides those the model reads itself) that the job is made with
JOB_KEYS = frozenset({"command", "entrypoint", "user", "working_dir", "init", "read_only", "hostname",
                      "extra_hosts", "cap_add", "cap_drop", "logging", "stop_grace_period", "privileged"})
# keys of a long-running service that a one-off job has no use for: left out of the job
IGNORED_KEYS = frozenset({"healthcheck", "stop_signal", "depends_on", "restart", "container_name", "expose"})
IGNORED_DEPLOY_KEYS = frozenset({"mode", "replicas", "update_config", "rollback_config", "restart_policy",
                                 "endpoint_mode"})
SUPPORTED = ("image, build, command, entrypoint, environment, env_file, labels, secrets, configs, networks, "
             "volumes, user, working_dir, init, read_only, hostname, extra_hosts, cap_add, cap_drop, logging, "
             "stop_grace_period, deploy.labels, deploy.placement, deploy.resources")
JOB_PREFIX = "hook-"
MAX_HOOKS = 10              # per stack: each may run up to its timeout while the deploy holds the app


def hooks_of(stack: Stack) -> dict[str, Service]:
    return {name: svc for name, svc in stack.services.items() if svc.hook is not None}


def ignored_keys(svc: Service) -> tuple[str, ...]:
    """The keys of a hook service the job leaves out, as the operator wrote them."""
    keys = [k for k in sorted(svc.rest) if k in IGNORED_KEYS]
    if svc.ports:
        keys.append("ports")
    keys += [f"deploy.{k}" for k in ("mode", "replicas") if getattr(svc.deploy, k) is not None]
    keys += [f"deploy.{k}" for k in sorted(svc.deploy.rest) if k in IGNORED_DEPLOY_KEYS]
    return tuple(keys)


# the names of swarmops' own jobs in an app's namespace (domain/backups.py: `<app>_swarmops-<action>`)
RESERVED_SERVICES = ("swarmops-snapshot", "swarmops-restore", "swarmops-list", "swarmops-prune",
                     "swarmops-volume-backup", "swarmops-volume-restore", "swarmops-volume-list",
                     "swarmops-volume-prune")


def check_hooks(stack: Stack, fail: Fail, allow_empty: bool) -> None:
    for name in stack.services:   # Swarm compares service names without letter case
        if name.lower() in RESERVED_SERVICES:
            raise fail(("services", name), f"{name!r} is the name of one of swarmops' own backup jobs "
                       f"({', '.join(RESERVED_SERVICES)}); rename the service")
    hooks = hooks_of(stack)
    if not hooks:
        return
    if len(hooks) > MAX_HOOKS:
        raise fail(("services",), f"{len(hooks)} hooks: a stack may have at most {MAX_HOOKS} (each runs up to its "
                   "timeout while the deploy waits); merge them into fewer")
    if len(hooks) == len(stack.services) and not allow_empty:
        raise fail(("services",), "every service is a hook: the stack deploy would have nothing to run and would "
                   "remove every running service (set allow_empty: true on the app if that is really wanted)")
    for name, svc in hooks.items():
        _check(stack, name, svc, fail)
    _check_migrations(hooks, fail)


def _check(stack: Stack, name: str, svc: Service, fail: Fail) -> None:
    path: tuple[str | int, ...] = ("services", name)
    # Swarm compares service names without letter case: hook Migrate's job is service hook-migrate too
    if f"{JOB_PREFIX}{name}".lower() in {other.lower() for other in stack.services}:
        raise fail(path, f"the job of hook {name!r} would take the name of service {JOB_PREFIX}{name!r}; rename one")
    if not svc.networks:
        raise fail((*path, "networks"), "a hook without networks would run on the node's default bridge network, "
                   "beside containers outside the Swarm; attach it to an external network (external: true)")

    for key in sorted(svc.rest):
        if key not in JOB_KEYS and key not in IGNORED_KEYS:
            raise fail((*path, key), f"a hook does not take {key}: it runs once as a Swarm job; remove it "
                       f"(a hook takes {SUPPORTED})")
    for key in sorted(svc.deploy.rest):
        if key not in IGNORED_DEPLOY_KEYS and key != "resources":
            raise fail((*path, "deploy", key), f"a hook does not take deploy.{key}; remove it")
    for net in svc.networks or ():
        top = stack.networks.get(net.key)
        if top is None or not top.external:
            raise fail((*path, "networks"), f"network {net.key!r} is the stack's own, and a hook runs before "
                       "the stack deploy creates it (on the first deploy it does not exist yet); attach the hook "
                       "to an external network (external: true) or remove it")
        if net.options:
            raise fail((*path, "networks"), f"network {net.key!r}: a hook's network takes aliases only")
    for i, ref in enumerate(svc.secrets):
        secret = stack.secrets[ref.source]
        if not (secret.external or secret.encrypted):
            raise fail((*path, "secrets", i), f"secret {ref.source!r} is made by the stack deploy, which a "
                       "hook runs outside of (a pre-deploy hook before it); give a hook age-encrypted secrets "
                       "(file: secrets/NAME.age, which swarmops creates first) or external ones")
    for i, ref in enumerate(svc.configs):
        if not stack.configs[ref.source].external:
            raise fail((*path, "configs", i), f"config {ref.source!r} is made by the stack deploy, which a "
                       "hook runs outside of (a pre-deploy hook before it); give a hook external configs only, or "
                       "put the data in its image")
    for i, mount in enumerate(svc.volumes):
        _check_mount(stack, (*path, "volumes", i), mount.type, mount.source, fail)


def _check_mount(stack: Stack, path: tuple[str | int, ...], kind: str, source: str | None, fail: Fail) -> None:
    if kind not in ("volume", "bind", "tmpfs"):
        raise fail(path, f"a hook takes volume, bind and tmpfs mounts, not {kind}")
    if kind != "volume" or not source:
        return
    top = stack.volumes[source]
    if not top.external and (top.driver not in (None, "local") or top.driver_opts):
        raise fail(path, f"volume {source!r} has a driver or driver_opts, which only the stack deploy sets up; "
                   "give a hook a plain or an external volume")



def valid_port(text: str) -> bool:
    """A TCP port in ASCII digits: str.isdigit() also takes "²", which int() then refuses."""
    return re.fullmatch(r"[0-9]{1,5}", text) is not None and 1 <= int(text) <= 65535


# how a migration hook reaches its database: the variables the templates give an app's web service
DB_WIRING = ("DB_DRIVER", "DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD_FILE")
ENGINES = ("postgres", "mysql")


def _check_migrations(hooks: dict[str, Service], fail: Fail) -> None:
    named: dict[str, str] = {}   # down hook -> the migration that names it
    for name, svc in hooks.items():
        assert svc.hook is not None
        if svc.hook.migrates is not None:
            _check_wiring(name, svc, svc.hook.migrates, fail)
        down = svc.hook.down
        if down is None:
            continue
        target = hooks.get(down)
        if target is None or target.hook is None or target.hook.kind != "down":
            raise fail(("services", name, "x-swarmops", "down"), f"{down!r} is not a service of this stack marked "
                       "x-swarmops: {hook: down}; add it, or remove down")
        if down in named:
            raise fail(("services", name, "x-swarmops", "down"), f"down hook {down!r} already undoes migration "
                       f"{named[down]!r}; give each migration its own")
        named[down] = name
    for name, svc in hooks.items():
        assert svc.hook is not None
        if svc.hook.kind == "down" and name not in named:
            raise fail(("services", name, "x-swarmops", "hook"), "a down hook runs only before a rollback across "
                       "the migration that names it; add down: " + name + " to that migration hook, or remove it")


def _check_wiring(name: str, svc: Service, database: str, fail: Fail) -> None:
    """The snapshot job reaches the database as the hook does: its DB_* variables and password secret."""
    path: tuple[str | int, ...] = ("services", name, "environment")
    env = svc.environment
    missing = [key for key in DB_WIRING if not env.get(key)]
    if missing:
        raise fail(path, f"migration hook {name!r} has no {', '.join(missing)}: swarmops snapshots the database "
                   f"the hook is wired to, as the templates wire an app ({', '.join(DB_WIRING)}, and DB_PORT)")
    if env["DB_DRIVER"] not in ENGINES:
        raise fail((*path, "DB_DRIVER"), f"is {env['DB_DRIVER']!r}: swarmops snapshots postgres or mysql")
    if env["DB_NAME"] != database:
        raise fail(("services", name, "x-swarmops", "migrates"), f"is {database!r} but the hook's DB_NAME is "
                   f"{env['DB_NAME']!r}: name the database the hook migrates")
    if env.get("DB_PORT") and not valid_port(env["DB_PORT"]):
        raise fail((*path, "DB_PORT"), f"is {env['DB_PORT']!r}, not a port number")
    if password_secret(svc) is None:
        raise fail((*path, "DB_PASSWORD_FILE"), f"is {env['DB_PASSWORD_FILE']!r}, not /run/secrets/NAME of one "
                   "of the hook's secrets: the snapshot job gets the password as the same Swarm secret")


def password_secret(svc: Service) -> int | None:
    """The index of the hook's secret that DB_PASSWORD_FILE names, if any."""
    wanted = svc.environment.get("DB_PASSWORD_FILE", "")
    for i, ref in enumerate(svc.secrets):
        target = ref.target or ref.source
        if wanted in (target, f"/run/secrets/{target}"):
            return i
    return None

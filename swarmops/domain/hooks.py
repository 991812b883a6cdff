"""Deploy hooks as data: a hook service of the stack rendered into the Engine API spec of a one-off Swarm job
(`replicated-job`, one task, restart condition none, no stack namespace label so that `--prune` leaves it
alone), whether a deploy runs it, and what running it gave back. Pure: render.py makes the RenderedHook,
the decision asks plan_hooks whether each runs and why, the jobs adapter creates exactly `job` and reports a
JobResult."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from swarmops.domain.compose.model import HookKind, Mount, Service

if TYPE_CHECKING:   # both import render.py, which imports this module
    from swarmops.domain.live import LiveStack
    from swarmops.domain.plan import Plan

LOG_TAIL = 20            # lines of a hook's log kept in the history
SHOWN_LINES = 5          # of them, in the error message (the status, notifications)
Fail = Callable[[tuple[str, ...], str], Exception]


@dataclass(frozen=True)
class RenderedHook:
    name: str                     # the service key in the stack file
    kind: HookKind
    timeout: float                # seconds
    image: str
    spec_hash: str                # of the hook as rendered (kind and timeout included): its own spec changed
    doc: dict[str, Any]           # the hook as a rendered service, plain data: what the policy judges
    job: dict[str, Any]           # the Engine API ServiceSpec the jobs adapter creates
    ignored: tuple[str, ...] = ()  # keys of a long-running service the job leaves out
    migrates: str | None = None   # a migration: the database it changes (a snapshot is taken before it runs)
    down: str | None = None       # the down hook that undoes the migration before a rollback across it


@dataclass(frozen=True)
class HookStep:
    """One hook of the commit in a deploy decision: whether it runs, and why."""

    hook: RenderedHook
    run: bool
    why: str


@dataclass(frozen=True)
class JobResult:
    """How one job ended: the task's last state (complete, failed, rejected ...; `timeout` when it had not
    ended in time and was removed), its exit code, Docker's words, and the last lines of its log."""

    state: str
    exit_code: int | None
    seconds: float
    log_tail: tuple[str, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "complete" and self.exit_code in (0, None)


@dataclass(frozen=True)
class HookRun:
    """A hook that ran, as the history keeps it."""

    name: str
    kind: HookKind
    commit: str
    result: JobResult

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "commit": self.commit, **asdict(self.result),
                "log_tail": list(self.result.log_tail)}

    def failure(self, deployed_before: bool) -> str:
        """The operator's sentence for a hook that did not succeed."""
        r = self.result
        if r.state == "timeout":
            what = f"did not finish within {r.seconds:.0f}s and was stopped ({r.message or 'still running'})"
        elif r.exit_code not in (None, 0):
            what = f"failed with exit code {r.exit_code} after {r.seconds:.1f}s"
        else:
            what = f"did not run: {r.message or r.state}"
        text = f"{self.kind} hook {self.name} {what}"
        if self.kind == "pre-deploy":
            text += f"; nothing of {self.commit[:12]} was deployed" + (
                ", the previous version keeps running" if deployed_before else "")
        shown = [line for line in r.log_tail if line.strip()][-SHOWN_LINES:]
        if shown:
            return f"{text}; last log lines: {' | '.join(shown)}"
        return f"{text}; its log is empty" + (f" (Docker: {r.message})" if r.message and r.state != "timeout" else "")


def plan_hooks(hooks: Mapping[str, RenderedHook], plan: Plan, live: LiveStack, heal: bool,
               retry: bool) -> tuple[HookStep, ...]:
    """A hook runs for a commit that changes a service's spec (created, updated or removed) or the hook's
    own spec (read from the services' hooks label: no local state); never to heal drift, never for a
    commit that only relabels. A retry of a failed commit runs them again, and says so."""
    if heal:
        return tuple(HookStep(h, False, "healing drift: hooks run only for a commit that changes a spec")
                     for h in hooks.values())
    changed = [c.service for c in plan.changes if c.action in ("create", "update", "remove")]
    before = live.hook_specs()
    steps = []
    for name, h in hooks.items():
        if h.kind == "down":
            steps.append(HookStep(h, False, "a down hook runs only before a rollback across its migration"))
            continue
        if changed:
            why = f"the commit changes {', '.join(changed)}"
        elif before.get(name) != h.spec_hash:
            why = "its own spec changed" if name in before else "the hook is new"
        else:
            steps.append(HookStep(h, False, "no service's spec and not its own changed (relabel only)"))
            continue
        if retry:
            why += "; this commit failed before: this retry runs the hook again"
        steps.append(HookStep(h, True, why))
    return tuple(steps)


def runs_to_json(runs: list[HookRun]) -> str:
    return json.dumps([r.to_dict() for r in runs], separators=(",", ":"))


def runs_from_json(text: str) -> list[dict[str, Any]]:
    """The history's hooks field; a copy cut short elsewhere reads as one entry with the raw text."""
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return [{"raw": text}]
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else [{"raw": text}]


def job_name(app: str, hook: str) -> str:
    return f"{app}_hook-{hook}"


def job_spec(svc: Service, name: str, labels: Mapping[str, str], volume_names: Mapping[str, str],
             fail: Fail) -> dict[str, Any]:
    """The ServiceSpec of the job for one rendered hook service (image set, role constraint added, secrets
    and external objects under their Swarm names). Secrets and configs are named; the adapter adds their
    ids. `fail(key_path, message)` makes the error for a value Swarm would not take."""
    rest = svc.rest
    container: dict[str, Any] = {"Image": svc.image}
    for key, field in (("entrypoint", "Command"), ("command", "Args")):
        if rest.get(key) is not None:
            container[field] = _words(rest[key], key, fail)
    if svc.environment:
        container["Env"] = [f"{k}={v}" for k, v in sorted(svc.environment.items())]
    if svc.labels:
        container["Labels"] = dict(sorted(svc.labels.items()))
    for key, field in (("user", "User"), ("working_dir", "Dir"), ("hostname", "Hostname")):
        if rest.get(key) is not None:
            container[field] = str(rest[key])
    for key, field in (("init", "Init"), ("read_only", "ReadOnly")):
        if rest.get(key) is not None:
            container[field] = bool(rest[key])
    for key, field in (("cap_add", "CapabilityAdd"), ("cap_drop", "CapabilityDrop")):
        if rest.get(key):
            container[field] = [str(c).upper() for c in rest[key]]
    if rest.get("extra_hosts"):
        container["Hosts"] = _hosts(rest["extra_hosts"], fail)
    if rest.get("stop_grace_period") is not None:
        grace = go_duration_ns(str(rest["stop_grace_period"]), ("stop_grace_period",), fail)
        if grace > MAX_STOP_GRACE_NS:   # the container of a removed job lives on for its grace period
            raise fail(("stop_grace_period",), "a hook must stop within 30s once its timeout passes; set "
                       "stop_grace_period to 30s or less")
        container["StopGracePeriod"] = grace
    if svc.volumes:
        container["Mounts"] = [_mount(m, volume_names, ("volumes", str(i)), fail) for i, m in enumerate(svc.volumes)]
    if svc.secrets:
        container["Secrets"] = [{"SecretName": r.source, "File": _file(r.target or r.source, r.uid, r.gid, r.mode)}
                                for r in svc.secrets]
    if svc.configs:
        container["Configs"] = [{"ConfigName": r.source,
                                 "File": _file(r.target or "/" + r.source, r.uid, r.gid, r.mode)}
                                for r in svc.configs]
    template: dict[str, Any] = {"ContainerSpec": container, "RestartPolicy": {"Condition": "none", "MaxAttempts": 0}}
    placement = svc.deploy.placement
    template["Placement"] = {k: v for k, v in (
        ("Constraints", [f"{c.key} {c.op} {c.value}" for c in placement.constraints]),
        ("Preferences", [{"Spread": {"SpreadDescriptor": s}} for s in placement.preferences]),
        ("MaxReplicas", placement.max_replicas_per_node)) if v}
    resources = _resources(svc.deploy.rest.get("resources") or {}, fail)
    if resources:
        template["Resources"] = resources
    if svc.networks:
        template["Networks"] = [{"Target": n.key, **({"Aliases": list(n.aliases)} if n.aliases else {})}
                                for n in svc.networks]
    logging = rest.get("logging")
    if isinstance(logging, dict) and logging.get("driver"):
        template["LogDriver"] = {"Name": str(logging["driver"]),
                                 "Options": {str(k): str(v) for k, v in (logging.get("options") or {}).items()}}
    return {"Name": name, "Labels": dict(labels), "TaskTemplate": template,
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}}


def _words(value: Any, key: str, fail: Fail) -> list[str]:
    """A command as the docker CLI reads it: a list as written, a string split like a shell would."""
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        return shlex.split(str(value))
    except ValueError as e:
        raise fail((key,), f"cannot split {value!r} into words: {e}") from None


def _hosts(value: Any, fail: Fail) -> list[str]:
    """extra_hosts (host:ip, as a list or a mapping) as the Engine's "ip host" lines."""
    pairs = value.items() if isinstance(value, dict) else (str(v).partition(":")[::2] for v in value)
    out = []
    for host, ip in pairs:
        if not host or not ip:
            raise fail(("extra_hosts",), f"{host}:{ip} is not host:address")
        out.append(f"{ip} {host}")
    return out


def _file(target: str, uid: str | None, gid: str | None, mode: int | None) -> dict[str, Any]:
    return {"Name": target, "UID": uid or "0", "GID": gid or "0", "Mode": 0o444 if mode is None else mode}


def _mount(m: Mount, volume_names: Mapping[str, str], path: tuple[str, ...], fail: Fail) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
    if m.type == "volume":
        if m.source:
            out["Source"] = volume_names.get(m.source, m.source)
        if (m.options.get("volume") or {}).get("nocopy"):
            out["VolumeOptions"] = {"NoCopy": True}
    elif m.type == "bind":
        out["Source"] = m.source
        propagation = (m.options.get("bind") or {}).get("propagation")
        if propagation:
            out["BindOptions"] = {"Propagation": str(propagation)}
    elif m.type == "tmpfs":
        size = (m.options.get("tmpfs") or {}).get("size")
        if size is not None:
            out["TmpfsOptions"] = {"SizeBytes": ram_bytes(size, (*path, "tmpfs", "size"), fail)}
    return out


def _resources(raw: dict[str, Any], fail: Fail) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, field in (("limits", "Limits"), ("reservations", "Reservations")):
        section = raw.get(kind) or {}
        unknown = set(section) - {"cpus", "memory", "pids"}
        if unknown:
            raise fail(("deploy", "resources", kind, sorted(unknown)[0]), "a hook takes cpus and memory only")
        entry: dict[str, int] = {}
        if section.get("cpus") is not None:
            entry["NanoCPUs"] = nano_cpus(section["cpus"], ("deploy", "resources", kind, "cpus"), fail)
        if section.get("memory") is not None:
            entry["MemoryBytes"] = ram_bytes(section["memory"], ("deploy", "resources", kind, "memory"), fail)
        if section.get("pids") is not None and kind == "limits":
            entry["Pids"] = int(section["pids"])
        if entry:
            out[field] = entry
    return out


_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
MAX_STOP_GRACE_NS = 30 * 10**9
_GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def ram_bytes(value: Any, path: tuple[str, ...], fail: Fail) -> int:
    """A size as the docker CLI reads one (go-units RAMInBytes: 512m, 1g, 100MB; powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _RAM.match(str(value).strip())
    if not m:
        raise fail(path, f"{value!r} is not a size like 512M or 1G")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index((m.group(2) or " ").lower()))


def nano_cpus(value: Any, path: tuple[str, ...], fail: Fail) -> int:
    try:
        cpus = float(str(value))
    except ValueError:
        raise fail(path, f"{value!r} is not a number of CPUs like 0.5") from None
    if cpus <= 0:
        raise fail(path, "must be more than 0")
    return round(cpus * 1e9)


def go_duration_ns(text: str, path: tuple[str, ...], fail: Fail) -> int:
    """A Go duration (1m30s, 500ms) in nanoseconds."""
    if text.strip() == "0":
        return 0
    parts = _GO_DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise fail(path, f"{text!r} is not a duration like 10s or 1m30s")
    return int(sum(float(n) * _GO_UNITS[u] for n, u in parts))

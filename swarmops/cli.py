"""The command line: the only place besides the daemon that prints or exits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from swarmops import __version__, actions, logs
from swarmops.config.loader import LoadedConfig, config_path, load_config
from swarmops.config.models import AppConfig
from swarmops.domain.stackfile import load_stack
from swarmops.domain.status import AppStatus, app_status
from swarmops.errors import SwarmopsError, UnknownAppError
from swarmops.reconciler import Outcome, Reconciler
from swarmops.runtime import make_adapters, make_reconciler, open_store


def _app(loaded: LoadedConfig, name: str) -> AppConfig:
    app = loaded.config.app(name)
    if app is None:
        known = ", ".join(a.name for a in loaded.config.apps) or "none"
        raise UnknownAppError(f"no app named {name!r} in {loaded.path} (apps: {known})")
    return app


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def cmd_daemon(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from swarmops.daemon import run_forever, run_once

    if args.once:
        outcomes = run_once(loaded)
        for o in outcomes:
            print(f"{o.app}: {o.result} {o.commit[:12] if o.commit else ''} {o.message}".rstrip())
        return 0 if all(o.ok for o in outcomes) and not loaded.app_errors else 1
    return run_forever(loaded)


def _reconciler(loaded: LoadedConfig) -> Reconciler:
    return make_reconciler(loaded.config, progress=lambda m: print(m, file=sys.stderr, flush=True))


def cmd_sync(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    outcome = actions.sync(_reconciler(loaded), _app(loaded, args.app), dry_run=args.dry_run)
    return _print_outcome(outcome, args.json)


def _print_outcome(outcome: Outcome, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"app": outcome.app, "result": outcome.result, "commit": outcome.commit,
                          "message": outcome.message,
                          "plan": outcome.plan.to_dict() if outcome.plan else None}, indent=2))
    else:
        if outcome.plan is not None:
            for b in outcome.plan.builds:
                print(f"  build   {b.service:20} {b.image}  ({b.reason})")
            for c in outcome.plan.changes:
                print(f"  {c.action:9} {c.service:20} {c.reason}")
        print(f"{outcome.app}: {outcome.result} {outcome.commit[:12] if outcome.commit else ''} "
              f"{outcome.message}".rstrip())
    return 0 if outcome.ok else 1


def cmd_pause(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    print(actions.pause(_reconciler(loaded), _app(loaded, args.app)))
    return 0


def cmd_resume(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    print(actions.resume(_reconciler(loaded), _app(loaded, args.app)))
    return 0


def cmd_rollback(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    return _print_outcome(actions.rollback(_reconciler(loaded), _app(loaded, args.app), args.to), args.json)


def cmd_diff(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    head, diffs = actions.diff(_reconciler(loaded), _app(loaded, args.app))
    if args.json:
        print(json.dumps(actions.diff_to_json(head, diffs), indent=2, default=str))
        return 0
    print(f"{args.app}: git {head[:12]} against the live services")
    for d in diffs:
        print(f"  {d.service}: {d.action} ({d.reason})")
        for name, want, have in d.fields:
            print(f"      {name}: git {want!r}  live {have!r}")
    return 0


def _statuses(loaded: LoadedConfig) -> list[AppStatus]:
    adapters = make_adapters(loaded.config)
    live = adapters.reader.read_all()
    out = []
    for app in loaded.config.apps:
        last = adapters.store.last_deploy(app.name)
        state = adapters.store.app_state(app.name)
        out.append(app_status(app.name, live.get(app.name), state.paused, last.result if last else None,
                              last.ended if last else None, state.last_error, head=state.last_head or None,
                              drift=state.drift))
    known = {a.name for a in loaded.config.apps}
    for name, stack in sorted(live.items()):
        if name not in known and any(s.managed for s in stack.services.values()):
            base = app_status(name, stack, False, None, None, "")
            out.append(AppStatus(name, "Removed", base.commit, None, None,
                                 "no longer in the config; left running unless prune_removed_apps is true",
                                 base.services))
    return out


def cmd_status(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    statuses = _statuses(loaded)
    if args.json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
        return 0
    print(f"{'APP':20} {'STATUS':12} {'COMMIT':12} {'DEPLOYED AT':19} {'RESULT':11} SERVICES")
    for s in statuses:
        svcs = "; ".join(f"{x.name} {x.running}/{x.desired if x.desired is not None else '-'}"
                         f" on {','.join(x.nodes) or '-'}" for x in s.services) or "-"
        print(f"{s.app:20} {s.status:12} {(s.commit or '-')[:12]:12} {_when(s.deployed_at):19} "
              f"{s.last_result or '-':11} {svcs}")
        if s.message:
            print(f"{'':20} {s.message}")
        for svc in s.services:
            if svc.last_error:
                print(f"{'':20} {svc.name}: {svc.last_error}")
    return 0


def cmd_history(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    app = _app(loaded, args.app)
    store = open_store(loaded.config)
    deploys = store.history(app.name, args.limit)
    if args.json:
        print(json.dumps([d.to_dict() for d in deploys], indent=2))
        return 0
    print(f"{'ID':>5} {'STARTED':19} {'COMMIT':12} {'TRIGGER':8} {'RESULT':11} {'DUR':>6} {'AUTHOR':16} MESSAGE")
    for d in deploys:
        dur = f"{d.ended - d.started:.1f}s" if d.ended else "-"
        print(f"{d.id:>5} {_when(d.started):19} {d.commit_sha[:12]:12} {d.trigger:8} {d.result:11} {dur:>6} "
              f"{d.author[:16]:16} {d.message}")
        if d.error:
            print(f"{'':5} {d.error}")
        if d.builds:
            print(f"{'':5} built: {d.builds}")
    return 0


def cmd_validate(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    problems = [str(e) for e in loaded.app_errors]
    apps = [_app(loaded, args.app)] if args.app else (loaded.config.apps if args.stacks else [])
    for app in apps:
        try:
            reconciler = make_reconciler(loaded.config)
            source = reconciler.source(app)
            head = source.head()
            source.ensure(head)
            load_stack(source.read(head, app.stack).decode("utf-8"), app.stack, app.allow_empty)
            print(f"{app.name}: stack {app.stack} at {head[:12]} is valid")
        except SwarmopsError as e:
            problems.append(f"{app.name}: {e}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"{loaded.path}: valid ({len(loaded.config.apps)} app(s))")
    return 2 if problems else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmops", description="GitOps deployer for Docker Swarm")
    p.add_argument("--version", action="version", version=f"swarmops {__version__}")
    p.add_argument("--config", help="config file (default $SWARMOPS_CONFIG or /etc/swarmops/swarmops.yml)")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("daemon", help="reconcile every app on its interval")
    d.add_argument("--once", action="store_true", help="one reconcile of every app, then exit")
    s = sub.add_parser("sync", help="reconcile one app now")
    s.add_argument("app")
    s.add_argument("--dry-run", action="store_true", help="print the plan; build and deploy nothing")
    s.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="every app with its services")
    st.add_argument("--json", action="store_true")
    h = sub.add_parser("history", help="an app's deploys")
    h.add_argument("app")
    h.add_argument("--limit", type=int, default=30)
    h.add_argument("--json", action="store_true")
    for name, text in (("pause", "suspend auto-sync of an app"), ("resume", "resume auto-sync of an app")):
        sub.add_parser(name, help=text).add_argument("app")
    r = sub.add_parser("rollback", help="deploy an earlier good commit and suspend auto-sync")
    r.add_argument("app")
    r.add_argument("--to", help="commit (or prefix) of a successful deploy; default: the one before")
    r.add_argument("--json", action="store_true")
    df = sub.add_parser("diff", help="what git renders now against the live services, field by field")
    df.add_argument("app")
    df.add_argument("--json", action="store_true")
    v = sub.add_parser("validate", help="check the config (and stack files) without deploying")
    v.add_argument("--app", help="also fetch and check this app's stack file")
    v.add_argument("--stacks", action="store_true", help="also fetch and check every app's stack file")
    return p


COMMANDS: dict[str, Any] = {"daemon": cmd_daemon, "sync": cmd_sync, "status": cmd_status,
                            "history": cmd_history, "validate": cmd_validate, "pause": cmd_pause,
                            "resume": cmd_resume, "rollback": cmd_rollback, "diff": cmd_diff}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.setup(args.log_level.upper(), json_lines=None if args.command == "daemon" else False)
    if args.command != "daemon":
        logging.getLogger("swarmops.reconcile").setLevel("WARNING")
    try:
        loaded = load_config(config_path(args.config))
        code: int = COMMANDS[args.command](args, loaded)
        return code
    except SwarmopsError as e:
        print(f"swarmops: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130

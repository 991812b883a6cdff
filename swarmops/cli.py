"""The command line: the only place besides the daemon that prints or exits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from swarmops import __version__
from swarmops.adapters import age as secrets
from swarmops.adapters.tokens import TokenStore
from swarmops.cli_backups import add_parser as add_backup_parser
from swarmops.cli_backups import cmd_backup
from swarmops.cli_promote import add_parser as add_promote_parser
from swarmops.cli_promote import cmd_promote
from swarmops.cli_stacks import app_named, cmd_policy, cmd_render, cmd_validate
from swarmops.config.loader import LoadedConfig, config_path, load_config
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain import decide
from swarmops.domain.hooks import runs_from_json
from swarmops.domain.migrations import snapshots_from_json
from swarmops.domain.status import AppStatus, app_status, removed_apps
from swarmops.errors import BootstrapError, SecretError, SwarmopsError
from swarmops.ops import actions, bootstrap, nodeops
from swarmops.reconcile.events import Outcome
from swarmops.reconcile.reconciler import Reconciler
from swarmops.runtime import history_copy, make_adapters, make_reconciler, open_store
from swarmops.util import logs
from swarmops.util.redact import TerminalSafe, redact_url


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def cmd_daemon(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from swarmops.daemon.main import run_forever, run_once

    if args.once:
        outcomes = run_once(loaded)
        for o in outcomes:
            print(f"{o.app}: {o.result} {o.commit[:12] if o.commit else ''} {o.message}".rstrip())
        return 0 if all(o.ok for o in outcomes) and not loaded.app_errors else 1
    return run_forever(loaded)


def _reconciler(loaded: LoadedConfig) -> Reconciler:
    return make_reconciler(loaded.config, progress=lambda m: print(m, file=sys.stderr, flush=True))


def cmd_sync(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    outcome = actions.sync(_reconciler(loaded), app_named(loaded, args.app), dry_run=args.dry_run,
                           actor=actions.cli_actor())
    return _print_outcome(outcome, args.json)


def _print_outcome(outcome: Outcome, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"app": outcome.app, "result": outcome.result, "commit": outcome.commit,
                          "message": outcome.message, "error_kind": outcome.error_kind or None,
                          "rolled_back_to": outcome.rolled_back_to or None,
                          "plan": outcome.plan.to_dict() if outcome.plan else None,
                          "decision": decide.to_dict(outcome.decision) if outcome.decision else None}, indent=2))
    else:
        if outcome.plan is not None:
            for b in outcome.plan.builds:
                print(f"  build   {b.service:20} {b.image}  ({b.reason})")
            for c in outcome.plan.changes:
                print(f"  {c.action:9} {c.service:20} {c.reason}")
        if isinstance(outcome.decision, decide.Deploy):
            for step in outcome.decision.work.hooks:
                h = step.hook
                print(f"  hook      {h.name:20} {h.kind}, {'runs' if step.run else 'skipped'}: {step.why} "
                      f"(job {h.job['Name']}, {h.image}, at most {h.timeout:g}s)")
        print(f"{outcome.app}: {outcome.result} {outcome.commit[:12] if outcome.commit else ''} "
              f"{outcome.message}".rstrip())
    return 0 if outcome.ok else 1


def cmd_pause(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    print(actions.pause(open_store(loaded.config), app_named(loaded, args.app)))
    return 0


def cmd_resume(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    print(actions.resume(open_store(loaded.config), app_named(loaded, args.app)))
    return 0


def cmd_rollback(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    return _print_outcome(actions.rollback(_reconciler(loaded), app_named(loaded, args.app), args.to,
                                           args.across_migrations, actions.cli_actor()), args.json)


def cmd_diff(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    head, diffs = actions.diff(_reconciler(loaded), app_named(loaded, args.app))
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
    store = open_store(loaded.config)
    live = make_adapters(loaded.config, store).reader.read_all()
    out = []
    for app in loaded.config.apps:
        out.append(status_from_store(store, app.name, live.get(app.name), app))
    known = {a.name for a in loaded.config.apps}
    for name in removed_apps(live, known, lambda app: store.last_deploy(app) is not None):
        base = app_status(name, live[name], False, None, None, "")
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
        print(f"{s.label:20} {s.status:12} {(s.commit or '-')[:12]:12} {_when(s.deployed_at):19} "
              f"{s.last_result or '-':11} {svcs}")
        if s.message:
            print(f"{'':20} {s.message}")
        if s.last_fault and s.fault_cleared_at:
            print(f"{'':20} last fault {_when(s.last_fault_at)}, cleared {_when(s.fault_cleared_at)}: {s.last_fault}")
        for svc in s.services:
            if svc.last_error:
                print(f"{'':20} {svc.name}: {svc.last_error}")
        if s.backup_at is not None:
            print(f"{'':20} last backup {_when(s.backup_at)} {s.backup_result}: {s.backup_message}")
    return 0


def cmd_history(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    app = app_named(loaded, args.app)
    store = open_store(loaded.config)
    try:   # with what other managers recorded (the Swarm's history copy)
        history_copy(loaded.config, store).restore(app.name)
    except SwarmopsError as e:
        logging.getLogger("swarmops.cli").warning("history from this manager's database only: %s", e)
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
        for run in runs_from_json(d.hooks):
            print(f"{'':5} hook: " + (f"{run['kind']} {run['name']} {run['state']}, exit code {run['exit_code']}, "
                                      f"{run['seconds']:.1f}s" if "name" in run else str(run.get("raw", ""))))
        for snap in snapshots_from_json(d.snapshots):
            print(f"{'':5} snapshot: {snap.id} of database {snap.database.name} before migration {snap.hook}"
                  + ("" if snap.migrated else " (the migration did not succeed)"))
    return 0


def cmd_keygen(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    public = secrets.keygen(loaded.config.state_dir, force=args.force)
    print(f"private key: {loaded.config.state_dir / secrets.KEY_FILE} (mode 0600, stays on the manager)")
    print(f"public key (give it to developers, or put it in each repo as {secrets.RECIPIENT_FILE}):")
    print(public)
    return 0


def cmd_secret(args: argparse.Namespace, loaded: LoadedConfig | None) -> int:
    state_dir = loaded.config.state_dir if loaded else None
    recipient = secrets.find_recipient(args.recipient, Path.cwd(), state_dir)
    if args.secret_command == "rekey":
        if state_dir is None:
            raise SecretError("rekey decrypts with the daemon's key: run it on the manager, with its config")
        for path in secrets.rekey(Path("secrets"), args.app, secrets.load_identity(state_dir), recipient):
            print(path)
        return 0
    for name in (args.app, args.name):
        if not secrets.NAME.match(name):
            raise SecretError(f"{name!r} is not a name: use letters, digits, '-' and '_'")
    plaintext = sys.stdin.buffer.read()
    if not plaintext:
        raise SecretError("nothing on standard input: pipe the secret value into this command")
    ciphertext = secrets.encrypt(recipient, secrets.seal(args.app, args.name, plaintext))
    if args.output == "-":
        sys.stdout.buffer.write(ciphertext)
        return 0
    out = Path(args.output) if args.output else Path("secrets") / f"{args.name}.age"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(ciphertext)
    print(out)
    print(f"reference it in the stack: secrets: {{{args.name}: {{file: {out}}}}}", file=sys.stderr)
    return 0


def cmd_templates(args: argparse.Namespace, loaded: LoadedConfig | None) -> int:
    source, ref = bootstrap.template_source(loaded.config if loaded else None)
    infos = bootstrap.list_templates(source, ref)
    if args.json:
        print(json.dumps([asdict(t) for t in infos], indent=2, default=str))
        return 0
    print(f"templates from {redact_url(source)}{f' at {ref}' if ref else ''}:")
    for t in infos:
        print(f"\n{t.name}")
        for v in t.variables:
            choices = f" [{'|'.join(v.choices)}]" if v.choices else ""
            print(f"  {v.name:14} {v.help}{choices} (default: {v.default!r})")
    return 0


def cmd_new(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    sets = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise BootstrapError(f"--set {item!r}: write it as key=value")
        sets[key] = value
    made = bootstrap.new_app(loaded.config, args.app, args.template, args.remote, sets, branch=args.branch)
    print(f"{made.app}: first commit {made.commit[:12]} pushed to {redact_url(args.remote)} ({args.branch})")
    for note in made.notes:
        print(f"note: {note}", file=sys.stderr)
    if made.app_file:
        print(f"{made.app}: wrote {made.app_file}; the daemon deploys it on its next poll")
    else:
        print("no apps_dir in the config; add this entry under apps:")
        print(json.dumps(made.entry, indent=2))
    return 0


def cmd_nodes(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if args.nodes_command == "label":
        changes, unreachable = nodeops.label_nodes(loaded.config, dry_run=args.dry_run)
        verb = "would set" if args.dry_run else "set"
        for c in changes:
            print(f"{c.node}: {verb} {loaded.config.role_label}={c.after} (was {c.before or 'unset'})")
        if not changes:
            print("every reachable node carries its role label")
        for u in unreachable:
            print(f"error: {u}", file=sys.stderr)
        return 1 if unreachable else 0
    rows = nodeops.check_nodes(loaded.config)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(f"{'NODE':14} {'ADDRESS':16} {'SSH':4} {'DOCKER':16} {'SWARM':8} {'ROLE':9} {'REGISTRY':8} "
              f"{'FREE DISK':10} {'CLOCK':7} RESULT")
        for r in rows:
            print(f"{r.name:14} {r.address:16} {'yes' if r.reachable else 'NO':4} {r.docker[:16]:16} {r.swarm:8} "
                  f"{r.role:9} {r.registry:8} {r.free_disk:10} {r.clock_skew:7} {'ok' if r.ok else 'FAIL'}")
            for p in r.problems:
                print(f"{'':14} - {p}")
    return 0 if all(r.ok for r in rows) else 1


def cmd_token(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    store = TokenStore(loaded.config.state_dir / "tokens.json")
    if args.token_command == "create":
        may = [m.strip() for m in args.may.split(",")] if args.may else None
        token = store.create(args.name, args.scope, args.app or None, may)
        limits = (f" for {', '.join(args.app)}" if args.app else "") + (f", may {', '.join(may)}" if may else "")
        print(f"token {args.name!r} ({args.scope}{limits}); it is shown once, store it now:")
        print(token)
    elif args.token_command == "list":
        for r in store.list():
            limits = (f" apps {','.join(r.apps)}" if r.apps else "") + (f" may {','.join(r.may)}" if r.may else "")
            print(f"{r.name:20} {r.scope:7} created {_when(r.created)}{limits}")
    else:
        store.revoke(args.name)
        print(f"token {args.name!r} revoked")
    return 0


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
    r.add_argument("--across-migrations", action="store_true",
                   help="roll back to a commit older than a migration that succeeded (its code fits the schema, "
                        "or the snapshot was restored)")
    r.add_argument("--json", action="store_true")
    df = sub.add_parser("diff", help="what git renders now against the live services, field by field")
    df.add_argument("app")
    df.add_argument("--json", action="store_true")
    k = sub.add_parser("keygen", help="make the daemon's age key pair for app secrets")
    k.add_argument("--force", action="store_true", help="replace an existing key")
    sec = sub.add_parser("secret", help="app secrets").add_subparsers(dest="secret_command", required=True)
    enc = sec.add_parser("encrypt", help="encrypt stdin to secrets/NAME.age in the app's checkout")
    enc.add_argument("app")
    enc.add_argument("name")
    enc.add_argument("--recipient", help="age public key (default: $SWARMOPS_AGE_RECIPIENT, "
                                         ".swarmops-recipient, or the manager's key)")
    enc.add_argument("--output", help="file to write, or - for stdout (default secrets/NAME.age)")
    rk = sec.add_parser("rekey", help="in an app's checkout, on the manager: bind every secrets/NAME.age made "
                                      "before secrets were bound to their app and name")
    rk.add_argument("app")
    rk.add_argument("--recipient", help="age public key (default as for encrypt)")
    pol = sub.add_parser("policy", help="policy checks").add_subparsers(dest="policy_command", required=True)
    pc = pol.add_parser("check", help="check a stack file offline, as the daemon would")
    pc.add_argument("file")
    pc.add_argument("--profile", choices=["restricted", "privileged"], default=None)
    pc.add_argument("--app", help="app name (default: the file's directory name)")
    pc.add_argument("--role", default="app")
    pc.add_argument("--registry", help="the private registry (default: from the config, or registry.local:5000)")
    tl = sub.add_parser("templates", help="list the app templates and their variables")
    tl.add_argument("--json", action="store_true")
    nw = sub.add_parser("new", help="make a new app repo from a template and push its first commit")
    nw.add_argument("app")
    nw.add_argument("--template", required=True)
    nw.add_argument("--remote", required=True, help="an empty git remote (ssh, https or file)")
    nw.add_argument("--branch", default="main")
    nw.add_argument("--set", action="append", metavar="KEY=VALUE", help="a template variable (repeatable)")
    nodes = sub.add_parser("nodes", help="the VMs of the inventory").add_subparsers(dest="nodes_command",
                                                                                      required=True)
    nc = nodes.add_parser("check", help="check every node over SSH")
    nc.add_argument("--json", action="store_true")
    nl = nodes.add_parser("label", help="set the role labels the inventory expects")
    nl.add_argument("--dry-run", action="store_true")
    tok = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    tc = tok.add_parser("create", help="make a token; printed once, only its hash is kept")
    tc.add_argument("name")
    tc.add_argument("--scope", choices=["read", "deploy"], required=True)
    tc.add_argument("--app", action="append", help="limit it to apps matching this (shop, shop/staging, shop/*); "
                                                   "again for more")
    tc.add_argument("--may", help="a deploy token's actions, comma-separated (sync, pause, resume, rollback, "
                                  "promote; default all)")
    tok.add_parser("list", help="the tokens' names and scopes")
    tr = tok.add_parser("revoke", help="delete a token")
    tr.add_argument("name")
    rd = sub.add_parser("render", help="print the stack file a deploy would hand to docker, without deploying")
    rd.add_argument("app")
    rd.add_argument("--commit", help="a commit of the app's branch (default: its head)")
    v = sub.add_parser("validate", help="check the config (and stack files) without deploying")
    v.add_argument("--app", help="also fetch and check this app's stack file")
    v.add_argument("--stacks", action="store_true", help="also fetch and check every app's stack file")
    add_backup_parser(sub)
    add_promote_parser(sub)
    return p


COMMANDS: dict[str, Any] = {"daemon": cmd_daemon, "sync": cmd_sync, "promote": cmd_promote, "status": cmd_status,
                            "history": cmd_history, "validate": cmd_validate, "pause": cmd_pause,
                            "resume": cmd_resume, "rollback": cmd_rollback, "diff": cmd_diff, "keygen": cmd_keygen,
                            "new": cmd_new, "nodes": cmd_nodes, "token": cmd_token, "render": cmd_render,
                            "backup": cmd_backup}
# commands that work without a config file (developers run them in their own checkout or CI)
OFFLINE: dict[str, Any] = {"secret": cmd_secret, "policy": cmd_policy, "templates": cmd_templates}


def main(argv: Sequence[str] | None = None) -> int:
    if not isinstance(sys.stdout, TerminalSafe):
        sys.stdout, sys.stderr = TerminalSafe(sys.stdout), TerminalSafe(sys.stderr)
    args = parser().parse_args(argv)
    daemon = args.command == "daemon"
    logs.setup(args.log_level.upper(), json_lines=None if daemon else False, to_stdout=daemon)
    if args.command != "daemon":
        logging.getLogger("swarmops.reconcile").setLevel("WARNING")
    try:
        if args.command in OFFLINE:
            path = config_path(args.config)
            loaded_or_none = load_config(path) if (args.config or path.exists()) else None
            offline: int = OFFLINE[args.command](args, loaded_or_none)
            return offline
        loaded = load_config(config_path(args.config))
        code: int = COMMANDS[args.command](args, loaded)
        return code
    except SwarmopsError as e:
        print(f"swarmops: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # output piped into head or less that closed early
        return 0

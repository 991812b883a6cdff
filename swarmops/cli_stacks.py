"""The commands that read stack files without deploying: validate, policy check, render. None of them
needs the Engine or the registry."""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import threading
from pathlib import Path

from swarmops.config.loader import LoadedConfig
from swarmops.config.models import AppConfig, Config
from swarmops.domain.render import referenced_files
from swarmops.errors import StackError, SwarmopsError, UnknownAppError
from swarmops.ops.policycheck import load_from_disk, offline_policy_check, render_offline
from swarmops.reconcile.gather import FILE_LIMIT, git_source, read_stack


def app_named(loaded: LoadedConfig, name: str) -> AppConfig:
    """The app by its name (its stack's), or an environment of one as APP/ENV."""
    group, _, env = name.partition("/")
    app = loaded.config.app(name) if not env else next(
        (a for a in loaded.config.apps if a.group == group and a.environment == env), None)
    if app is None:
        known = ", ".join(a.name for a in loaded.config.apps) or "none"
        raise UnknownAppError(f"no app named {name!r} in {loaded.path} (apps: {known})")
    return app


def cmd_validate(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    problems = [str(e) for e in loaded.app_errors]
    apps = [app_named(loaded, args.app)] if args.app else (loaded.config.apps if args.stacks else [])
    for app in apps:
        try:
            source = git_source(loaded.config, app, threading.Semaphore(1))
            head = source.head()
            source.ensure(head)
            stack = read_stack(loaded.config, app, source, head)
            found = offline_policy_check(loaded.config, app, stack, None)
            for v in found:
                print(f"{app.name}: {'error' if v.severity == 'deny' else 'warning'}: {v}")
            if any(v.severity == "deny" for v in found):
                problems.append(f"{app.name}: stack {app.stack} at {head[:12]} breaks the policy")
                continue
            print(f"{app.name}: stack {app.stack} at {head[:12]} is valid and passes the policy")
        except SwarmopsError as e:
            problems.append(f"{app.name}: {e}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"{loaded.path}: valid ({len(loaded.config.apps)} app(s))")
    return 2 if problems else 0


def cmd_policy(args: argparse.Namespace, loaded: LoadedConfig | None) -> int:
    """Offline policy check of a stack file in a checkout, the same rules the daemon applies."""
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StackError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from e
    app_name = args.app or path.resolve().parent.name.lower()
    app = loaded.config.app(app_name) if loaded else None
    config = loaded.config if loaded else Config.model_validate({"registry": args.registry or "registry.local:5000"})
    if app is None:
        app = AppConfig.model_validate({"name": app_name, "repo": "file:///dev/null", "role": args.role})
    inside = not (path.is_absolute() or ".." in path.parts)
    root, shown = (Path.cwd(), args.file) if inside else (path.parent, path.name)   # paths are repo-relative
    stack = load_from_disk(config, app, text, shown, root)
    found = offline_policy_check(config, app, stack, args.profile)
    for v in found:
        print(f"{'error' if v.severity == 'deny' else 'warning'}: {v}")
    denied = [v for v in found if v.severity == "deny"]
    print(f"{path}: {len(denied)} violation(s), {len(found) - len(denied)} warning(s)")
    return 1 if denied else 0


def cmd_render(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """The file a deploy of the commit would hand to `docker stack deploy`. Image tags are the commit's
    own (a deploy reuses an earlier tag when the registry has an image with the same build inputs) and
    age secrets show placeholder names: nothing is decrypted."""
    app = app_named(loaded, args.app)
    source = git_source(loaded.config, app, threading.Semaphore(1))
    head = source.head()
    source.ensure(head)
    commit = head
    if args.commit:
        if not re.fullmatch(r"[0-9a-f]{4,40}", args.commit):
            raise UnknownAppError(f"--commit {args.commit!r}: give a commit id (hex)")
        commit = source.info(args.commit).sha
    stack = read_stack(loaded.config, app, source, commit)
    digests = {p: hashlib.sha256(source.read(commit, p, FILE_LIMIT)).hexdigest() for p in referenced_files(stack)}
    sys.stdout.write(render_offline(loaded.config, app, stack, commit, digests).text)
    return 0

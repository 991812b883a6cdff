"""`swarmops backup run APP`, `swarmops backup list APP` and `swarmops backup restore APP ID [--yes]`."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from swarmops.cli_stacks import app_named
from swarmops.config.loader import LoadedConfig
from swarmops.domain.backups import VOLUME_ID
from swarmops.errors import ConfigError
from swarmops.ops import backups
from swarmops.runtime import make_adapters, open_store


def add_parser(sub: Any) -> None:
    b = sub.add_parser("backup", help="an app's database snapshots").add_subparsers(dest="backup_command",
                                                                                   required=True)
    brun = b.add_parser("run", help="back up the databases of the app's backup entry now, then apply its keep")
    brun.add_argument("app")
    brun.add_argument("--json", action="store_true")
    bl = b.add_parser("list", help="the snapshots in the backup store, newest first")
    bl.add_argument("app")
    bl.add_argument("--json", action="store_true")
    br = b.add_parser("restore", help="pause the app, restore a snapshot into its database, resume")
    br.add_argument("app")
    br.add_argument("id")
    br.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def cmd_backup(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    app = app_named(loaded, args.app)
    store = open_store(loaded.config)
    adapters = make_adapters(loaded.config, store)
    store_adapter = adapters.backups
    cancel = threading.Event()
    if args.backup_command == "run":
        reader = adapters.reader
        run = backups.run_backup(store, store_adapter, lambda name: backups.read_for_backup(reader, app), app,
                                 "manual", cancel, volumes=adapters.volumes)
        if args.json:
            print(json.dumps({"app": run.app, "ok": run.ok, "started": run.started, "message": run.message,
                              "snapshots": [s.to_dict() for s in run.snapshots]}))
        else:
            print(f"{app.name}: backup {'succeeded' if run.ok else 'failed'}: {run.message}")
        return 0 if run.ok else 1
    if args.backup_command == "list":
        found = backups.list_snapshots(store, store_adapter, app, cancel, adapters.volumes)
        if args.json:
            print(json.dumps([{"id": f.file.id, "bytes": f.file.size, "written": f.file.modified,
                               "kind": ("migration" if f.record.hook else "backup") if f.record else
                               "volume" if VOLUME_ID.match(f.file.id) else None,
                               "hook": f.record.hook or None if f.record else None,
                               "commit": f.record.commit if f.record else None,
                               "database": f.record.database.name if f.record else None} for f in found]))
            return 0
        for f in found:
            about = f.record.about if f.record else _unrecorded(f.file.id)
            written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.file.modified))
            print(f"{f.file.id}  {written}  {f.file.size} bytes  {about}")
        if not found:
            print(f"{app.name}: no snapshots in the backup store")
        return 0
    if not args.yes:
        record = backups.recorded(store, app.name).get(args.id)
        target = f"database {record.database.name}" if record else "its database"
        if VOLUME_ID.match(args.id):
            target = f"volume {args.id.split('-volume-', 1)[1]}"
        if not sys.stdin.isatty():
            raise ConfigError(f"restoring {args.id} replaces the tables of {target} of {app.name}; pass --yes to "
                              "do so without a terminal")
        answer = input(f"restore snapshot {args.id} into {target} of {app.name}? What it holds is replaced by the "
                       f"snapshot's, and {app.name} is paused meanwhile. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing restored")
            return 1
    reader = adapters.reader
    print(backups.restore(store, store_adapter, app, args.id, cancel, adapters.volumes,
                          lambda name: reader.read_app(name)))
    return 0


def _unrecorded(snapshot: str) -> str:
    if VOLUME_ID.match(snapshot):
        return f"archive of volume {snapshot.split('-volume-', 1)[1]}"
    return "not in this history"

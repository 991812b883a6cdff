"""`swarmops promote APP --from ENV --to ENV`: the target environment moved to what the source runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from swarmops.config.loader import LoadedConfig
from swarmops.ops import actions
from swarmops.ops.promote import promote
from swarmops.runtime import make_adapters, make_reconciler, open_store


def add_parser(sub: Any) -> None:
    p = sub.add_parser("promote", help="move an environment to the commit another one runs and converged on")
    p.add_argument("app")
    p.add_argument("--from", dest="source", default="staging", help="the environment whose commit moves")
    p.add_argument("--to", dest="target", default="production", help="the environment it moves to")
    p.add_argument("--tag", help="the new tag, for a target following tags (default: the highest one's last "
                                 "number plus one)")
    p.add_argument("--json", action="store_true")


def cmd_promote(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    config = loaded.config
    store = open_store(config)
    adapters = make_adapters(config, store)
    promotion, moved = promote(config, store, adapters.reader.read_app, adapters.sources, args.app, args.source,
                               args.target, args.tag)
    print(moved, file=sys.stderr, flush=True)
    reconciler = make_reconciler(config, adapters, progress=lambda m: print(m, file=sys.stderr, flush=True))
    outcome = actions.sync(reconciler, promotion.target, actor=actions.cli_actor())
    if args.json:
        print(json.dumps({"app": args.app, "from": args.source, "to": args.target, "commit": promotion.commit,
                          "result": outcome.result, "message": outcome.message}))
    else:
        print(f"{promotion.target.name}: {outcome.result} {promotion.commit[:12]} {outcome.message}".rstrip())
    return 0 if outcome.ok else 1

"""Benchmarks on the lab. Each prints a table and a JSON line, with its baseline measured in the same run.

  python -m bench docs [--runs N]     docs-only commit against a full rebuild of the same app
  python -m bench scale --apps N      no-change cycle over N apps against the ls-remote floor and a fetch loop
"""

from __future__ import annotations

import argparse

from bench import docs_commit, scale


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="case", required=True)
    d = sub.add_parser("docs", help="docs-only commit vs full rebuild")
    d.add_argument("--runs", type=int, default=3)
    sc = sub.add_parser("scale", help="N apps: no-change cycle, first deploy, idle")
    sc.add_argument("--apps", type=int, default=50)
    sc.add_argument("--idle", type=float, default=0.0, help="seconds of idle measurement (300 for the report)")
    args = p.parse_args()
    if args.case == "docs":
        docs_commit.report(docs_commit.run(args.runs))
    else:
        scale.report(scale.run(args.apps, args.idle))
    return 0


raise SystemExit(main())

"""Benchmarks on the lab. Each prints a table and a JSON line, with its baseline measured in the same run.

  python -m bench docs [--runs N]     docs-only commit against a full rebuild of the same app
"""

from __future__ import annotations

import argparse

from bench import docs_commit


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="case", required=True)
    d = sub.add_parser("docs", help="docs-only commit vs full rebuild")
    d.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    if args.case == "docs":
        docs_commit.report(docs_commit.run(args.runs))
    return 0


raise SystemExit(main())

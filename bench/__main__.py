"""Benchmarks on the lab. Each prints a table and a JSON line, with its baseline measured in the same run.

  python -m bench docs [--runs N]     docs-only commit against a full rebuild of the same app
  python -m bench scale --apps N      no-change cycle over N apps against the ls-remote floor and a fetch loop
  python -m bench commit [--runs N]   one commit to running: swarmops against the same steps by hand
  python -m bench webhook --apps N    webhook to reconcile start and to synced, one push and N at once, vs a poll
  python -m bench restart --apps N    the daemon started again over N synced apps, vs the no-change cycle
  python -m bench fuzz --minutes N    garbled configs, stack files and webhooks for N minutes: no crash (no lab)
"""

from __future__ import annotations

import argparse

from bench import commit, docs_commit, restart, scale, webhook


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="case", required=True)
    d = sub.add_parser("docs", help="docs-only commit vs full rebuild")
    d.add_argument("--runs", type=int, default=3)
    sc = sub.add_parser("scale", help="N apps: no-change cycle, first deploy, idle")
    sc.add_argument("--apps", type=int, default=50)
    sc.add_argument("--idle", type=float, default=0.0, help="seconds of idle measurement (300 for the report)")
    c = sub.add_parser("commit", help="one commit to running vs the same steps by hand")
    c.add_argument("--runs", type=int, default=3)
    w = sub.add_parser("webhook", help="webhook latency: one push, N pushes at once, against a poll")
    w.add_argument("--apps", type=int, default=100)
    w.add_argument("--polled", type=int, default=10, help="apps whose commit is left to the poll")
    w.add_argument("--interval", type=float, default=30.0, help="poll interval (s) of the poll case")
    r = sub.add_parser("restart", help="the daemon started again over N synced apps: first check, Engine calls")
    r.add_argument("--apps", type=int, default=50)
    r.add_argument("--rounds", type=int, default=restart.ROUNDS)
    f = sub.add_parser("fuzz", help="the unit suite's fuzz cases for N minutes (no lab)")
    f.add_argument("--minutes", type=float, default=10.0)
    args = p.parse_args()
    if args.case == "fuzz":
        from bench import fuzz  # hypothesis and the unit tests, not the lab

        return 0 if fuzz.report(fuzz.run(args.minutes)) else 1
    if args.case == "docs":
        docs_commit.report(docs_commit.run(args.runs))
    elif args.case == "commit":
        commit.report(commit.run(args.runs))
    elif args.case == "restart":
        restart.report(restart.run(args.apps, args.rounds))
    elif args.case == "webhook":
        webhook.report(webhook.run(args.apps, polled=args.polled, interval=args.interval))
    else:
        scale.report(scale.run(args.apps, args.idle))
    return 0


raise SystemExit(main())

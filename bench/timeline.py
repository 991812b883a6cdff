"""Where the suite's time went: reads test-output/timeline.tsv (tests/conftest.py writes it) and prints,
per worker, its busy time and the files it ran in order, then the phase's span and how long each worker
sat idle before the last one ended. `python -m bench.timeline [test-output/timeline.tsv]`"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path


def load(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    runs: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        worker, start, end, nodeid = line.split("\t", 3)
        runs[worker].append((float(start), float(end), nodeid.split("::")[0]))
    return runs


def files_in_order(tests: list[tuple[float, float, str]]) -> list[tuple[str, float]]:
    spans: list[tuple[str, float, float]] = []
    for start, end, file in sorted(tests):
        if spans and spans[-1][0] == file:
            spans[-1] = (file, spans[-1][1], end)
        else:
            spans.append((file, start, end))
    return [(file, end - start) for file, start, end in spans]


def main(argv: list[str]) -> None:
    every = load(Path(argv[0] if argv else "test-output/timeline.tsv"))
    # the parallel phase's workers (gw0, gw1, ...); a run without xdist (the exclusive phase) is "main"
    for phase in ({w: t for w, t in every.items() if w != "main"}, {w: t for w, t in every.items() if w == "main"}):
        if phase:
            report(phase)


def report(runs: dict[str, list[tuple[float, float, str]]]) -> None:
    first = min(t[0] for tests in runs.values() for t in tests)
    last = max(t[1] for tests in runs.values() for t in tests)
    print(f"span {last - first:.0f} s over {len(runs)} workers")
    for worker in sorted(runs):
        tests = runs[worker]
        busy = sum(end - start for start, end, _ in tests)
        ended = max(end for _, end, _ in tests)
        print(f"{worker}: busy {busy:.0f} s, ended {ended - first:.0f} s, idle at the end {last - ended:.0f} s")
        for file, took in files_in_order(tests):
            print(f"    {took:6.0f} s  {file}")


if __name__ == "__main__":
    main(sys.argv[1:])

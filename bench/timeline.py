"""Where the suite's time went: reads test-output/timeline.tsv (tests/conftest.py writes it) and prints,
per worker, its busy time and the files it ran in order with the CPU seconds each took in the test process
and its children, then the phase's span and how long each worker sat idle before the last one ended.
`python -m bench.timeline [test-output/timeline.tsv]`"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

Test = tuple[float, float, str, float]   # start, end, file, CPU seconds (the test process and its children)


def load(path: Path) -> dict[str, list[Test]]:
    runs: dict[str, list[Test]] = defaultdict(list)
    for line in path.read_text().splitlines():
        worker, start, end, nodeid, *cpu = line.split("\t")   # an older file has no CPU columns
        runs[worker].append((float(start), float(end), nodeid.split("::")[0], sum(map(float, cpu))))
    return runs


def files_in_order(tests: list[Test]) -> list[tuple[str, float, float]]:
    spans: list[tuple[str, float, float, float]] = []
    for start, end, file, cpu in sorted(tests):
        if spans and spans[-1][0] == file:
            spans[-1] = (file, spans[-1][1], end, spans[-1][3] + cpu)
        else:
            spans.append((file, start, end, cpu))
    return [(file, end - start, cpu) for file, start, end, cpu in spans]


def main(argv: list[str]) -> None:
    every = load(Path(argv[0] if argv else "test-output/timeline.tsv"))
    # the parallel phase's workers (gw0, gw1, ...); a run without xdist (the exclusive phase) is "main"
    for phase in ({w: t for w, t in every.items() if w != "main"}, {w: t for w, t in every.items() if w == "main"}):
        if phase:
            report(phase)


def report(runs: dict[str, list[Test]]) -> None:
    first = min(t[0] for tests in runs.values() for t in tests)
    last = max(t[1] for tests in runs.values() for t in tests)
    cpu = sum(t[3] for tests in runs.values() for t in tests)
    print(f"span {last - first:.0f} s over {len(runs)} workers, {cpu:.0f} CPU s in the tests and their children")
    for worker in sorted(runs):
        tests = runs[worker]
        busy = sum(t[1] - t[0] for t in tests)
        ended = max(t[1] for t in tests)
        print(f"{worker}: busy {busy:.0f} s, ended {ended - first:.0f} s, idle at the end {last - ended:.0f} s")
        for file, took, used in files_in_order(tests):
            print(f"    {took:6.0f} s  {used:6.1f} CPU s  {file}")


if __name__ == "__main__":
    main(sys.argv[1:])

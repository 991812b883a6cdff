"""Issue 12's long fuzz run: the cases of tests/unit/test_fuzz.py (configs, stack files through the render,
webhook deliveries) for N minutes instead of a few hundred examples each, taking turns in slices of about
CHUNK_SECONDS. Needs no lab. A crash is any exception other than the entry point's own SwarmopsError (or one
without a message); each case stops at its first crash, which is printed with its input."""

from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from ruamel.yaml.error import ReusedAnchorWarning

import swarmops
from tests.unit import test_fuzz

PACKAGE = os.path.dirname(swarmops.__file__) + os.sep
CHUNK_SECONDS = 20.0
FIRST_CHUNK = 50     # examples of a case's first slice, which measures its rate


def _counted(check: Callable[..., None], counts: dict[str, int], name: str) -> Callable[[dict[str, Any]], None]:
    def run_one(kwargs: dict[str, Any]) -> None:
        counts[name] += 1
        try:
            check(**kwargs)
        except Exception as e:   # noted for the report, then raised on to hypothesis, which shrinks it
            e.add_note(f"input: {kwargs!r:.3000}")
            raise
    return run_one


def run(minutes: float) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)   # legal YAML; garbled files are full of it
        return _run(minutes)


def _run(minutes: float) -> dict[str, Any]:
    deadline = time.monotonic() + minutes * 60
    counts = dict.fromkeys(test_fuzz.CASES, 0)
    spent = dict.fromkeys(test_fuzz.CASES, 0.0)
    crashes: dict[str, str] = {}
    while time.monotonic() < deadline and len(crashes) < len(test_fuzz.CASES):
        active = [name for name in test_fuzz.CASES if name not in crashes]
        for i, name in enumerate(active):
            strategy, check = test_fuzz.CASES[name]
            left = deadline - time.monotonic()
            if left <= 0:
                break
            share = min(CHUNK_SECONDS, left / (len(active) - i))   # the rest of the round shares the time left
            examples = max(10, int(counts[name] / spent[name] * share)) if counts[name] else FIRST_CHUNK
            test = settings(test_fuzz.PROFILE, max_examples=examples, database=None)(
                given(strategy)(_counted(check, counts, name)))
            start = time.monotonic()
            try:
                test()
            except Exception as e:   # a crash is what this run looks for: keep it and go on with the other cases
                crashes[name] = _describe(e)
            spent[name] += max(time.monotonic() - start, 1e-3)
    return {"minutes": minutes, "examples": counts, "total": sum(counts.values()),
            "rates_per_s": {k: round(counts[k] / spent[k], 1) for k in counts if spent[k]}, "crashes": crashes}


def _describe(e: BaseException) -> str:
    """Each exception hypothesis found: type and message, where it was raised (innermost frame, and the
    innermost in swarmops), and the input that raised it."""
    if isinstance(e, BaseExceptionGroup):
        return "\n".join(_describe(sub) for sub in e.exceptions)
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if f.filename.startswith(PACKAGE)]
    lines = [f"{type(e).__name__}: {str(e)[:300]}"]
    lines += [f"  at {f.filename}:{f.lineno} in {f.name}" for f in [*ours[-1:], *frames[-1:]]]
    lines += [f"  {note}" for note in getattr(e, "__notes__", []) if note.startswith(("input:", "You can reproduce"))]
    return "\n".join(lines)


def report(result: dict[str, Any]) -> bool:
    print(f"fuzz for {result['minutes']:g} min: {result['total']} examples, "
          f"{len(result['crashes'])} case(s) crashed")
    print("| case | examples | examples/s | result |")
    print("|---|---|---|---|")
    for name, n in result["examples"].items():
        verdict = "CRASH" if name in result["crashes"] else "no crash"
        print(f"| {name} | {n} | {result['rates_per_s'].get(name, 0):g} | {verdict} |")
    for name, text in result["crashes"].items():
        print(f"\n--- crash in case {name!r} ---\n{text}")
    print(json.dumps({**result, "crashes": sorted(result["crashes"])}))
    return not result["crashes"]

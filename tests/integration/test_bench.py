"""The benchmarks run end to end at a small size inside the suite, so they cannot rot. No timing is
asserted: only that each case measures what it says."""

from __future__ import annotations

import docker

from bench import docs_commit


def test_docs_commit_bench_measures_both_cases_and_counts_restarts(lab: docker.APIClient) -> None:
    result = docs_commit.run(runs=1)
    assert result["docs_commit_s"] > 0 and result["full_rebuild_s"] > 0
    assert result["tasks_restarted_docs"] == 0
    assert result["tasks_restarted_full"] == 2

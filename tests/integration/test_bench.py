"""The benchmarks run end to end at a small size inside the suite, so they cannot rot. No timing is
asserted: only that each case measures what it says, so they run beside the other tests (their numbers
here are not results: `python -m bench` on a quiet lab gives those)."""

from __future__ import annotations

import docker

from bench import docs_commit


def test_docs_commit_bench_measures_both_cases_and_counts_restarts(lab: docker.APIClient) -> None:
    result = docs_commit.run(runs=1)
    assert result["docs_commit_s"] > 0 and result["full_rebuild_s"] > 0
    assert result["tasks_restarted_docs"] == 0
    assert result["tasks_restarted_full"] == 2


def test_scale_bench_runs_end_to_end_at_a_small_size(lab: docker.APIClient) -> None:
    from bench import scale

    result = scale.run(n=5)
    assert result["apps"] == 5 and result["floor_ls_remote_s"] > 0 and result["fetch_loop_s"] > 0
    assert result["no_change_cycle_s"] > 0 and result["first_deploy_s"] > 0 and result["first_deploy_over_by_hand"] > 0


def test_webhook_bench_measures_pushes_against_a_poll(lab: docker.APIClient) -> None:
    from bench import webhook

    result = webhook.run(n=3, singles=2, polled=1, interval=5.0)
    assert result["one_push"]["n"] == 2 and result["3_pushes_at_once"]["n"] == 3
    assert result["found_by_poll"]["n"] == 1 and result["by_hand_burst"]["n"] == 3
    assert result["burst_synced_p99_over_by_hand_p99"] > 0
    for case in ("one_push", "3_pushes_at_once", "found_by_poll"):
        assert 0 <= result[case]["to_start"]["p50"] <= result[case]["to_synced"]["p50"]


def test_restart_bench_restarts_the_daemon_over_synced_apps_with_no_deploy(lab: docker.APIClient) -> None:
    from bench import restart

    result = restart.run(n=5, rounds=1)
    assert result["restart_deploys"] == 0 and result["daemon_deploys"] == 0 and result["new_manager_deploys"] == 0
    assert result["restart_results"] == {"noop": 5} and result["new_manager_history_restored"] == 5
    assert result["no_change_cycle_s"] > 0 and result["restart_first_check_s"] > 0 and result["restart_over_cycle"] > 0
    for case in ("restart", "daemon", "new_manager"):   # counted, and a fixed number: not one per app
        assert 0 < result[f"{case}_engine_calls"] < 5 * 5, result[f"{case}_engine_calls_by_call"]
        assert result[f"{case}_engine_calls_by_call"].get("GET /services") == 1

from datetime import timedelta

from swarmops.domain.convergence import judge, recovering
from tests.unit.fakes import T0, service, stack, task


def test_running_tasks_at_the_current_spec_converge() -> None:
    web = service("web", replicas=2)
    v = judge(stack([web], [task(web), task(web, at=2)]), ["web"], T0, 3)
    assert v.state == "converged"


def test_tasks_of_the_previous_spec_are_still_progressing() -> None:
    web = service("web")
    v = judge(stack([web], [task(web, image="reg/app/web:old@sha256:0")]), ["web"], T0, 3)
    assert v.state == "progressing" and "previous spec" in v.reason


def test_missing_replicas_are_progressing() -> None:
    web = service("web", replicas=3)
    assert judge(stack([web], [task(web)]), ["web"], T0, 3).state == "progressing"


def test_pending_task_reports_dockers_words() -> None:
    web = service("web")
    msg = "no suitable node (scheduling constraints not satisfied on 6 nodes)"
    v = judge(stack([web], [task(web, state="pending", error=msg)]), ["web"], T0, 3)
    assert v.state == "progressing" and msg in v.reason


def test_repeated_task_failures_after_the_deploy_fail_it() -> None:
    web = service("web")
    tasks = [task(web, state="failed", desired="shutdown", at=i, error="task: non-zero exit (1)", exit_code=1)
             for i in (1, 2, 3)]
    v = judge(stack([web], tasks), ["web"], T0, 3)
    assert v.state == "failed" and "non-zero exit (1)" in v.reason


def test_failures_before_the_deploy_do_not_count() -> None:
    web = service("web")
    tasks = [task(web, state="failed", desired="shutdown", at=i) for i in (1, 2, 3)] + [task(web, at=9)]
    assert judge(stack([web], tasks), ["web"], T0 + timedelta(seconds=5), 3).state == "converged"


def test_swarm_rollback_started_after_the_deploy_is_a_failure() -> None:
    web = service("web", update_state="rollback_completed", update_started=T0 + timedelta(seconds=1))
    v = judge(stack([web], [task(web)]), ["web"], T0, 3)
    assert v.state == "failed" and "rollback_completed" in v.reason


def test_an_old_paused_update_does_not_fail_a_new_deploy() -> None:
    web = service("web", update_state="paused", update_started=T0)
    assert judge(stack([web], [task(web, at=9)]), ["web"], T0 + timedelta(seconds=5), 3).state == "converged"


def test_zero_replicas_converge_with_no_tasks() -> None:
    web = service("web", replicas=0)
    assert judge(stack([web], []), ["web"], T0, 3).state == "converged"


def test_service_not_yet_created_is_progressing() -> None:
    assert judge(stack([], []), ["web"], T0, 3).state == "progressing"


def test_tasks_that_end_by_themselves_count_as_failures() -> None:
    web = service("web")
    tasks = [task(web, state="complete", desired="shutdown", at=i, exit_code=0) for i in (1, 2)]
    v = judge(stack([web], tasks), ["web"], T0, 2)
    assert v.state == "failed" and "healthcheck failed" in v.reason


def test_a_global_service_needs_a_running_task_on_every_eligible_node() -> None:
    from dataclasses import replace

    from swarmops.domain.live import LiveNode

    web = replace(service("web", replicas=None),
                  spec={"TaskTemplate": {"Placement": {"Constraints": ["node.labels.role == app"]}}})
    nodes = {"n1": LiveNode("n1", "vm", {"role": "app"}, "ready", "active", "manager"),
             "n2": LiveNode("n2", "app2", {"role": "app"}, "ready", "active"),
             "n3": LiveNode("n3", "db", {"role": "db"}, "ready", "active"),
             "n4": LiveNode("n4", "app3", {"role": "app"}, "down", "active")}
    live = replace(stack([web], [task(web, node="n1")]), nodes=nodes)
    assert judge(live, ["web"], T0, 3).state == "progressing"   # between restarts: no task is not done
    both = replace(live, tasks=[task(web, node="n1"), task(web, node="n2", at=2)])
    assert judge(both, ["web"], T0, 3).state == "converged"


def test_a_replica_swarm_is_bringing_back_holds_the_update() -> None:
    web = service("web", replicas=2)
    live = stack([web], [task(web, at=1, node="n1"), task(web, state="starting", at=2, node="n1")])
    reason = recovering(live, ["web"], T0 + timedelta(seconds=5))
    assert reason == "web: 1/2 running, a task starting on vm"


def test_a_replacement_not_created_yet_holds_the_update() -> None:
    web = service("web", replicas=2)
    live = stack([web], [task(web), task(web, state="shutdown", desired="shutdown", at=2)])
    assert "Swarm is replacing a task" in (recovering(live, ["web"], T0 + timedelta(seconds=5)) or "")


def test_every_replica_running_does_not_hold_the_update() -> None:
    web = service("web", replicas=2)
    assert recovering(stack([web], [task(web, at=1), task(web, at=2)]), ["web"], T0) is None


def test_an_unschedulable_replica_does_not_hold_the_update() -> None:
    web = service("web", replicas=2)
    live = stack([web], [task(web), task(web, state="pending", at=2, error="no suitable node")])
    assert recovering(live, ["web"], T0) is None


def test_a_crash_looping_service_does_not_hold_the_update_that_may_fix_it() -> None:
    web = service("web", replicas=2)
    live = stack([web], [task(web, at=1), task(web, state="failed", desired="shutdown", at=6, exit_code=1),
                         task(web, state="starting", at=7)])
    assert recovering(live, ["web"], T0 + timedelta(seconds=5)) is None


def test_only_the_services_to_update_are_waited_for() -> None:
    web, db = service("web", replicas=1), service("db", replicas=1)
    live = stack([web, db], [task(web), task(db, state="preparing", at=2)])
    assert recovering(live, ["web", "new"], T0) is None
    assert recovering(live, ["db"], T0) == "db: 0/1 running, a task preparing on vm"

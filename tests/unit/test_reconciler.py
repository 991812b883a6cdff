"""The reconcile on fakes of every adapter (tests/fakes.py): gather, decide, execute, record."""

from __future__ import annotations

import shutil
from pathlib import Path

from swarmops.domain.decide import Deploy, Resolve
from swarmops.domain.live import LiveStack
from swarmops.errors import Interrupted
from swarmops.reconcile.events import Observer, Outcome
from tests.fakes import World

STACK = """services:
  web:
    build: ./web
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 64M}}
"""
FILES = {"stack.yml": STACK, "web/Dockerfile": "FROM reg:5000/base/busybox:1\n", "web/index.html": "v1\n"}


def world(tmp_path: Path, **app: object) -> World:
    w = World(tmp_path, app=dict(app))
    w.source.commit("first", FILES)
    return w


def running_commit(w: World) -> str | None:
    return w.live().deployed_commit()


def test_a_first_sync_builds_pushes_both_tags_records_the_digest_and_deploys(tmp_path: Path) -> None:
    w = world(tmp_path)
    out = w.sync()
    head = w.source.heads[-1]
    assert (out.result, out.commit, out.attempted) == ("deployed", head, True)
    assert [t.rpartition(":")[2] for t in w.builder.built] == [head[:12]]
    fingerprint = w.live().services["web"].labels["io.swarmops.fingerprint"]
    assert ("shop/web", f"fp-{fingerprint}") in w.registry.tags
    assert w.ledger.get("shop/web", fingerprint) == w.registry.digest("shop/web", head[:12])
    entry = w.store.history("shop")[0]
    assert (entry.result, entry.trigger, entry.commit_sha) == ("succeeded", "manual", head)
    assert w.live().services["web"].replicas == 2


def test_a_poll_of_an_unchanged_app_reads_only_the_head_and_deploys_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.calls.clear()
    deploys = len(w.swarm.deploys)
    out = w.poll()
    assert out.result == "noop" and out.message == "in sync"
    assert w.source.calls == ["head"] and len(w.swarm.deploys) == deploys


def test_a_commit_that_changes_no_build_input_reuses_the_image_pinned_to_its_digest(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    first = w.source.heads[-1]
    w.source.commit("docs", {"README.md": "hello\n"})
    out = w.poll()
    assert out.result == "deployed" and out.plan is not None and out.plan.builds == ()
    image = w.live().services["web"].spec["TaskTemplate"]["ContainerSpec"]["image"]
    assert image == f"reg:5000/shop/web:{first[:12]}@{w.registry.digest('shop/web', first[:12])}"
    assert len(w.builder.built) == 1


def test_an_image_replaced_in_the_registry_is_built_again_and_the_history_says_so(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    first = w.source.heads[-1]
    fingerprint = w.live().services["web"].labels["io.swarmops.fingerprint"]
    for tag in (first[:12], f"fp-{fingerprint}"):   # a push past swarmops under both tags
        w.registry.put(f"reg:5000/shop/web:{tag}", "sha256:" + "e" * 64, {"io.swarmops.source-tag": first[:12]})
    w.source.commit("docs", {"README.md": "hello\n"})
    out = w.poll()
    assert out.result == "deployed" and len(w.builder.built) == 2
    assert "sha256:" + "e" * 64 not in w.live().services["web"].spec["TaskTemplate"]["ContainerSpec"]["image"]
    assert "the registry held sha256:eeee" in w.store.history("shop")[0].builds
    assert any("is not the image swarmops pushed" in s for s in w.said)


def test_drift_is_healed_by_the_poll_when_self_heal_is_on(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.swarm.scale("shop", "web", 3)
    out = w.poll()
    assert out.result == "healed" and [d.service for d in out.drift] == ["web"]
    assert w.live().services["web"].replicas == 2
    assert w.store.history("shop")[0].trigger == "self-heal"
    assert w.store.app_state("shop").drift == ""


def test_with_self_heal_off_the_poll_reports_drift_and_sync_heals_it_as_manual(tmp_path: Path) -> None:
    w = world(tmp_path, self_heal=False)
    w.sync()
    w.swarm.scale("shop", "web", 3)
    out = w.poll()
    assert out.result == "drift" and "replicas" in out.message
    assert w.live().services["web"].replicas == 3 and w.store.app_state("shop").drift
    healed = w.sync()
    assert healed.result == "healed" and w.live().services["web"].replicas == 2
    assert w.store.history("shop")[0].trigger == "manual"


def test_a_deploy_that_does_not_converge_is_rolled_back_to_the_last_good_one_and_not_retried(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    bad = w.source.commit("breaks", {"web/index.html": "v2\n"})
    w.swarm.failing.add(f"reg:5000/shop/web:{bad[:12]}")
    out = w.poll()
    assert (out.result, out.rolled_back_to, out.error_kind) == ("failed", good, "ConvergenceError")
    assert running_commit(w) == good
    entry = w.store.history("shop")[0]
    assert (entry.result, entry.rollback_to) == ("failed", good) and "rolled back to" in entry.error
    assert w.store.app_state("shop").failed_commit == bad
    again = w.poll()
    assert again.result == "skipped" and "failed before" in again.message
    w.swarm.failing.clear()
    assert w.sync().result == "deployed" and running_commit(w) == bad   # `sync` retries a failed commit


def test_a_stack_the_policy_refuses_is_remembered_and_nothing_is_built_or_deployed(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    builds, deploys = len(w.builder.built), len(w.swarm.deploys)
    refused = w.source.commit("root", {"stack.yml": STACK.replace("    deploy:", "    privileged: true\n    deploy:")})
    out = w.poll()
    assert (out.result, out.error_kind) == ("failed", "PolicyError") and "privileged" in out.message
    assert (len(w.builder.built), len(w.swarm.deploys)) == (builds, deploys)
    assert w.store.app_state("shop").failed_commit == refused
    assert w.poll().result == "skipped"


def test_a_dry_run_with_an_interrupted_deploy_pending_writes_resolves_and_deploys_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    deploy_id = w.store.start_deploy("shop", w.source.heads[-1], "a", "m", "poll", "/d")
    w.store.finish_deploy(deploy_id, "interrupted", "the daemon stopped during this deploy")
    w.store.set_app("shop", pending_check=deploy_id)
    w.source.commit("next", {"web/index.html": "v2\n"})
    w.store.writes.clear()
    deploys, builds, reads = len(w.swarm.deploys), len(w.builder.built), w.swarm.reads
    out = w.sync(dry_run=True)
    assert out.result == "planned"
    assert out.message.startswith(f"would resolve interrupted deploy {deploy_id} first; ")
    assert isinstance(out.decision, Deploy) and out.decision.work.commit == w.source.heads[-1]
    assert w.store.writes == [] and (len(w.swarm.deploys), len(w.builder.built)) == (deploys, builds)
    assert w.swarm.reads > reads and w.store.app_state("shop").pending_check == deploy_id


def test_a_real_reconcile_resolves_the_interrupted_deploy_first(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    deploy_id = w.store.start_deploy("shop", w.source.heads[-1], "a", "m", "poll", "/d")
    w.store.finish_deploy(deploy_id, "interrupted", "the daemon stopped during this deploy")
    w.store.set_app("shop", pending_check=deploy_id)
    out = w.poll()
    assert out.result == "noop"
    entry = w.store.get_deploy(deploy_id)
    assert entry is not None and entry.error.endswith("after the restart the services had converged")
    assert w.store.app_state("shop").pending_check == 0


def test_an_interrupted_deploy_that_never_reached_the_swarm_changes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    later = w.source.commit("next", {"web/index.html": "v2\n"})
    deploy_id = w.store.start_deploy("shop", later, "a", "m", "poll", "/d")
    w.store.finish_deploy(deploy_id, "interrupted", "the daemon stopped during the build")
    w.store.set_app("shop", pending_check=deploy_id)
    decision = w.reconciler.gather.facts(w.app, later, "poll", False, w.store.app_state("shop"))
    from swarmops.domain.decide import decide
    d = decide(decision)
    assert isinstance(d, Resolve) and not d.deployed
    out = w.poll()
    assert out.result == "deployed" and running_commit(w) == later
    entry = w.store.get_deploy(deploy_id)
    assert entry is not None and "had not been deployed, nothing changed" in entry.error


def test_a_daemon_stopping_during_the_watch_records_the_deploy_interrupted_for_the_next_start(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("next", {"web/index.html": "v2\n"})
    w.swarm.failing.add("never")   # the tasks run; the cancel stops the settle wait

    class Stop(Observer):
        def on_deploy(self, app: str, commit: str, trigger: str) -> None:
            w.reconciler.cancel.set()
    w.reconciler.observers.append(Stop())
    out = w.poll()
    assert (out.result, out.error_kind) == ("failed", Interrupted.__name__)
    entry = w.store.history("shop")[0]
    assert entry.result == "interrupted" and w.store.app_state("shop").pending_check == entry.id


def test_an_operators_rollback_runs_the_earlier_good_commit_and_suspends_auto_sync(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    first = w.source.heads[-1]
    w.source.commit("next", {"web/index.html": "v2\n"})
    w.poll()
    out = w.reconciler.roll_back_to(w.app, None)
    assert (out.result, out.commit) == ("rolled_back", first) and running_commit(w) == first
    assert w.store.app_state("shop").paused and w.poll().result == "skipped"
    missing = w.reconciler.roll_back_to(w.app, "0" * 12)
    assert missing.result == "failed" and "no successful deploy of commit 000000000000" in missing.message


def test_a_rollback_target_gone_from_disk_is_rendered_again_from_git(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    shutil.rmtree(w.config.state_dir / "deploys" / "shop" / good[:12])   # a new manager, or a lost state_dir
    bad = w.source.commit("breaks", {"web/index.html": "v2\n"})
    w.swarm.failing.add(f"reg:5000/shop/web:{bad[:12]}")
    out = w.poll()
    assert (out.result, out.rolled_back_to) == ("failed", good) and running_commit(w) == good
    assert (w.config.state_dir / "deploys" / "shop" / good[:12] / "stack.yml").is_file()


def test_git_away_is_a_transient_failure_retried_with_backoff(tmp_path: Path) -> None:
    w = World(tmp_path)   # no commit: the branch cannot be read
    seen: list[bool] = []

    class Git(Observer):
        def on_git(self, app: str, ok: bool) -> None:
            seen.append(ok)
    w.reconciler.observers.append(Git())
    out = w.poll()
    assert (out.result, out.error_kind, out.transient) == ("failed", "SourceError", True)
    assert out.retry_in is not None and seen == [False]
    assert w.store.app_state("shop").last_error_kind == "SourceError"


def test_a_crash_inside_the_reconcile_is_recorded_like_a_failure(tmp_path: Path) -> None:
    w = world(tmp_path)

    def boom(*_: object) -> None:
        raise RuntimeError("a bug")
    w.builder.build = boom   # type: ignore[method-assign,assignment]
    outcomes: list[Outcome] = []

    class Seen(Observer):
        def on_outcome(self, outcome: Outcome, trigger: str, seconds: float) -> None:
            outcomes.append(outcome)
    w.reconciler.observers.append(Seen())
    out = w.sync()
    assert (out.result, out.error_kind) == ("failed", "InternalError") and outcomes == [out]
    assert w.store.app_state("shop").last_error_kind == "InternalError"


def test_an_engine_refusal_after_the_deploy_rolls_back_and_a_build_failure_does_not(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    w.source.commit("v2", {"web/index.html": "v2\n"})
    w.builder.fail.add("web")
    built = w.poll()
    assert (built.result, built.error_kind, built.rolled_back_to) == ("failed", "BuildError", "")
    assert running_commit(w) == good and len(w.swarm.deploys) == 1


def test_an_age_secret_is_created_before_the_deploy_and_its_value_is_in_no_decision(tmp_path: Path) -> None:
    from swarmops.adapters import age as secrets
    w = world(tmp_path)
    public = secrets.keygen(w.config.state_dir)
    recipient = secrets.parse_recipient(public, "age.pub")
    sealed = secrets.encrypt(recipient, secrets.seal("shop", "db_password", b"hunter2"))
    text = STACK.replace("    deploy:", "    secrets: [db_password]\n    deploy:") + \
        "secrets:\n  db_password: {file: secrets/db_password.age}\n"
    w.source.commit("secret", {"stack.yml": text, "secrets/db_password.age": sealed})
    plan = w.sync(dry_run=True)
    assert plan.result == "planned" and "hunter2" not in repr(plan.decision) and w.swarm.secrets == {}
    out = w.sync()
    assert out.result == "deployed" and "hunter2" not in repr(out)
    (name,) = w.swarm.secrets["shop"]
    assert name.startswith("shop_db_password_") and name in w.swarm.deploys[-1][1]
    assert "hunter2" not in w.swarm.deploys[-1][1]


def test_a_dry_run_says_what_a_refusal_or_a_skip_would_be(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("root", {"stack.yml": STACK.replace("    deploy:", "    privileged: true\n    deploy:")})
    refused = w.sync(dry_run=True)
    assert (refused.result, refused.error_kind) == ("failed", "PolicyError")
    assert w.store.app_state("shop").failed_commit == ""   # a dry run remembers nothing
    w.store.set_app("shop", paused=True)
    skipped = w.reconciler.reconcile(w.app, trigger="poll", dry_run=True)
    assert skipped.result == "skipped"


def test_a_stack_file_missing_from_the_commit_fails_it_and_it_is_not_read_again(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    gone = w.source.commit("moved", {"web/index.html": "v2\n"})
    del w.source.commits[gone]["stack.yml"]
    out = w.poll()
    assert (out.result, out.error_kind, out.transient) == ("failed", "StackError", False)
    assert "not found in commit" in out.message and w.store.app_state("shop").failed_commit == gone
    assert w.poll().result == "skipped"


def test_an_interrupted_deploy_that_fails_after_the_restart_is_rolled_back(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    bad = w.source.commit("breaks", {"web/index.html": "v2\n"})
    w.swarm.failing.add(f"reg:5000/shop/web:{bad[:12]}")
    stack_file = tmp_path / "bad" / "stack.yml"
    stack_file.parent.mkdir()
    stack_file.write_text(w.swarm.deploys[-1][1].replace(good, bad).replace(good[:12], bad[:12]))
    w.swarm.deploy("shop", stack_file)   # the killed process had deployed it
    deploy_id = w.store.start_deploy("shop", bad, "a", "m", "poll", str(stack_file.parent))
    w.store.finish_deploy(deploy_id, "interrupted", "the daemon stopped during this deploy")
    w.store.set_app("shop", pending_check=deploy_id)
    out = w.poll()
    assert out.result == "skipped", out.message
    assert running_commit(w) == good   # resolved, rolled back, then not retried
    entry = w.store.get_deploy(deploy_id)
    assert entry is not None and entry.rollback_to == good and "rolled back to" in entry.error
    assert w.store.app_state("shop").failed_commit == bad


def test_a_preview_renders_the_head_against_what_runs_and_writes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("more", {"stack.yml": STACK.replace("replicas: 2", "replicas: 3")})
    w.store.writes.clear()
    preview = w.reconciler.preview(w.app)
    assert [c.action for c in preview.plan.changes] == ["update"] and preview.head == w.source.heads[-1]
    assert w.store.writes == []


def test_an_action_on_an_app_being_reconciled_is_refused_busy_and_nothing_waits(tmp_path: Path) -> None:
    from swarmops.errors import BusyError
    w = world(tmp_path)
    seen: list[str] = []

    class During(Observer):
        def on_deploy(self, app: str, commit: str, trigger: str) -> None:
            try:
                w.reconciler.when_idle(app, lambda: seen.append("ran"))
            except BusyError as e:
                seen.append(str(e))
            seen.append(f"busy={w.reconciler.busy()}")
    w.reconciler.observers.append(During())
    w.sync()
    assert seen == ["a reconcile of shop is running; try again when it ends", "busy=True"]
    assert w.reconciler.when_idle("shop", lambda: "ran") == "ran" and not w.reconciler.busy()


def test_a_manual_rollback_the_engine_refuses_is_recorded_failed(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("next", {"web/index.html": "v2\n"})
    w.poll()
    w.swarm.refuse = "no such network"
    out = w.reconciler.roll_back_to(w.app, None)
    assert (out.result, out.error_kind) == ("failed", "DeployError")
    assert w.store.history("shop")[0].result == "failed"


def test_a_deploy_that_never_settles_fails_at_the_deploy_timeout(tmp_path: Path) -> None:
    w = world(tmp_path, deploy_timeout="5s")
    w.sync()
    w.source.commit("more", {"stack.yml": STACK.replace("replicas: 2", "replicas: 3")})
    original = w.swarm.deploy

    def half(app: str, compose_file: Path) -> str:   # Swarm schedules one task fewer than asked
        result = original(app, compose_file)
        live = w.swarm.stacks[app]
        w.swarm.stacks[app] = LiveStackWithout(live, 1)
        return result
    w.swarm.deploy = half   # type: ignore[method-assign]
    out = w.poll()
    assert out.result == "failed" and "not converged within 5s" in out.message


def LiveStackWithout(live: LiveStack, n: int) -> LiveStack:
    from dataclasses import replace as dc_replace
    web = live.services["web"]
    return dc_replace(live, tasks=[t for t in live.tasks if t.service_id == web.id][n:])


def test_a_dry_run_of_a_broken_commit_records_no_error(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("broken", {"stack.yml": "services: [\n"})
    w.store.writes.clear()
    out = w.sync(dry_run=True)
    assert out.result == "failed" and w.store.writes == []


def test_a_crash_after_the_deploy_started_is_recorded_failed_and_rolled_back(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    w.source.commit("v2", {"web/index.html": "v2\n"})
    original = w.swarm.deploy

    def deploy_then_crash(app: str, compose_file: Path) -> str:
        result = original(app, compose_file)
        if good[:12] not in compose_file.read_text():
            raise RuntimeError("a bug after the stack reached the Swarm")
        return result
    w.swarm.deploy = deploy_then_crash   # type: ignore[method-assign]
    out = w.poll()
    assert (out.result, out.error_kind, out.rolled_back_to) == ("failed", "InternalError", good)
    entry = w.store.history("shop")[0]
    assert entry.result == "failed" and "internal error: RuntimeError" in entry.error
    assert running_commit(w) == good and w.store.app_state("shop").failed_commit == w.source.heads[-1]


def test_a_stop_during_the_resumed_watch_keeps_the_deploy_pending(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    deploy_id = w.store.start_deploy("shop", w.source.heads[-1], "a", "m", "poll", "/d")
    w.store.finish_deploy(deploy_id, "interrupted", "the daemon stopped during this deploy")
    w.store.set_app("shop", pending_check=deploy_id)
    w.reconciler.cancel.set()   # the daemon stops again while it watches
    out = w.poll()
    assert out.error_kind == "Interrupted" and w.store.app_state("shop").pending_check == deploy_id


def test_only_a_stack_that_publishes_a_port_reads_every_apps_services_and_a_taken_port_is_refused(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    other = tmp_path / "other.yml"
    other.write_text("services:\n  web:\n    image: reg:5000/other/web:1\n"
                     "    ports: [{published: 30500, target: 80}]\n")
    w.swarm.deploy("other", other)
    reads = w.swarm.all_reads
    assert w.sync().result == "deployed"
    assert w.swarm.all_reads == reads   # no port published: the other apps' services are not read
    w.source.commit("publish", {"stack.yml": STACK.replace("    deploy:", "    ports: [\"30500:80\"]\n    deploy:")})
    out = w.poll()
    assert (out.result, out.error_kind) == ("failed", "PolicyError"), out.message
    assert "SO114" in out.message and "'other'" in out.message and w.swarm.all_reads == reads + 1

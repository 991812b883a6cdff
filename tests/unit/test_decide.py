"""The pure decision: for every Decision variant, the facts that lead to it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose import schema
from swarmops.domain.decide import (
    Candidate,
    CommitMeta,
    Decision,
    Deploy,
    Facts,
    GoodDeploy,
    ImageFacts,
    InSync,
    Need,
    Pending,
    Refuse,
    Resolve,
    RollBack,
    RollbackTarget,
    Skip,
    Stored,
    choose_image,
    decide,
    decide_rollback,
    describe,
    render_candidate,
    to_dict,
)
from swarmops.domain.drift import applied_record
from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Migrated
from swarmops.domain.policyctx import policy_context
from swarmops.domain.stackfile import build_specs
from tests.unit.fakes import service, stack, stack_of, task

HEAD, OLD = "b" * 40, "a" * 40
APP = AppConfig.model_validate({"name": "app", "repo": "file:///srv/git/app.git"})
CONFIG = Config.model_validate({"registry": "reg:5000", "state_dir": "/srv/swarmops", "apps": [APP]})
STACK = """services:
  web:
    image: reg:5000/base/busybox:1
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.5", memory: 64M}}
"""


def candidate(text: str = STACK, commit: str = HEAD, images: tuple[ImageFacts, ...] = ()) -> Candidate:
    st = stack_of(text)
    return Candidate(commit=commit, meta=CommitMeta("Ana", "a change"), stack=st, specs=build_specs(st),
                     images=images, file_digests={}, secret_names={},
                     deploy_dir=f"/srv/swarmops/deploys/app/{commit[:12]}", policy=policy_context(CONFIG, APP, {}),
                     cli_versions=schema.CLI_28)


def running(commit: str, text: str = STACK) -> LiveStack:
    """What a deploy of `text` at `commit` leaves running: the rendered labels on every service."""
    rendered, _ = render_candidate(CONFIG, APP, candidate(text, commit))
    return stack([service(name, spec_hash=svc.spec_hash, commit=commit) for name, svc in rendered.services.items()])


def facts(live: LiveStack, **kw: Any) -> Facts:
    return Facts(CONFIG, APP, kw.pop("trigger", "poll"), kw.pop("head", HEAD), live, **kw)


GOOD_OLD = GoodDeploy(OLD, f"/srv/swarmops/deploys/app/{OLD[:12]}/stack.yml", True)


def test_a_paused_app_is_skipped_by_the_poll_but_not_by_an_operator() -> None:
    paused = Stored(paused=True)
    assert isinstance(decide(facts(running(HEAD), stored=paused)), Skip)
    assert isinstance(decide(facts(running(HEAD), stored=paused, trigger="retry")), Skip)
    assert isinstance(decide(facts(running(HEAD), stored=paused, trigger="manual", force=True)), InSync)


def test_what_runs_the_head_with_no_drift_is_in_sync_without_reading_more() -> None:
    assert decide(facts(running(HEAD))) == InSync(HEAD)


def test_a_new_head_asks_for_a_full_live_read_then_for_the_commit() -> None:
    live = running(OLD)
    assert decide(facts(live)) == Need("live")
    assert decide(facts(live, live_full=True)) == Need("candidate", HEAD)


def test_a_commit_that_failed_before_is_skipped_by_the_poll_and_deployed_by_sync() -> None:
    f = facts(running(OLD), live_full=True, stored=Stored(failed_commit=HEAD, good=(GOOD_OLD,)), candidate=candidate())
    skip = decide(f)
    assert isinstance(skip, Skip) and "failed before" in describe(skip)
    d = decide(replace(f, trigger="manual", force=True))
    assert isinstance(d, Deploy) and d.work.commit == HEAD


def test_a_deploy_carries_the_render_the_watch_set_and_the_rollback_target() -> None:
    f = facts(running(OLD), live_full=True, stored=Stored(good=(GOOD_OLD,)), candidate=candidate())
    d = decide(f)
    assert isinstance(d, Deploy) and not d.heal
    assert d.work.rollback == RollbackTarget(OLD, GOOD_OLD.stack_file)
    assert d.work.watch == () and d.work.before == ("web",)   # a relabel: nothing restarts
    assert f"io.swarmops.commit: \"{HEAD}\"" in d.work.rendered.text or HEAD in d.work.rendered.text
    changed = decide(replace(f, candidate=candidate(STACK.replace("replicas: 2", "replicas: 3"))))
    assert isinstance(changed, Deploy) and changed.work.watch == ("web",)
    assert to_dict(changed)["rollback"] == OLD and to_dict(changed)["kind"] == "deploy"


def test_with_no_rendered_stack_on_disk_the_previous_commit_is_asked_to_be_rendered_again() -> None:
    gone = replace(GOOD_OLD, on_disk=False)
    f = facts(running(OLD), live_full=True, stored=Stored(good=(gone,)), candidate=candidate())
    assert decide(f) == Need("rollback", OLD)
    again = RollbackTarget(OLD, gone.stack_file, "services: {}\n")
    d = decide(replace(f, rollback_read=True, rollback_render=again))
    assert isinstance(d, Deploy) and d.work.rollback == again
    none = decide(replace(f, rollback_read=True))   # it could not be rendered: deployed without a target
    assert isinstance(none, Deploy) and none.work.rollback is None


def test_the_live_commits_own_directory_is_a_rollback_target_when_the_history_has_none() -> None:
    f = facts(running(OLD), live_full=True, previous=GOOD_OLD, candidate=candidate())
    d = decide(f)
    assert isinstance(d, Deploy) and d.work.rollback == RollbackTarget(OLD, GOOD_OLD.stack_file)


def test_a_render_the_policy_denies_is_refused_with_the_rule() -> None:
    bad = STACK.replace("    deploy:", "    privileged: true\n    deploy:")
    d = decide(facts(running(OLD), live_full=True, candidate=candidate(bad)))
    assert isinstance(d, Refuse) and d.commit == HEAD and "privileged" in d.message


def test_an_empty_stack_on_an_empty_cluster_is_in_sync_with_its_plan() -> None:
    empty = facts(stack([]), live_full=True, candidate=replace(candidate(), stack=stack_of("services: {}\n",
                                                                                              allow_empty=True)))
    d = decide(empty)
    assert isinstance(d, InSync) and d.plan is not None and not d.plan.deploy


def drifted(self_heal: bool = True, **kw: Any) -> Facts:
    live = running(HEAD)
    applied = applied_record(live)
    web = live.services["web"]
    scaled = replace(web, spec={**web.spec, "Mode": {"Replicated": {"Replicas": 3}}})
    app = APP.model_copy(update={"self_heal": self_heal})
    return replace(facts(replace(live, services={"web": scaled}), stored=Stored(applied=applied), **kw), app=app)


def test_drift_asks_for_a_full_read_then_heals_as_self_heal() -> None:
    assert decide(drifted()) == Need("live")
    assert decide(drifted(live_full=True)) == Need("candidate", HEAD)
    d = decide(drifted(live_full=True, candidate=candidate()))
    assert isinstance(d, Deploy) and [x.service for x in d.heal] == ["web"]
    assert (d.work.trigger, d.work.watch) == ("self-heal", ("web",))


def test_drift_with_self_heal_off_is_reported_but_an_operators_sync_heals_it_as_manual() -> None:
    d = decide(drifted(self_heal=False, live_full=True))
    assert isinstance(d, InSync) and d.drift and d.message.startswith("drift (self_heal is off)")
    synced = decide(drifted(self_heal=False, live_full=True, force=True, trigger="manual", candidate=candidate()))
    assert isinstance(synced, Deploy) and synced.work.trigger == "manual"


def test_an_interrupted_deploy_comes_first_watched_if_it_reached_the_swarm() -> None:
    pending = Pending(7, HEAD, 100.0, "the daemon stopped")
    d = decide(facts(running(HEAD), stored=Stored(pending=pending, good=(GOOD_OLD,))))
    assert d == Resolve(pending, deployed=True, watch=("web",), rollback=RollbackTarget(OLD, GOOD_OLD.stack_file))
    never = decide(facts(running(OLD), stored=Stored(pending=pending)))
    assert never == Resolve(pending, deployed=False)
    assert isinstance(never, Resolve) and "never reached the Swarm" in describe(never)


def test_an_operators_rollback_picks_the_last_good_other_commit_or_says_why_not() -> None:
    newest = GoodDeploy(HEAD, "/srv/swarmops/deploys/app/bbbbbbbbbbbb/stack.yml", True)
    authors = {OLD: ("Ana", "the old one")}
    d = decide_rollback((newest, GOOD_OLD), authors, running(HEAD), None)
    assert isinstance(d, RollBack) and (d.target, d.author, d.message) == (GOOD_OLD, "Ana", "the old one")
    assert isinstance(decide_rollback((newest, GOOD_OLD), authors, running(HEAD), OLD[:7]), RollBack)
    assert "no earlier good deploy" in str(decide_rollback((newest,), authors, running(HEAD), None))
    assert "no successful deploy of commit cafe" in str(decide_rollback((newest,), {}, running(HEAD), "cafe"))
    gone = replace(GOOD_OLD, on_disk=False)
    assert "is gone from" in str(decide_rollback((newest, gone), {}, running(HEAD), None))


def test_an_operators_rollback_across_a_migration_is_refused_with_the_restore_sentence_unless_asked_for() -> None:
    old = replace(GOOD_OLD, deploy_id=3)
    newest = GoodDeploy(HEAD, "/srv/swarmops/deploys/app/bbbbbbbbbbbb/stack.yml", True, deploy_id=5)
    migrated = (Migrated(HEAD, "migrate", f"20261201T000000Z-{HEAD[:12]}", deploy_id=5),)
    refused = decide_rollback((newest, old), {}, running(HEAD), None, migrated)
    assert refused == (f"rolling back would cross migration {HEAD[:12]}; restore snapshot 20261201T000000Z-"
                       f"{HEAD[:12]} with swarmops backup restore, or roll app back to {OLD[:12]} with "
                       "--across-migrations if its code fits the migrated schema")
    assert isinstance(decide_rollback((newest, old), {}, running(HEAD), None, migrated, across_migrations=True),
                      RollBack)
    earlier = (Migrated(OLD, "migrate", "20261130T000000Z-aaaaaaaaaaaa", deploy_id=3),)   # the target's own
    assert isinstance(decide_rollback((newest, old), {}, running(HEAD), None, earlier), RollBack)
    unknown = replace(old, deploy_id=0)   # a target the history lacks is older than every migration
    assert "would cross migration" in str(decide_rollback((newest, unknown), {}, running(HEAD), OLD, earlier))


def test_an_image_is_reused_only_at_the_digest_swarmops_pushed() -> None:
    facts_ = ImageFacts("web", "f" * 64, found="reg:5000/app/web:aaaaaaaaaaaa", current="sha256:1", trusted="sha256:1")
    assert choose_image(facts_, "reg:5000", "app/web", HEAD) == ("reg:5000/app/web:aaaaaaaaaaaa@sha256:1", None)
    image, step = choose_image(replace(facts_, current="sha256:2"), "reg:5000", "app/web", HEAD)
    assert image == f"reg:5000/app/web:{HEAD[:12]}" and step is not None and step.replaced == "sha256:2"
    assert step.alias == f"reg:5000/app/web:fp-{'f' * 64}"
    _, untrusted = choose_image(replace(facts_, trusted=None), "reg:5000", "app/web", HEAD)
    assert untrusted is not None and "no record of the image swarmops pushed" in untrusted.reason
    _, absent = choose_image(ImageFacts("web", "f" * 64), "reg:5000", "app/web", HEAD)
    assert absent is not None and absent.reason == "no image with these build inputs in the registry"


def test_every_decision_describes_itself_in_one_line_and_as_json_without_a_secret() -> None:
    pending = Pending(7, HEAD, 100.0, "stopped")
    deploy = decide(facts(running(OLD), live_full=True, stored=Stored(good=(GOOD_OLD,)), candidate=candidate()))
    healed = decide(drifted(live_full=True, candidate=candidate()))
    assert isinstance(deploy, Deploy) and isinstance(healed, Deploy)
    decisions: list[Decision] = [Skip("paused"), InSync(HEAD), Refuse(HEAD, "policy says no"),
                                 Resolve(pending, deployed=True), deploy, healed,
                                 RollBack(GOOD_OLD, "Ana", "old", ("web",))]
    for d in decisions:
        line, data = describe(d), to_dict(d)
        assert line and "\n" not in line and data["kind"] == d.kind and data["summary"] == line
    assert to_dict(decisions[3])["deploy_id"] == 7 and to_dict(decisions[6])["commit"] == OLD
    assert describe(healed).startswith("heal drift: web: changed")


def test_a_deploy_says_to_wait_for_replicas_swarm_is_bringing_back_from_the_read_it_decided_on() -> None:
    changed = candidate(STACK.replace("image: reg:5000/base/busybox:1", "image: reg:5000/base/busybox:2"))
    live = running(OLD)
    web = replace(live.services["web"], replicas=2)
    live = replace(live, services={"web": web})
    up = replace(live, tasks=[task(web, at=1), task(web, at=2)])
    coming = replace(live, tasks=[task(web, at=1), task(web, state="starting", at=2)])
    for current, wait in ((up, None), (coming, "web: 1/2 running, a task starting on vm")):
        d = decide(facts(current, live_full=True, stored=Stored(good=(GOOD_OLD,)), candidate=changed))
        assert isinstance(d, Deploy) and d.work.watch == ("web",) and d.work.recovering == wait

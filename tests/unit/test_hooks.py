"""Deploy hooks (issue 25, item 1): a service marked `x-swarmops: {hook: ...}` is left out of the stack and run
once as a Swarm job, pre-deploy before anything of the commit is deployed and post-deploy after it converged;
the decision says whether each runs and why, the executor runs what it says."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmops.adapters.store import StateStore
from swarmops.adapters.swarm.live import _service as live_service
from swarmops.cli import _print_outcome
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain import decide
from swarmops.domain.convergence import judge, recovering
from swarmops.domain.hooks import JobResult, runs_from_json
from swarmops.domain.policy import PolicyContext, check
from swarmops.domain.render import HOOKS_LABEL, RenderRequest, render_stack
from swarmops.domain.status import service_statuses
from swarmops.errors import StackError
from swarmops.ops.policycheck import offline_policy_check
from tests.fakes import HookWorld
from tests.unit.fakes import T0, stack, stack_of, task

LIMITS = '{limits: {cpus: "0.5", memory: 64M}}'
STACK = f"""services:
  web:
    build: ./web
    deploy: {{replicas: 1, resources: {LIMITS}}}
  migrate:
    build: ./web
    command: sh -c "echo migrating; ./migrate"
    environment: {{STEP: "1"}}
    deploy: {{resources: {LIMITS}}}
    x-swarmops: {{hook: pre-deploy, timeout: 1m}}
    networks: [proxy]
  smoke:
    image: reg:5000/base/busybox:1
    command: ["wget", "-q", "-O-", "http://web:8080/"]
    deploy: {{resources: {LIMITS}}}
    x-swarmops: {{hook: post-deploy}}
    networks: [proxy]
networks:
  proxy: {{external: true}}
"""
TOP = "networks:\n  proxy: {external: true}\n"   # the end of STACK: a service's extra keys go before it
FILES = {"stack.yml": STACK, "web/Dockerfile": "FROM reg:5000/base/busybox:1\n", "web/index.html": "v1\n"}
CTX = PolicyContext(app="shop", profile="restricted", registry="reg:5000", role_label="role", allowed_roles=("app",),
                    apps=("shop", "billing"), allowed_external=("proxy",))


def rendered(text: str) -> Any:
    return render_stack(stack_of(text), RenderRequest(
        app="shop", commit="a" * 40, role="app", allowed_roles=("app",), role_label="role",
        images={"web": "reg:5000/shop/web:aaaaaaaaaaaa", "migrate": "reg:5000/shop/migrate:aaaaaaaaaaaa"},
        fingerprints={}, file_digests={}, deploy_dir="/d", secret_names={"dbpass": "shop_dbpass_0123abcd"}))


def world(tmp_path: Path) -> HookWorld:
    w = HookWorld(tmp_path)
    w.source.commit("first", FILES)
    return w


def ran(w: HookWorld) -> list[str]:
    return [hook for hook, _, _ in w.jobs.runs]


# ---- the model and the render

def test_a_hook_is_left_out_of_the_file_for_the_cli_and_rendered_as_a_one_off_job() -> None:
    r = rendered(STACK.replace("    environment: {STEP: \"1\"}\n", "    environment: {STEP: \"1\"}\n"
                               "    secrets: [dbpass]\n") +
                 "secrets:\n  dbpass: {file: secrets/dbpass.age}\n")
    doc = yaml.safe_load(r.text)
    assert set(doc["services"]) == {"web"} and "shop_hook-migrate" not in r.text
    assert doc["services"]["web"]["deploy"]["labels"][HOOKS_LABEL] == \
        f"migrate:{r.hooks['migrate'].spec_hash},smoke:{r.hooks['smoke'].spec_hash}"
    job = r.hooks["migrate"].job
    assert job["Name"] == "shop_hook-migrate"
    assert job["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert job["Labels"]["io.swarmops.hook"] == "migrate" and job["Labels"]["io.swarmops.commit"] == "a" * 40
    assert "com.docker.stack.namespace" not in job["Labels"]
    template = job["TaskTemplate"]
    assert template["RestartPolicy"]["Condition"] == "none"
    assert template["Placement"]["Constraints"] == ["node.labels.role == app"]
    assert template["Networks"] == [{"Target": "proxy"}]
    assert template["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024}
    container = template["ContainerSpec"]
    assert container["Image"] == "reg:5000/shop/migrate:aaaaaaaaaaaa"
    assert container["Args"] == ["sh", "-c", "echo migrating; ./migrate"] and container["Env"] == ["STEP=1"]
    assert container["Secrets"] == [{"SecretName": "shop_dbpass_0123abcd",
                                     "File": {"Name": "dbpass", "UID": "0", "GID": "0", "Mode": 0o444}}]
    assert (r.hooks["migrate"].kind, r.hooks["migrate"].timeout, r.hooks["smoke"].timeout) == \
        ("pre-deploy", 60.0, 300.0)


def test_keys_a_one_off_job_has_no_use_for_are_left_out_and_said() -> None:
    r = rendered(STACK.replace("    x-swarmops: {hook: post-deploy}\n", "    x-swarmops: {hook: post-deploy}\n"
                               "    ports: ['8080:8080']\n    healthcheck: {test: [CMD, 'true']}\n"))
    smoke = r.hooks["smoke"]
    assert smoke.ignored == ("healthcheck", "ports")
    assert "ports" not in smoke.doc and "EndpointSpec" not in smoke.job


@pytest.mark.parametrize(("extension", "where", "words"), [
    ("{hook: predeploy}", "services.migrate.x-swarmops.hook", "must be pre-deploy, post-deploy or down"),
    ("{hook: pre-deploy, timeout: soon}", "services.migrate.x-swarmops.timeout", "is not a duration"),
    ("{hook: pre-deploy, migrate: db}", "services.migrate.x-swarmops.migrate", "is not a key of x-swarmops"),
    ("{timeout: 5m}", "services.migrate.x-swarmops", "timeout applies to a hook"),
])
def test_a_wrong_x_swarmops_is_refused_with_file_line_and_key(extension: str, where: str, words: str) -> None:
    text = STACK.replace("x-swarmops: {hook: pre-deploy, timeout: 1m}", f"x-swarmops: {extension}")
    with pytest.raises(StackError) as e:
        stack_of(text)
    assert str(e.value).startswith(f"stack.yml:10: {where}: ") and words in str(e.value)


@pytest.mark.parametrize(("extra", "top", "key", "words"), [
    ("    networks: [back]\n", "  back: {}\n", "services.smoke.networks", "attach the hook to an external"),
    ("    secrets: [pw]\n", "secrets:\n  pw: {file: pw.txt}\n", "services.smoke.secrets.0", "age-encrypted secrets"),
    ("    configs: [conf]\n", "configs:\n  conf: {file: pw.txt}\n", "services.smoke.configs.0",
     "external configs only"),
    ("    tmpfs: /tmp\n", "", "services.smoke.tmpfs", "a hook does not take tmpfs"),
    ("", "", "services.smoke.networks", "default bridge network"),   # no network at all
])
def test_a_hook_asking_for_what_exists_only_after_the_stack_deploy_is_refused_naming_the_key(
        extra: str, top: str, key: str, words: str) -> None:
    smoke = "    x-swarmops: {hook: post-deploy}\n    networks: [proxy]\n"
    # a network of its own instead of the external one; any other key beside the external one
    keep = "" if extra.startswith("    networks") or not extra else "    networks: [proxy]\n"
    text = STACK.replace(smoke, "    x-swarmops: {hook: post-deploy}\n" + keep + extra)
    text = text + top if top.startswith(("secrets", "configs")) else text.replace(TOP, TOP + top)
    with pytest.raises(StackError) as e:
        stack_of(text, files={"pw.txt": b"x"})
    assert f": {key}: " in str(e.value) and words in str(e.value)


def test_a_hook_named_like_a_service_in_another_letter_case_is_refused() -> None:
    text = STACK.replace("  migrate:\n", "  Migrate:\n").replace("  web:\n", "  hook-migrate:\n")
    with pytest.raises(StackError, match="would take the name of service"):
        stack_of(text)


def test_a_hooks_stop_grace_period_is_at_most_30_seconds() -> None:
    with pytest.raises(StackError, match="stop within 30s"):
        rendered(STACK.replace("    x-swarmops: {hook: post-deploy}\n",
                               "    x-swarmops: {hook: post-deploy}\n    stop_grace_period: 2000h\n"))
    r = rendered(STACK.replace("    x-swarmops: {hook: post-deploy}\n",
                               "    x-swarmops: {hook: post-deploy}\n    stop_grace_period: 20s\n"))
    assert r.hooks["smoke"].job["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == 20 * 10**9


def test_a_stack_may_have_at_most_ten_hooks() -> None:
    many = "".join(f"  h{i}:\n    image: reg:5000/base/busybox:1\n    x-swarmops: {{hook: pre-deploy}}\n"
                   f"    networks: [proxy]\n" for i in range(11))
    with pytest.raises(StackError, match="at most 10"):
        stack_of(STACK.replace(TOP, "") + many.replace("services:", "") + TOP)


def test_a_stack_of_hooks_only_is_refused_as_an_empty_stack() -> None:
    with pytest.raises(StackError, match="every service is a hook"):
        stack_of("services:\n  migrate:\n    image: reg:5000/x\n    x-swarmops: {hook: pre-deploy}\n")


def test_a_hostile_hook_is_refused_by_the_policy_like_a_service() -> None:
    hostile = STACK.replace("    x-swarmops: {hook: post-deploy}\n", """    x-swarmops: {hook: post-deploy}
    privileged: true
    volumes: ["/var/lib/billing:/data"]
""").replace("    deploy: {resources: " + LIMITS + "}\n    x-swarmops: {hook: pre-deploy",
             "    deploy: {resources: " + LIMITS + ", placement: {constraints: [node.labels.role == db]}}\n"
             "    x-swarmops: {hook: pre-deploy")
    r = rendered(hostile)
    found = {(v.rule, v.service) for v in check(r.policy_doc, CTX) if v.severity == "deny"}
    assert found == {("SO111", "migrate"), ("SO101", "smoke"), ("SO109", "smoke")}
    assert not [v for v in check(r.doc, CTX) if v.severity == "deny"]   # the hooks are not in the CLI's file


def test_the_offline_policy_check_judges_the_hooks_too(tmp_path: Path) -> None:
    w = HookWorld(tmp_path)
    text = STACK.replace("    x-swarmops: {hook: post-deploy}\n",
                         "    x-swarmops: {hook: post-deploy}\n    privileged: true\n")
    found = offline_policy_check(w.config, w.app, stack_of(text), None)
    assert [(v.rule, v.service, v.where) for v in found if v.severity == "deny"] == [("SO101", "smoke", "stack.yml:17")]


def test_a_hostile_hook_refuses_the_commit_before_anything_runs(tmp_path: Path) -> None:
    w = HookWorld(tmp_path)
    w.source.commit("bind", {**FILES, "stack.yml": STACK.replace(
        "    x-swarmops: {hook: post-deploy}\n", "    x-swarmops: {hook: post-deploy}\n    volumes: ['/etc:/x']\n")})
    out = w.sync()
    assert (out.result, out.error_kind) == ("failed", "PolicyError") and "services.smoke.volumes.0" in out.message
    assert w.swarm.deploys == [] and w.jobs.runs == [] and w.builder.built == []


# ---- the decision

def test_hooks_run_for_a_commit_that_changes_a_spec_and_never_for_a_relabel_or_an_unchanged_poll(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    out = w.sync()
    assert out.result == "deployed" and ran(w) == ["migrate", "smoke"]
    assert [r.name for r in out.hooks] == ["migrate", "smoke"] and "pre-deploy hook migrate passed" in out.message
    w.source.commit("docs", {"README.md": "hello\n"})
    dry = w.poll(dry_run=True)
    assert isinstance(dry.decision, decide.Deploy)
    assert [(s.hook.name, s.run) for s in dry.decision.work.hooks] == [("migrate", False), ("smoke", False)]
    assert "relabel only" in dry.decision.work.hooks[0].why
    relabel = w.poll()
    assert relabel.result == "deployed" and ran(w) == ["migrate", "smoke"]
    assert any("pre-deploy hook migrate does not run" in s for s in w.said)
    assert w.poll().result == "noop" and ran(w) == ["migrate", "smoke"]


def test_a_commit_that_changes_only_one_hook_runs_that_hook(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("smoke another page", {"stack.yml": STACK.replace("http://web:8080/", "http://web:8080/up")})
    out = w.poll()
    assert out.result == "deployed" and ran(w) == ["migrate", "smoke", "smoke"]
    assert isinstance(out.decision, decide.Deploy)
    assert [s.why for s in out.decision.work.hooks if s.run] == ["its own spec changed"]


def test_healing_drift_runs_no_hook(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.swarm.scale("shop", "web", 3)
    out = w.poll()
    assert out.result == "healed" and ran(w) == ["migrate", "smoke"]
    assert isinstance(out.decision, decide.Deploy) and not any(s.run for s in out.decision.work.hooks)


def test_a_dry_run_prints_the_hooks_and_runs_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = world(tmp_path)
    out = w.sync(dry_run=True)
    assert out.result == "planned" and w.jobs.runs == [] and w.swarm.deploys == []
    data = decide.to_dict(out.decision) if out.decision else {}
    assert [(h["name"], h["kind"], h["run"]) for h in data["hooks"]] == [
        ("migrate", "pre-deploy", True), ("smoke", "post-deploy", True)]
    assert data["hooks"][0]["job"]["Name"] == "shop_hook-migrate" and "hooks: pre-deploy migrate runs" in out.message
    _print_outcome(out, as_json=False)
    text = capsys.readouterr().out
    assert "hook      migrate" in text and "pre-deploy, runs: the commit changes web" in text


# ---- the executor

def test_the_pre_deploy_hook_runs_before_the_stack_deploy_and_the_post_deploy_hook_after_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    assert [(hook, before) for hook, _, before in w.jobs.runs] == [("migrate", 0), ("smoke", 1)]
    [(_, text)] = w.swarm.deploys
    assert set(yaml.safe_load(text)["services"]) == {"web"}
    migrate_image = w.jobs.runs[0][1]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert migrate_image in w.builder.built   # built like any service's image
    assert w.jobs.left == {}
    runs = runs_from_json(w.store.history("shop")[0].hooks)
    assert [(r["name"], r["exit_code"], r["state"]) for r in runs] == [("migrate", 0, "complete"),
                                                                       ("smoke", 0, "complete")]


def test_what_a_hook_printed_is_kept_without_url_credentials(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    w.source.commit("migration that fails", {"web/index.html": "v2\n"})
    w.jobs.results["migrate"] = JobResult("failed", 1, 0.4, ("connecting to postgres://shop:S3cr3tPass@db:5432/shop",
                                                             "FATAL: password authentication failed"))
    out = w.poll()
    entry = w.store.history("shop")[0]
    assert out.result == "failed" and "S3cr3tPass" not in out.message + entry.error + entry.hooks
    assert "postgres://***@db:5432/shop" in entry.hooks


def test_a_failing_pre_deploy_hook_deploys_nothing_and_the_app_is_failed_with_its_exit_code_and_log(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    deploys = len(w.swarm.deploys)
    bad = w.source.commit("migration that fails", {"web/index.html": "v2\n"})
    w.jobs.results["migrate"] = JobResult("failed", 3, 0.4, ("migrating", "ERROR: column email exists"), "exit (3)")
    out = w.poll()
    assert (out.result, out.error_kind, out.rolled_back_to) == ("failed", "HookError", "")
    assert len(w.swarm.deploys) == deploys and w.live().deployed_commit() == good
    assert ran(w)[-1] == "migrate" and ran(w).count("smoke") == 1   # the post-deploy hook did not run
    assert "exit code 3" in out.message and "ERROR: column email exists" in out.message
    assert "the previous version keeps running" in out.message
    entry = w.store.history("shop")[0]
    assert (entry.commit_sha, entry.result) == (bad, "failed") and "exit code 3" in entry.error
    [run] = runs_from_json(entry.hooks)
    assert (run["name"], run["kind"], run["exit_code"], run["log_tail"][-1]) == (
        "migrate", "pre-deploy", 3, "ERROR: column email exists")
    status = status_from_store(w.store, "shop", w.live())
    assert status.status == "Failed" and "exit code 3" in status.message and "column email" in status.message
    assert w.poll().result == "skipped" and len(w.jobs.runs) == 3   # not retried by polls

    retry = w.sync()   # an operator's retry of the same commit runs the hook again, and says so
    assert retry.result == "failed" and len(w.jobs.runs) == 4
    assert any("this retry runs the hook again" in s for s in w.said)
    del w.jobs.results["migrate"]
    fixed = w.source.commit("fixed migration", {"web/index.html": "v3\n"})
    assert w.poll().result == "deployed" and w.live().deployed_commit() == fixed


def test_a_pre_deploy_hook_that_does_not_end_in_time_deploys_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.jobs.results["migrate"] = JobResult("complete", 0, 120.0, ("still migrating",))
    out = w.sync()
    assert out.result == "failed" and w.swarm.deploys == []
    assert "pre-deploy hook migrate did not finish within 60s" in out.message and "still migrating" in out.message
    assert "keeps running" not in out.message   # nothing ran before


def test_a_failing_post_deploy_hook_rolls_the_stack_back(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.sync()
    good = w.source.heads[-1]
    w.source.commit("v2", {"web/index.html": "v2\n"})
    w.jobs.results["smoke"] = JobResult("failed", 1, 0.2, ("wget: server returned error: HTTP/1.1 500",))
    out = w.poll()
    assert (out.result, out.error_kind, out.rolled_back_to) == ("failed", "HookError", good)
    assert w.live().deployed_commit() == good
    assert "post-deploy hook smoke failed with exit code 1" in out.message
    assert f"rolled back to {good[:12]}" in out.message
    assert [r.name for r in out.hooks] == ["migrate", "smoke"]


def test_a_hook_whose_secret_is_missing_fails_as_a_passing_fault(tmp_path: Path) -> None:
    w = HookWorld(tmp_path)
    w.source.commit("ext", {**FILES, "stack.yml": STACK.replace(
        "    x-swarmops: {hook: post-deploy}\n", "    x-swarmops: {hook: post-deploy}\n    secrets: [token]\n")
        + "secrets:\n  token: {external: true, name: shop_token}\n"})
    out = w.sync()
    assert out.result == "failed" and out.transient and "shop_token" in out.message
    # checked before anything ran: no hook, no stack deploy and no rollback on each retry
    assert w.jobs.runs == [] and w.swarm.deploys == []


# ---- live state: job modes (ruling 33)

def test_the_live_reader_knows_job_modes_and_a_completed_job_converges() -> None:
    raw: dict[str, Any] = {"ID": "j1", "Version": {"Index": 3}, "Spec": {
        "Name": "app_seed", "Labels": {"io.swarmops.app": "app"}, "Mode": {"ReplicatedJob": {"TotalCompletions": 2}},
        "TaskTemplate": {"ContainerSpec": {"Image": "reg/app/seed:c1@sha256:1"}}}}
    seed = live_service(raw, "app")
    assert (seed.mode, seed.replicas, seed.job) == ("replicated-job", 2, True)
    assert live_service({**raw, "Spec": {**raw["Spec"], "Mode": {"GlobalJob": {}}}}, "app").mode == "global-job"
    done = [task(seed, "complete", desired="complete", at=2), task(seed, "complete", desired="complete", at=3)]
    assert judge(stack([seed], done), ["seed"], T0, 3).state == "converged"
    assert judge(stack([seed], done[:1]), ["seed"], T0, 3).state == "progressing"
    failed = [task(seed, "failed", desired="shutdown", at=2, exit_code=2), task(seed, "failed", desired="shutdown",
                                                                                  at=3, exit_code=2)]
    assert judge(stack([seed], failed), ["seed"], T0, 3).state == "failed"
    assert recovering(stack([seed], done[:1]), ["seed"], T0) is None
    assert service_statuses(stack([seed], done))[0].desired is None   # not Degraded for having no running task


def test_an_older_state_database_gains_the_hooks_and_snapshots_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, commit_sha TEXT "
                     "NOT NULL, author TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', trigger TEXT NOT "
                     "NULL, started REAL NOT NULL, ended REAL, result TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', "
                     "rollback_to TEXT NOT NULL DEFAULT '', render_dir TEXT NOT NULL DEFAULT '', builds TEXT NOT NULL "
                     "DEFAULT '', restarted TEXT NOT NULL DEFAULT '')")
        conn.execute("INSERT INTO deploys(app, commit_sha, trigger, started, result) "
                     "VALUES ('a','c','poll',1,'failed')")
    store = StateStore(path)
    assert store.history("a")[0].hooks == "" and store.history("a")[0].snapshots == ""
    store.record_snapshots(1, '[{"id": "s1"}]')
    assert store.history("a")[0].snapshots == '[{"id": "s1"}]'
    store.record_hooks(1, json.dumps([{"name": "migrate"}]))
    assert runs_from_json(store.history("a")[0].hooks) == [{"name": "migrate"}]
    assert runs_from_json('[{"name": "migr') == [{"raw": '[{"name": "migr'}]   # a copy cut short elsewhere


def test_a_stop_during_the_pre_deploy_hook_leaves_nothing_deployed_and_the_next_start_resolves_it(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    w.reconciler.cancel.set()   # the daemon's grace period is over while the hook runs
    out = w.sync()
    assert (out.result, out.error_kind) == ("failed", "Interrupted") and w.swarm.deploys == [] and w.jobs.left == {}
    assert w.store.history("shop")[0].result == "interrupted"
    w.reconciler.cancel.clear()
    assert w.sync().result == "deployed"
    assert "the stack had not been deployed, nothing changed" in w.store.history("shop")[1].error

"""Issue 27, item 1 (first slice): the environments of one app. An apps.d entry's `environments:` becomes one
app per environment, each a stack of its own following its own branch, with its variables, replicas, role
and policy over the app's; its secrets come from `secrets/<env>/` and must be sealed for it; the CLI takes
APP/ENV; status names the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from swarmops.adapters import age as age_secrets
from swarmops.cli_stacks import app_named
from swarmops.config.loader import load_config
from swarmops.config.models import AppConfig, Config
from swarmops.daemon.metrics import Metrics
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain.stackfile import environment_secret
from swarmops.domain.status import AppStatus
from swarmops.errors import PromotionError, UnknownAppError
from swarmops.ops.promote import plan_promotion, push_promotion
from tests.fakes import World

ENTRY = """name: shop
repo: file:///srv/git/shop.git
variables: {GREETING: hello, TIER: base}
environments:
  staging:
    branch: main
    variables: {TIER: staging}
  production:
    name: shop
    branch: production
    replicas: {web: 3}
    policy: {allowed_external: [proxy]}
"""


def loaded(tmp_path: Path, files: dict[str, str], extra: str = "") -> Any:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir(exist_ok=True)
    for name, text in files.items():
        (apps_d / name).write_text(text)
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {tmp_path}/state\napps_dir: {apps_d}\n{extra}")
    return load_config(config)


def test_each_environment_is_an_app_of_its_own_stack_following_its_own_branch(tmp_path: Path) -> None:
    result = loaded(tmp_path, {"shop.yml": ENTRY})
    assert result.app_errors == []
    staging, production = result.config.apps
    assert (staging.name, staging.branch, staging.environment, staging.group) == ("shop-staging", "main", "staging",
                                                                                 "shop")
    assert (production.name, production.branch, production.environment) == ("shop", "production", "production")
    assert staging.variables == {"GREETING": "hello", "TIER": "staging"}
    assert production.variables == {"GREETING": "hello", "TIER": "base"}
    assert production.replicas == {"web": 3} and staging.replicas == {}
    assert production.policy is not None and production.policy.allowed_external == ["proxy"]
    assert staging.policy is None and not staging.environments
    assert result.config.builtin_variables(staging) == {"SWARMOPS_REGISTRY": "reg:5000", "SWARMOPS_APP": "shop",
                                                        "SWARMOPS_STACK": "shop-staging", "SWARMOPS_ENV": "staging"}


def test_the_cli_takes_app_slash_environment_and_the_stack_name_alike(tmp_path: Path) -> None:
    result = loaded(tmp_path, {"shop.yml": ENTRY})
    assert app_named(result, "shop/staging").name == "shop-staging"
    assert app_named(result, "shop-staging").name == "shop-staging"
    assert app_named(result, "shop/production").name == "shop"
    with pytest.raises(UnknownAppError, match="no app named 'shop/qa'"):
        app_named(result, "shop/qa")


@pytest.mark.parametrize(("environments", "words"), [
    ("{Staging: {branch: main}}", "'Staging' is not an environment name"),
    ("{staging: {name: 'Shop Staging'}}", "key 'environments.staging.name': 'Shop Staging' is not a valid"),
    ("{staging: {name: shop}, production: {name: shop}}", "its stack name 'shop' is another environment's too"),
    ("{staging: {replicas: {web: -1}}}", "replicas"),
], ids=["env-name", "stack-name", "same-stack-twice", "replicas"])
def test_a_bad_environment_is_refused_naming_the_file_and_key_and_the_other_apps_stay(
        tmp_path: Path, environments: str, words: str) -> None:
    result = loaded(tmp_path, {"shop.yml": f"name: shop\nrepo: file:///srv/shop.git\nenvironments: {environments}\n",
                               "blog.yml": "name: blog\nrepo: file:///srv/blog.git\n"})
    [error] = [str(e) for e in result.app_errors]
    assert error.startswith(str(tmp_path / "apps.d" / "shop.yml")) and "environments" in error and words in error, \
        error
    assert [a.name for a in result.config.apps] == ["blog"]


def test_a_stack_name_two_files_claim_is_refused_in_both_whatever_their_order(tmp_path: Path) -> None:
    # an environment added to shop's entry must not take over the stack another team's file runs
    result = loaded(tmp_path, {"a-shop.yml": ENTRY, "c-other.yml": "name: shop-staging\nrepo: file:///srv/other.git\n"})
    errors = sorted(str(e) for e in result.app_errors)
    assert len(errors) == 2 and all("stack 'shop-staging' is claimed by" in e for e in errors), errors
    assert result.config.apps == []   # shop's production does not come in alone either


def test_apps_d_names_that_overlap_under_ruling_30_are_refused(tmp_path: Path) -> None:
    result = loaded(tmp_path, {"a.yml": "name: shop\nrepo: file:///srv/a.git\n",
                               "b.yml": "name: shop_admin\nrepo: file:///srv/b.git\n"})
    [error] = [str(e) for e in result.app_errors]
    assert "b.yml: key 'name': apps 'shop' and 'shop_admin'" in error, error
    assert [a.name for a in result.config.apps] == ["shop"]


def test_two_environments_of_one_entry_sharing_a_bucket_are_refused(tmp_path: Path) -> None:
    backup = ("{volumes: [uploads], schedule: '02:00', s3: {bucket: backups-shop, access_key_file: /k, "
              "secret_key_file: /s}}")
    result = loaded(tmp_path, {
        "shop.yml": f"name: shop\nrepo: file:///srv/shop.git\nenvironments:\n  staging: {{backup: {backup}}}\n"
                    f"  production: {{name: shop, backup: {backup}}}\n",
        "z.yml": "name: zoo\nrepo: file:///srv/zoo.git\n"},
        extra="backup_s3: {endpoint: 'http://minio:9000', network: minio}\n")
    [error] = [str(e) for e in result.app_errors]
    assert "key 'backup.s3.bucket': apps shop-staging and shop both back up into bucket backups-shop" in error
    assert [a.name for a in result.config.apps] == ["zoo"]   # a later file is not refused for it


@pytest.mark.parametrize("key", ["environment: staging", "group: shop", "requires: shop-staging"])
def test_an_entry_cannot_set_what_the_expansion_sets(tmp_path: Path, key: str) -> None:
    # else a plain app would answer to `shop/staging`, or take staging's status label
    result = loaded(tmp_path, {"evil.yml": f"name: evil\nrepo: file:///srv/evil.git\n{key}\n"})
    [error] = [str(e) for e in result.app_errors]
    assert "swarmops sets these for each environment" in error and key.split(":")[0] in error, error


def test_an_environment_keeps_the_configs_policy_where_its_own_says_nothing(tmp_path: Path) -> None:
    config = Config.model_validate({"registry": "r:5000", "policy": {"resource_limits": "deny", "max_replicas": 2,
                                                                     "allowed_external": ["proxy"]},
                                    "apps": [{"name": "shop", "repo": "x", "settle": "1.2345678s",
                                              "policy": {"allowed_ports": [30001]},
                                              "environments": {"staging": {}}}]})
    [staging] = config.apps
    policy = config.policy_for(staging)
    assert (policy.resource_limits, policy.max_replicas, policy.allowed_external) == ("deny", 2, ["proxy"])
    assert policy.allowed_ports == [30001]
    assert staging.settle == 1.2345678   # not rewritten by a round trip


def test_backups_are_set_per_environment_not_for_the_app() -> None:
    with pytest.raises(ValueError, match="move backup: under the environments"):
        AppConfig.model_validate({"name": "shop", "repo": "x", "environments": {"staging": {}},
                                  "backup": {"databases": ["shop"], "schedule": "02:00"}})
    config = Config.model_validate({"registry": "r:5000", "apps": [{"name": "shop", "repo": "x", "environments": {
        "staging": {}, "production": {"backup": {"databases": ["shop"], "schedule": "02:00"}}}}]})
    assert [a.backup is not None for a in config.apps] == [False, True]


def test_an_environments_secret_is_its_own_copy_beside_the_apps() -> None:
    assert environment_secret("secrets/db_password.age", "staging") == "secrets/staging/db_password.age"
    assert environment_secret("deploy/keys/token.age", "production") == "deploy/keys/production/token.age"
    assert environment_secret("token.age", "staging") == "staging/token.age"
    assert environment_secret("secrets/db_password.age", None) == "secrets/db_password.age"


STACK = """services:
  web:
    image: reg:5000/base/busybox:1
    command: ["sleep", "1000"]
    secrets: [db_password]
    deploy: {replicas: 1}
secrets:
  db_password: {file: secrets/db_password.age}
"""


def environment_of(entry: dict[str, Any], env: str) -> AppConfig:
    """The app one environment of an apps.d entry becomes, as the loader makes it."""
    defaults = {"repo": "file:///srv/git/shop.git", "settle": "1s", "deploy_timeout": "30s"}
    config = Config.model_validate({"registry": "reg:5000", "apps": [{**defaults, **entry}]})
    return next(a for a in config.apps if a.environment == env)


def staging_world(tmp_path: Path) -> tuple[World, str]:
    w = World(tmp_path, app=environment_of({"name": "shop", "environments": {
        "staging": {"replicas": {"web": 2}}, "production": {"name": "shop"}}}, "staging"))
    return w, age_secrets.keygen(w.config.state_dir)


def test_staging_deploys_its_own_secret_and_the_replicas_of_its_entry(tmp_path: Path) -> None:
    w, public = staging_world(tmp_path)
    recipient = age_secrets.parse_recipient(public, "age.pub")
    w.source.commit("v1", {"stack.yml": STACK,
                           "secrets/db_password.age": age_secrets.encrypt(recipient, age_secrets.seal(
                               "shop", "db_password", b"production-password")),
                           "secrets/staging/db_password.age": age_secrets.encrypt(recipient, age_secrets.seal(
                               "shop-staging", "db_password", b"staging-password"))})
    out = w.sync()
    assert out.result == "deployed", out.message
    assert set(w.swarm.secret_values.values()) == {b"staging-password"}
    assert w.live().services["web"].replicas == 2


@pytest.mark.parametrize(("files", "words"), [
    ({}, "secrets/staging/db_password.age: not in commit"),
    ({"secrets/staging/db_password.age": "unbound"}, "is bound to no app; an environment takes only secrets sealed"),
    ({"secrets/staging/db_password.age": "production's"}, "secrets/staging/db_password.age"),
], ids=["missing", "unbound", "production's-copied"])
def test_staging_never_takes_a_secret_not_sealed_for_it(tmp_path: Path, files: dict[str, str], words: str) -> None:
    w, public = staging_world(tmp_path)
    recipient = age_secrets.parse_recipient(public, "age.pub")
    made = {"unbound": b"legacy-value", "production's": age_secrets.seal("shop", "db_password", b"production-pw")}
    w.source.commit("v1", {"stack.yml": STACK, **{path: age_secrets.encrypt(recipient, made[kind])
                                                  for path, kind in files.items()}})
    out = w.sync()
    assert out.result == "failed" and words in out.message, out.message
    assert w.swarm.deploys == []


def test_status_names_the_environment_and_the_app(tmp_path: Path) -> None:
    w, _ = staging_world(tmp_path)
    status = status_from_store(w.store, "shop-staging", None, w.app)
    assert (status.group, status.environment, status.label) == ("shop", "staging", "shop/staging")


# ---- require_staging and promote (issue 27, item 2)

WEB = {"stack.yml": """services:
  web:
    image: reg:5000/base/busybox:1
    command: ["sleep", "1000"]
    deploy: {replicas: 1}
"""}
TWO = {"name": "shop", "repo": "file:///srv/git/shop.git", "environments": {
    "staging": {"branch": "main"}, "production": {"name": "shop", "branch": "production", "require_staging": True}}}


def staging_ran(w: World, commit: str, result: str = "succeeded") -> None:
    deploy_id = w.store.start_deploy("shop-staging", commit, "Ana", "v", "poll", "")
    w.store.finish_deploy(deploy_id, result)


def test_require_staging_needs_the_staging_environment() -> None:
    config = Config.model_validate({"registry": "r:5000", "apps": [TWO]})
    assert [(a.name, a.requires) for a in config.apps] == [("shop-staging", None), ("shop", "shop-staging")]
    with pytest.raises(ValueError, match="require_staging names the app's staging environment, and the app has none"):
        Config.model_validate({"registry": "r:5000", "apps": [{"name": "shop", "repo": "x", "environments": {
            "production": {"require_staging": True}}}]})


def test_production_refuses_a_commit_staging_has_not_run_and_takes_it_once_staging_has(tmp_path: Path) -> None:
    w = World(tmp_path, app=environment_of(TWO, "production"))
    head = w.source.commit("v1 pushed straight to production", WEB)
    out = w.poll()
    assert (out.result, out.error_kind) == ("failed", "PromotionError") and w.swarm.deploys == []
    assert "deploys only commits shop-staging has run successfully" in out.message
    assert "swarmops promote shop --from staging --to production" in out.message
    staging_ran(w, head, "failed")
    assert w.poll().result == "skipped" and w.swarm.deploys == []   # failed there: still not
    staging_ran(w, head)
    assert w.poll().result == "deployed"   # the next poll, no sync needed


def promotion_world(tmp_path: Path) -> tuple[World, Config]:
    w = World(tmp_path, app=environment_of(TWO, "staging"))
    return w, Config.model_validate({"registry": "r:5000", "state_dir": str(tmp_path / "state"), "apps": [TWO]})


def test_a_promotion_moves_the_commit_staging_runs_and_converged_on(tmp_path: Path) -> None:
    w, config = promotion_world(tmp_path)
    head = w.source.commit("v1", WEB)
    assert w.sync().result == "deployed"
    p = plan_promotion(config, w.store, w.live(), "shop", "staging", "production")
    assert (p.source.name, p.target.name, p.target.branch, p.commit) == ("shop-staging", "shop", "production", head)
    said = push_promotion(w.source, p)
    assert w.source.pushed == [(head, "production")] and said.startswith("shop: branch production moved to")


def test_a_commit_that_failed_on_staging_or_nothing_deployed_is_not_promoted(tmp_path: Path) -> None:
    w, config = promotion_world(tmp_path)
    with pytest.raises(PromotionError, match="runs no commit swarmops deployed"):
        plan_promotion(config, w.store, w.live(), "shop", "staging", "production")
    w.source.commit("v1", WEB)
    w.sync()
    live = w.live()
    with pytest.raises(PromotionError, match="no successful deploy of it"):
        plan_promotion(config, RecordlessStore(), live, "shop", "staging", "production")
    with pytest.raises(PromotionError, match="shop has no environment 'qa' \\(it has production, staging\\)"):
        plan_promotion(config, w.store, live, "shop", "staging", "qa")


def test_a_promotion_the_remote_refuses_says_why_and_what_to_do(tmp_path: Path) -> None:
    w, config = promotion_world(tmp_path)
    w.source.commit("v1", WEB)
    w.sync()
    w.source.refuse_push = True
    p = plan_promotion(config, w.store, w.live(), "shop", "staging", "production")
    with pytest.raises(PromotionError, match=r"cannot move branch production .*non-fast-forward.*merge them"):
        push_promotion(w.source, p)


class RecordlessStore:
    def deploy_of(self, app: str, commit: str) -> None:
        return None


# ---- production following tags v* (issue 27, item 1)

TAGGED = {"name": "shop", "repo": "file:///srv/git/shop.git", "environments": {
    "staging": {"branch": "main"}, "production": {"name": "shop", "tags": "v*", "require_staging": True}}}


def test_an_environment_follows_tags_or_a_branch_never_both() -> None:
    config = Config.model_validate({"registry": "r:5000", "apps": [TAGGED]})
    staging, production = config.apps
    assert (staging.tags, staging.follows) == (None, "branch main")
    assert (production.tags, production.follows) == ("v*", "tags v*")
    with pytest.raises(ValueError, match="follows a branch or tags, not both"):
        Config.model_validate({"registry": "r:5000", "apps": [{**TAGGED, "environments": {
            "production": {"branch": "production", "tags": "v*"}}}]})
    with pytest.raises(ValueError, match="is not a tag pattern"):
        Config.model_validate({"registry": "r:5000", "apps": [{**TAGGED, "environments": {
            "production": {"tags": "v[0-9]*"}}}]})
    # an app following tags: its staging environment, on a branch, does not inherit them
    app = Config.model_validate({"registry": "r:5000", "apps": [{**TAGGED, "tags": "v*", "environments": {
        "staging": {"branch": "main"}, "production": {"name": "shop"}}}]}).apps
    assert [a.tags for a in app] == [None, "v*"]


def test_a_promotion_to_tags_makes_the_next_tag_above_the_highest(tmp_path: Path) -> None:
    w = World(tmp_path, app=environment_of(TAGGED, "staging"))
    config = Config.model_validate({"registry": "r:5000", "state_dir": str(tmp_path / "state"), "apps": [TAGGED]})
    old, head = w.source.commit("v1", WEB), w.source.commit("v2", {"a.txt": "2"})
    assert w.sync().result == "deployed"
    refs = {"refs/tags/v1.2.9": old, "refs/tags/v1.2.10": old, "refs/tags/v1.2.10^{}": old}
    p = plan_promotion(config, w.store, w.live(), "shop", "staging", "production", refs)
    assert (p.target.name, p.ref, p.commit) == ("shop", "refs/tags/v1.2.11", head)
    assert push_promotion(w.source, p) == f"shop: tag v1.2.11 made at {head[:12]}, which shop-staging runs"
    assert w.source.pushed == [(head, "refs/tags/v1.2.11")]
    named = plan_promotion(config, w.store, w.live(), "shop", "staging", "production", refs, "v2.0.0")
    assert named.ref == "refs/tags/v2.0.0"
    with pytest.raises(PromotionError, match=r"would not be above v1\.2\.10.*name another with --tag"):
        plan_promotion(config, w.store, w.live(), "shop", "staging", "production", refs, "v1.2.1")
    with pytest.raises(PromotionError, match="none is numbered to count from; name the first with --tag"):
        plan_promotion(config, w.store, w.live(), "shop", "staging", "production", {})
    # production's highest tag is staging's commit already: nothing is pushed
    same = plan_promotion(config, w.store, w.live(), "shop", "staging", "production", {"refs/tags/v3": head})
    assert same.ref is None and "nothing to move" in push_promotion(w.source, same)
    assert len(w.source.pushed) == 1


def test_metrics_and_the_overview_put_an_apps_environments_side_by_side() -> None:
    def synced(app: str, commit: str, group: str = "", env: str = "") -> AppStatus:
        return AppStatus(app=app, status="Synced", commit=commit, deployed_at=1.0, last_result="succeeded",
                         message="", group=group, environment=env)
    staging, production = synced("shop-staging", "b" * 40, "shop", "staging"), synced("shop", "a" * 40, "shop",
                                                                                     "production")
    plain = synced("board", "c" * 40)
    text = generate_latest(Metrics(lambda: [staging, production, plain]).registry).decode()
    assert 'app="shop-staging"' in text and 'environment="staging"' in text and 'group="shop"' in text
    assert 'swarmops_app_info{app="board",commit="' + "c" * 40 + '",environment="",group="board"' in text

"""Issue 27, item 1 (first slice): the environments of one app. An apps.d entry's `environments:` becomes one
app per environment, each a stack of its own following its own branch, with its variables, replicas, role
and policy over the app's; its secrets come from `secrets/<env>/` and must be sealed for it; the CLI takes
APP/ENV; status names the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmops.adapters import age as age_secrets
from swarmops.cli_stacks import app_named
from swarmops.config.loader import load_config
from swarmops.config.models import AppConfig, Config
from swarmops.daemon.statuscache import status_from_store
from swarmops.domain.stackfile import environment_secret
from swarmops.errors import UnknownAppError
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


def loaded(tmp_path: Path, files: dict[str, str]) -> Any:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir(exist_ok=True)
    for name, text in files.items():
        (apps_d / name).write_text(text)
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {tmp_path}/state\napps_dir: {apps_d}\n")
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
    ("{staging: {name: 'Shop Staging'}}", "environment staging: name: "),
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


def test_an_environment_whose_stack_another_app_has_refuses_the_whole_entry(tmp_path: Path) -> None:
    result = loaded(tmp_path, {"a-blog.yml": "name: shop-staging\nrepo: file:///srv/blog.git\n", "shop.yml": ENTRY})
    [error] = [str(e) for e in result.app_errors]
    assert "duplicate app name 'shop-staging'" in error
    assert [a.name for a in result.config.apps] == ["shop-staging"]   # production does not come in alone


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


def staging_world(tmp_path: Path) -> tuple[World, str]:
    w = World(tmp_path, app={"name": "shop-staging", "environment": "staging", "group": "shop",
                             "replicas": {"web": 2}})
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

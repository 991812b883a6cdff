"""swarmops gives every service of an app behind the SSO middleware what checks Polise's signed answer (X-Auth-Token):
SSO_PUBLIC_KEY, Polise's key from the config, and SSO_AUDIENCE, the app's name, in the effective stack the
policy judges and Docker runs; an app's own value for either never wins."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from swarmops.config.models import AppConfig, Config
from swarmops.domain.compose import schema
from swarmops.domain.decide import Candidate, CommitMeta, render_candidate
from swarmops.domain.policyctx import policy_context
from swarmops.domain.stackfile import build_specs
from swarmops.ops.policycheck import offline_policy_check, render_offline
from tests.unit.fakes import stack_of

# fixed bytes, not random ones: the parameters below name the key, and every pytest-xdist worker must
# collect the same test ids
KEY = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
ROUTER = "traefik.http.routers.demo"


def config(**sso: Any) -> Config:
    return Config.model_validate({"registry": "reg:5000", "domain": "apps.example.go.id", "apps": [],
                                  "sso": {"public_key": KEY, **sso}})


DEMO = AppConfig.model_validate({"name": "demo", "repo": "file:///dev/null", "role": "app",
                                 "policy": {"profile": "restricted", "allowed_external": ["proxy"]}})


def stack(web_labels: list[str], environment: str = "", worker_labels: tuple[str, ...] = (),
          worker_environment: str = "") -> str:
    def labels(items: list[str] | tuple[str, ...]) -> str:
        return "".join(f"        - {item}\n" for item in items) or "        []\n"
    return f"""version: "3.8"
services:
  web:
    image: reg:5000/demo/web:1
    networks: [proxy]
{environment}    deploy:
      resources: {{limits: {{cpus: "0.25", memory: 64M}}}}
      labels:
{labels(web_labels)}  worker:
    image: reg:5000/demo/worker:1
{worker_environment}    deploy:
      resources: {{limits: {{cpus: "0.25", memory: 64M}}}}
      labels:
{labels(worker_labels)}networks:
  proxy:
    external: true
"""


def rendered_env(text: str, cfg: Config | None = None) -> dict[str, dict[str, str]]:
    doc = yaml.safe_load(render_offline(cfg or config(), DEMO, stack_of(text)).text)
    return {name: svc.get("environment", {}) for name, svc in doc["services"].items()}


BEHIND = ["traefik.enable=true", f"{ROUTER}.rule=Host(`demo.apps.example.go.id`)",
          f"{ROUTER}.middlewares=sso@file", "traefik.http.services.demo.loadbalancer.server.port=8080"]


def test_every_service_of_an_app_behind_the_sso_middleware_gets_polises_key_and_its_apps_name() -> None:
    env = rendered_env(stack(BEHIND))
    assert env["web"] == env["worker"] == {"SSO_PUBLIC_KEY": KEY, "SSO_AUDIENCE": "demo"}   # the worker too


def test_a_service_a_router_forwards_to_through_another_services_labels_gets_swarmops_values() -> None:
    """web's router sends its requests (router.service=) to the Traefik service worker's labels define: worker
    answers them, so its own SSO_* must not stand."""
    web = [*BEHIND[:3], f"{ROUTER}.service=demo-worker"]
    worker = ("traefik.enable=true", "traefik.http.services.demo-worker.loadbalancer.server.port=8080")
    own = "    environment:\n      SSO_PUBLIC_KEY: the-workers-own-key\n      SSO_AUDIENCE: payroll\n"
    env = rendered_env(stack(web, worker_labels=worker, worker_environment=own))
    assert env["worker"] == {"SSO_PUBLIC_KEY": KEY, "SSO_AUDIENCE": "demo"}


def test_a_router_behind_the_middleware_through_the_apps_own_chain_counts() -> None:
    chained = [*BEHIND[:2], f"{ROUTER}.middlewares=demo-chain", "traefik.http.middlewares.demo-chain.chain.middlewares="
               "demo-headers,sso@file", "traefik.http.middlewares.demo-headers.headers.framedeny=true", BEHIND[3]]
    assert rendered_env(stack(chained))["web"]["SSO_AUDIENCE"] == "demo"


def test_an_app_without_a_router_behind_the_middleware_gets_nothing() -> None:
    public = [b for b in BEHIND if "middlewares" not in b]
    assert rendered_env(stack(public)) == {"web": {}, "worker": {}}
    disabled = ["traefik.enable=false", *BEHIND[1:]]
    assert rendered_env(stack(disabled)) == {"web": {}, "worker": {}}


def test_the_apps_own_key_and_audience_are_replaced_by_swarmops() -> None:
    hostile = "    environment:\n      SSO_PUBLIC_KEY: the-apps-own-key\n      SSO_AUDIENCE: payroll\n      MODE: dev\n"
    env = rendered_env(stack(BEHIND, hostile))
    assert env["web"] == {"SSO_PUBLIC_KEY": KEY, "SSO_AUDIENCE": "demo", "MODE": "dev"}


def test_without_a_key_in_the_config_the_service_gets_an_empty_one_not_the_apps() -> None:
    hostile = "    environment:\n      SSO_PUBLIC_KEY: the-apps-own-key\n"
    bare = Config.model_validate({"registry": "reg:5000", "domain": "apps.example.go.id", "apps": []})
    assert rendered_env(stack(BEHIND, hostile), bare)["web"] == {"SSO_PUBLIC_KEY": "", "SSO_AUDIENCE": "demo"}


def test_the_key_changes_the_spec_of_the_apps_behind_the_middleware_only() -> None:
    other = config(public_key=base64.urlsafe_b64encode(bytes(range(32, 64))).rstrip(b"=").decode())
    one, two = (render_offline(c, DEMO, stack_of(stack(BEHIND))) for c in (config(), other))
    assert one.services["web"].spec_hash != two.services["web"].spec_hash   # a new key redeploys them
    assert one.services["worker"].spec_hash != two.services["worker"].spec_hash
    public = stack([b for b in BEHIND if "middlewares" not in b])
    one, two = (render_offline(c, DEMO, stack_of(public)) for c in (config(), other))
    assert one.services["web"].spec_hash == two.services["web"].spec_hash


def test_the_restricted_policy_passes_the_services_swarmops_gave_the_key() -> None:
    assert offline_policy_check(config(), DEMO, stack_of(stack(BEHIND)), None) == []


@pytest.mark.parametrize("bad", ["", KEY + "A", KEY[:-1], KEY[:-1] + "B", KEY.replace(KEY[0], "+", 1),
                                 KEY + "="])
def test_a_public_key_that_is_not_32_bytes_of_base64url_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="base64url of its 32 bytes"):
        config(public_key=bad)


def test_the_deploy_renders_the_key_as_the_offline_check_does() -> None:
    st = stack_of(stack(BEHIND))
    cand = Candidate(commit="b" * 40, meta=CommitMeta("Ana", "a change"), stack=st, specs=build_specs(st), images=(),
                     file_digests={}, secret_names={}, deploy_dir="/srv/swarmops/deploys/demo/bbbbbbbbbbbb",
                     policy=policy_context(config(), DEMO, {}), cli_versions=schema.CLI_28)
    rendered, _ = render_candidate(config(), DEMO, cand)
    assert rendered.doc["services"]["web"]["environment"] == {"SSO_PUBLIC_KEY": KEY, "SSO_AUDIENCE": "demo"}

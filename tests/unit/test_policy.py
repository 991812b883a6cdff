"""Policy: a corpus of hostile stacks, each refused with the right rule, and a property test that a
forbidden feature added to any valid stack is always refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmops.domain.policy import PRIVILEGED, PolicyContext, check, published_ports
from swarmops.domain.render import RenderRequest, render_stack
from tests.unit.fakes import stack_of

HOSTILE = sorted((Path(__file__).parent / "data" / "hostile").glob("*.yml"))
CTX = PolicyContext(app="shop", profile="restricted", registry="registry.local:5000", role_label="role",
                    allowed_roles=("app",), ports_in_use={30500: "billing"}, resource_limits="warn",
                    apps=("shop", "billing", "victim"), domain="example.go.id", allowed_external=("db-postgres",))


def rendered(text: str, filename: str = "stack.yml") -> Any:
    stack = stack_of(text, filename, files={"c.txt": b"c\n"})
    return stack, render_stack(stack, RenderRequest(
        app="shop", commit="a" * 40, role="app", allowed_roles=("app",), role_label="role", images={},
        fingerprints={}, file_digests={"c.txt": "1" * 64}, deploy_dir="/d"))


def load(path: Path) -> dict[str, Any]:
    """The hostile file as Docker would get it: through the model and the render."""
    doc: dict[str, Any] = rendered(path.read_text(), path.name)[1].doc
    return doc


def denied(doc: dict[str, Any], ctx: PolicyContext = CTX) -> set[str]:
    return {v.rule for v in check(doc, ctx) if v.severity == "deny"}


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_every_hostile_stack_is_refused_with_its_rule(path: Path) -> None:
    rule = path.stem.split("-")[0]
    assert denied(load(path)) == {rule}


def test_the_corpus_covers_every_rule() -> None:
    assert {p.stem.split("-")[0] for p in HOSTILE} == {f"SO1{n:02d}" for n in range(1, 34) if n not in (17, 29)}


def test_a_swarm_template_in_a_bind_under_an_allowed_root_is_refused_before_it_names_the_docker_socket() -> None:
    """Swarm expands `{{...}}` in mount sources on the node, after the policy read the text: this source
    is under the allowed root as written and /var/run/docker.sock once expanded."""
    ctx = PolicyContext(**{**CTX.__dict__, "allowed_bind_mounts": ("/srv/shop",)})
    source = "/srv/shop/{{printf \"%c%c/%c%c/%c%c/var/run/docker.sock\" 46 46 46 46 46 46}}"
    text = ("services:\n  web:\n    image: registry.local:5000/shop/web:abc\n    deploy:\n"
            "      resources: {limits: {cpus: '0.5', memory: 64M}}\n"
            f"    volumes:\n      - {{type: bind, source: '{source}', target: /data}}\n")
    assert denied(rendered(text)[1].doc, ctx) == {"SO133"}
    plain = text.replace(source, "/srv/shop/data")
    assert denied(rendered(plain)[1].doc, ctx) == set()   # the same mount written out is allowed


@pytest.mark.parametrize("label", [
    "traefik.http.services.shop.loadbalancer.server.port=8080",
    "traefik.http.services.shop-web.loadbalancer.passhostheader=true",
    "traefik.http.services.shop.loadbalancer.sticky.cookie.name=s",
    "traefik.http.services.shop.loadbalancer.healthcheck.path=/healthz",
    "traefik.http.middlewares.shop-h.headers.customresponseheaders.x-frame-options=DENY",
    "traefik.http.middlewares.shop-r.redirectscheme.scheme=https",
    "traefik.http.middlewares.shop-a.basicauth.users=ana:$$apr1$$x$$y",
    "traefik.http.middlewares.shop-c.chain.middlewares=shop-h,shop-r",
    "traefik.http.middlewares.shop-e.errors.service=shop-pages",
])
def test_traefik_labels_that_stay_within_the_app_are_allowed(label: str) -> None:
    key, value = label.split("=", 1)
    text = ("services:\n  web:\n    image: registry.local:5000/shop/web:abc\n    deploy:\n"
            "      resources: {limits: {cpus: '0.5', memory: 64M}}\n"
            f"      labels: {{{key}: '{value}'}}\n")
    assert denied(rendered(text)[1].doc) == set()


@pytest.mark.parametrize(("label", "rule"), [
    ("traefik.http.services.shop.loadbalancer.servers.0.url=http://victim_web:80", "SO130"),
    ("traefik.http.services.shop.weighted.services.0.name=victim", "SO130"),
    ("traefik.http.services.shop.mirroring.service=victim", "SO130"),
    ("traefik.tcp.services.shop.loadbalancer.server.address=198.18.0.1:22", "SO130"),
    ("traefik.http.middlewares.shop-d.digestauth.usersfile=/run/secrets/x", "SO131"),
    ("traefik.http.middlewares.shop-x.unknownkind.foo=1", "SO131"),
    ("traefik.http.middlewares.shop-e.errors.service=victim-pages", "SO120"),
    ("traefik.http.middlewares.shop-c.chain.middlewares=shop-h,victim-auth", "SO123"),
])
def test_traefik_labels_that_reach_past_the_app_are_refused(label: str, rule: str) -> None:
    key, value = label.split("=", 1)
    text = ("services:\n  web:\n    image: registry.local:5000/shop/web:abc\n    deploy:\n"
            "      resources: {limits: {cpus: '0.5', memory: 64M}}\n"
            f"      labels: {{{key}: '{value}'}}\n")
    assert denied(rendered(text)[1].doc) == {rule}


def test_violations_name_service_key_rule_fix_and_line() -> None:
    path = next(p for p in HOSTILE if p.stem == "SO101-privileged")
    stack, render = rendered(path.read_text())
    [v] = check(render.doc, CTX, where=lambda key: stack.where(*key))
    assert str(v) == ("stack.yml:8: service 'web', key services.web.privileged: [SO101] privileged containers are "
                      "root on the node; fix: remove privileged")


def test_missing_limits_warn_by_default_and_deny_when_configured() -> None:
    doc = {"services": {"web": {"image": "registry.local:5000/shop/web:1"}}}
    [v] = check(doc, CTX)
    assert (v.rule, v.severity) == ("SO117", "warn")
    deny = PolicyContext(**{**CTX.__dict__, "resource_limits": "deny"})
    assert denied(doc, deny) == {"SO117"}


def test_privileged_profile_allows_infrastructure_but_not_taken_ports() -> None:
    ctx = PolicyContext(**{**CTX.__dict__, "profile": PRIVILEGED})
    for path in HOSTILE:
        assert denied(load(path), ctx) <= {"SO114"}
    assert denied(load(next(p for p in HOSTILE if p.stem == "SO114-port-taken")), ctx) == {"SO114"}


def test_allow_lists_let_the_ops_team_open_what_an_app_needs() -> None:
    ctx = PolicyContext(**{**CTX.__dict__, "allowed_cap_add": ("NET_BIND_SERVICE",), "allowed_ports": (80,),
                           "allowed_bind_mounts": ("/srv/data",), "allowed_roles": ("app", "db"),
                           "allowed_external": ("billing_internal",), "allowed_registries": ("docker.io",)})
    for stem in ("SO109-bind-outside", "SO111-role-not-allowed", "SO113-port-range", "SO115-external-network",
                 "SO112-outside-image"):
        assert denied(load(next(p for p in HOSTILE if p.stem == stem)), ctx) == set(), stem


def test_published_ports_are_read_from_live_specs() -> None:
    specs = {"billing": [{"EndpointSpec": {"Ports": [{"PublishedPort": 30500, "TargetPort": 80}]}}]}
    assert published_ports(specs) == {30500: "billing"}


# --- property: a valid stack plus any forbidden feature, in any encoding, is always refused ----------------

TOP = {"networks": {"db": {"external": True, "name": "billing_internal"}},
       "volumes": {"data": {"driver_opts": {"type": "none", "o": "bind", "device": "/"}}}}
# each forbidden feature in the encodings an app developer could write it in (interpolated, deprecated,
# case variants, short and long syntax); `${...}` defaults are resolved by the model before the policy
FORBIDDEN: list[tuple[str, list[dict[str, Any]]]] = [
    ("SO101", [{"privileged": True}, {"privileged": "${P:-true}"}]),
    ("SO102", [{"cap_add": ["NET_ADMIN"]}, {"cap_add": ["cap_sys_admin"]}, {"cap_add": ["${C:-SYS_ADMIN}"]}]),
    ("SO103", [{"network_mode": "host"}, {"network_mode": "HOST"}, {"network_mode": "${M:-host}"}]),
    ("SO104", [{"pid": "host"}]), ("SO105", [{"ipc": "host"}]), ("SO106", [{"userns_mode": "host"}]),
    ("SO107", [{"devices": ["/dev/mem:/dev/mem"]}]),
    ("SO108", [{"security_opt": ["seccomp=unconfined"]}, {"security_opt": ["apparmor:unconfined"]}]),
    ("SO109", [{"volumes": ["/opt/x:/x"]}, {"volumes": [{"type": "bind", "source": "/opt/x", "target": "/x"}]},
               {"volumes": ["${D:-/opt}/x:/x"]}]),
    ("SO110", [{"volumes": ["/var/run/docker.sock:/s"]}, {"volumes": ["${R:-/}:/host"]},
               {"volumes": [{"type": "bind", "source": "/etc/../", "target": "/h"}]}]),
    ("SO111", [{"deploy": {"placement": {"constraints": ["node.role == manager"]}}},
               {"deploy": {"placement": {"constraints": ["NODE.ROLE==Manager"]}}},
               {"deploy": {"placement": {"constraints": ["node.role != worker"]}}},
               {"deploy": {"placement": {"constraints": ["node.labels.role == ${X:- db}"]}}},
               {"deploy": {"placement": {"constraints": ["Node.Hostname == vm"]}}}]),
    ("SO112", [{"image": "quay.io/evil/miner:1"}, {"image": "${I:-docker.io/x}:1"}]),
    ("SO113", [{"ports": ["22:22"]}, {"ports": [{"target": 22, "published": "${P:-22}"}]}]),
    ("SO114", [{"ports": ["30500:80"]}]),
    ("SO115", [{"networks": ["db"]}]),
    ("SO116", [{"deploy": {"mode": "global"}}, {"deploy": {"mode": "global-job"}}]),
    ("SO118", [{"cgroup_parent": "/x"}, {"sysctls": {"kernel.shmmax": "1"}}]),
    ("SO119", [{"volumes": ["data:/data"]}, {"volumes": [{"type": "volume", "source": "data", "target": "/d"}]}]),
    ("SO121", [{"deploy": {"labels": {"traefik.http.routers.shop.rule": "Host(`swarmops.example.go.id`)"}}},
               {"deploy": {"labels": ["traefik.http.routers.shop.rule=Host(`shop.example.go.id`) || Path(`/`)"]}}]),
    ("SO125", [{"deploy": {"replicas": 11}}, {"deploy": {"replicas": "${N:-5000}"}}]),
    ("SO126", [{"labels": {"com.docker.stack.namespace": "billing"}}]),
]

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(lambda n: n not in ("y", "n"))
valid_service = st.fixed_dictionaries(
    {"image": names.map(lambda n: f"registry.local:5000/shop/{n}:1")},
    optional={"environment": st.dictionaries(names.map(str.upper), names, max_size=3),
              "ports": st.lists(st.integers(30000, 30499).map(lambda p: f"{p}:80"), max_size=2, unique=True),
              "tmpfs": st.just(["/tmp"]),
              "deploy": st.fixed_dictionaries({"replicas": st.integers(0, 5),
                                                "resources": st.just({"limits": {"cpus": "1", "memory": "1G"}})}),
              "labels": st.dictionaries(st.sampled_from(["team", "tier"]), names, max_size=2)})
valid_stack = st.dictionaries(names, valid_service, min_size=1, max_size=4).map(lambda s: {"services": s})


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def render_denied(doc: dict[str, Any]) -> set[str]:
    return denied(rendered(yaml.safe_dump({"version": "3.8", **doc}))[1].doc)


@settings(max_examples=300, deadline=None)
@given(stack=valid_stack, feature=st.sampled_from(FORBIDDEN), data=st.data())
def test_any_forbidden_feature_in_any_encoding_added_to_a_valid_stack_is_refused(
        stack: dict[str, Any], feature: tuple[str, list[dict[str, Any]]], data: st.DataObject) -> None:
    assert render_denied(stack) == set()
    target = data.draw(st.sampled_from(sorted(stack["services"])))
    encoding = data.draw(st.sampled_from(feature[1]))
    hostile = copy.deepcopy(stack)
    hostile["services"][target] = _deep_merge(hostile["services"][target], encoding)
    hostile.update({k: v for k, v in TOP.items() if k in str(encoding) or (k == "volumes" and "data" in str(encoding))})
    assert feature[0] in render_denied(hostile)


@pytest.mark.parametrize("snippet", ["    logging: {options: {syslog-address: 'tcp://198.18.0.9:514'}}\n",
                                     "    volumes: ['/var:/v']\n", "    volumes: ['/run:/r']\n"])
def test_review_findings_are_refused(snippet: str) -> None:
    text = HOSTILE[0].read_text().split("    deploy:")[0] + snippet
    assert denied(load_text(text)) & {"SO118", "SO110"}


def load_text(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = rendered(text)[1].doc
    return doc


@pytest.mark.parametrize(("rule", "allowed"), [
    ("Host(`shop.example.go.id`)", True),
    ("Host(`shop.example.go.id`) && !PathPrefix(`/metrics`)", True),
    ("Host(`shop.example.go.id`) && (Path(`/a`) || Path(`/b`))", True),
    ("host(`SHOP.example.go.id`)", True),
    ("Host(`shop.example.go.id`) || Path(`/`)", False),
    ("(Host(`shop.example.go.id`) || Host(`billing.example.go.id`))", False),
    ("Host(`shop.example.go.id`, `swarmops.example.go.id`)", False),
    ("!Host(`shop.example.go.id`)", False),
    ("HostRegexp(`{any:.+}`)", False),
    ("PathPrefix(`/`)", False),
    ("Host(`shop.example.go.id`", False),
])
def test_router_rules_may_match_only_the_apps_own_hosts(rule: str, allowed: bool) -> None:
    from swarmops.domain.policy.traefik import rule_problem
    assert (rule_problem(rule, CTX) is None) == allowed


# --- single sign-on: the one shared middleware of the config, never a look-alike ---------------------------

SSO_CTX = PolicyContext(**{**CTX.__dict__, "apps": ("shop", "billing", "victim", "sso"), "sso_middleware": "sso@file"})


def labelled(*labels: str) -> dict[str, Any]:
    pairs = ", ".join(f"{label.split('=', 1)[0]}: '{label.split('=', 1)[1]}'" for label in labels)
    return load_text("services:\n  web:\n    image: registry.local:5000/shop/web:abc\n    deploy:\n"
                     "      resources: {limits: {cpus: '0.5', memory: 64M}}\n"
                     f"      labels: {{{pairs}}}\n")


@pytest.mark.parametrize("labels", [
    ("traefik.http.routers.shop.middlewares=sso@file",),
    ("traefik.http.routers.shop.middlewares=shop-h@swarm, sso@file",
     "traefik.http.middlewares.shop-h.headers.framedeny=true"),
    ("traefik.http.routers.shop-admin.middlewares=shop-c",
     "traefik.http.middlewares.shop-c.chain.middlewares=sso@file,shop-h"),
])
def test_an_app_may_put_its_routers_behind_the_shared_sso_middleware(labels: tuple[str, ...]) -> None:
    assert denied(labelled(*labels), SSO_CTX) == set()


@pytest.mark.parametrize(("label", "fix"), [
    ("traefik.http.routers.shop.middlewares=othersapp-auth@swarm", "define shop-... yourself"),
    ("traefik.http.routers.shop.middlewares=victim-auth@swarm", "define shop-... yourself"),
    ("traefik.http.routers.shop.middlewares=sso@swarm", "name exactly sso@file"),   # app "sso"'s labels
    ("traefik.http.routers.shop.middlewares=sso@docker", "name exactly sso@file"),
    ("traefik.http.routers.shop.middlewares=sso", "name exactly sso@file"),   # the router's own provider's
    ("traefik.http.routers.shop.middlewares=sso@file,sso@swarm", "name exactly sso@file"),
    ("traefik.http.middlewares.shop-c.chain.middlewares=sso@swarm", "name exactly sso@file"),
    ("traefik.http.middlewares.shop-c.chain.middlewares=shop-h,victim-auth@swarm", "define shop-... yourself"),
])
def test_a_look_alike_of_the_sso_middleware_or_another_apps_is_refused(label: str, fix: str) -> None:
    [v] = [v for v in check(labelled(label), SSO_CTX) if v.severity == "deny"]
    assert v.rule == "SO123" and fix in v.fix


def test_only_the_configured_sso_middleware_is_shared() -> None:
    from swarmops.config.models import Config
    from swarmops.domain.policyctx import policy_context
    config = Config.model_validate({"registry": "registry.local:5000", "domain": "example.go.id",
                                    "sso": {"middleware": "portal-sso@file"},
                                    "apps": [{"name": "shop", "repo": "file:///srv/shop.git"}]})
    ctx = policy_context(config, config.apps[0], {})
    assert denied(labelled("traefik.http.routers.shop.middlewares=portal-sso@file"), ctx) == set()
    assert denied(labelled("traefik.http.routers.shop.middlewares=sso@file"), ctx) == {"SO123"}
    default = Config.model_validate({"registry": "registry.local:5000", "apps": [config.apps[0]]})
    assert policy_context(default, default.apps[0], {}).sso_middleware == "sso@file"


def test_an_app_that_brings_its_own_forward_auth_is_told_of_the_sso_middleware() -> None:
    doc = labelled("traefik.http.middlewares.shop-auth.forwardauth.address=http://198.18.0.1/auth")
    [v] = [v for v in check(doc, SSO_CTX) if v.severity == "deny"]
    assert v.rule == "SO131" and "sso@file" in v.fix


def test_the_sso_door_rule_reader_is_the_one_the_live_state_reads_hosts_with() -> None:
    """A matcher's name inside another's quoted argument is text to both (tests/unit/test_http_sso.py)."""
    from swarmops.domain.live import rule_hosts
    from swarmops.domain.policy.traefik import rule_problem
    poison = 'Host(`shop.example.go.id`) && Header(`X-Note`, "Host(`victim.example.go.id`)")'
    assert rule_problem(poison, CTX) is None
    assert rule_hosts(poison) == ["shop.example.go.id"]


# --- TCP and UDP: around the HTTP routers, single sign-on included (SO132) ---------------------------------

OWN_SNI = "traefik.tcp.routers.shop.rule=HostSNI(`shop.example.go.id`)"
PASSTHROUGH = "traefik.tcp.routers.shop.tls.passthrough=true"


@pytest.mark.parametrize("labels", [
    # the review's finding: TLS of the app's own host terminated with the office's wildcard certificate, h2
    # offered, and browsers coalescing every other host's requests (their cookies) onto the connection
    (OWN_SNI, "traefik.tcp.routers.shop.entrypoints=websecure", "traefik.tcp.routers.shop.tls=true",
     "traefik.tcp.routers.shop.service=shop", "traefik.tcp.services.shop.loadbalancer.server.port=8080"),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.certresolver=le"),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.options=default"),
    (OWN_SNI,),
    ("traefik.tcp.routers.shop.entrypoints=websecure",),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.passthrough=false"),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.passthrough=yes"),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.passthrough= true"),
    (OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.tls=false"),
    (OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.tls.options=default"),
    (OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.middlewares=shop-ip"),
    (OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.priority=100"),
    # the passthrough is another router's if Traefik tells names apart by case
    ("traefik.tcp.routers.Shop.rule=HostSNI(`shop.example.go.id`)", PASSTHROUGH),
    ("Traefik.TCP.Routers.shop.rule=HostSNI(`shop.example.go.id`)",),
    ("traefik.tcp.middlewares.shop-ip.ipallowlist.sourcerange=10.0.0.0/8",),
    ("traefik.tcp.serverstransports.shop.tls.insecureskipverify=true",),
    ("traefik.tcp.routers=shop",),
    ("traefik.udp.routers.shop.entrypoints=dns",),
    ("traefik.udp.routers.shop.service=shop",),
    ("traefik.udp.services.shop.loadbalancer.server.port=53",),
    ("TRAEFIK.UDP.services.shop.loadbalancer.server.port=53",),
])
def test_tcp_and_udp_routes_are_refused_unless_the_router_passes_tls_through(labels: tuple[str, ...]) -> None:
    found = [v for v in check(labelled(*labels), CTX) if v.severity == "deny"]
    assert "SO132" in {v.rule for v in found}
    assert all("ask the ops team (privileged profile)" in v.fix for v in found if v.rule == "SO132")


def test_a_tcp_router_without_passthrough_is_refused_on_its_first_key_and_told_of_passthrough() -> None:
    [v] = [v for v in check(labelled(OWN_SNI, "traefik.tcp.routers.shop.tls=true"), CTX) if v.severity == "deny"]
    assert v.rule == "SO132" and v.key == "services.web.deploy.labels.traefik.tcp.routers.shop.rule"
    assert "office's wildcard certificate" in v.message and "tls.passthrough=true" in v.fix


@pytest.mark.parametrize("labels", [
    (OWN_SNI, PASSTHROUGH),
    (OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.tls=true", "traefik.tcp.routers.shop.entrypoints=websecure",
     "traefik.tcp.routers.shop.service=shop@swarm", "traefik.tcp.services.shop.loadbalancer.server.port=8443"),
    (OWN_SNI, "traefik.tcp.routers.shop.tls.passthrough=True"),
    ("traefik.tcp.services.shop.loadbalancer.server.port=8443",),   # a service no router of the labels names
])
def test_a_tcp_router_that_passes_its_own_hosts_tls_through_to_the_app_is_allowed(labels: tuple[str, ...]) -> None:
    """The app then presents its own certificate (never the office's), so no browser coalesces another host's
    requests onto the connection."""
    assert denied(labelled(*labels), CTX) == set()


@pytest.mark.parametrize(("labels", "rule"), [
    (("traefik.tcp.routers.shop.rule=HostSNI(`*`)", PASSTHROUGH), "SO121"),
    (("traefik.tcp.routers.shop.rule=HostSNI(`victim.example.go.id`)", PASSTHROUGH), "SO121"),
    (("traefik.tcp.routers.shop.rule=HostSNI(`shop.example.go.id`) || ClientIP(`0.0.0.0/0`)", PASSTHROUGH), "SO121"),
    (("traefik.tcp.routers.shop.rule=HostSNIRegexp(`^.+$$`)", PASSTHROUGH), "SO121"),
    ((OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.service=victim-db"), "SO120"),
    ((OWN_SNI, PASSTHROUGH, "traefik.tcp.routers.shop.service=shop@file"), "SO120"),
    (("traefik.tcp.routers.victim.rule=HostSNI(`shop.example.go.id`)",
      "traefik.tcp.routers.victim.tls.passthrough=true"), "SO120"),
    ((OWN_SNI, PASSTHROUGH, "traefik.tcp.services.shop.loadbalancer.server.address=198.18.0.1:22"), "SO130"),
])
def test_a_passthrough_router_keeps_to_the_apps_own_host_names_and_tasks(labels: tuple[str, ...], rule: str) -> None:
    assert denied(labelled(*labels), CTX) == {rule}


# --- a router's service: the app's own, from its labels' providers ----------------------------------------

@pytest.mark.parametrize(("app", "service", "allowed"), [
    ("api", "api@internal", False),          # Traefik's API: /api/rawdata shows the whole routing config
    ("api", "dashboard@internal", False),
    ("sso", "sso-polise@file", False),       # Polise's door, the proxy's file provider
    ("shop", "shop@file", False),
    ("shop", "shop-web@internal", False),
    ("shop", "shop@Swarm", False),
    ("shop", "victim-web", False),
    ("shop", "shop", True),
    ("shop", "shop@swarm", True),
    ("shop", "shop-web@docker", True),
])
def test_a_router_or_errors_service_must_be_one_of_the_apps_own_labels(app: str, service: str, allowed: bool) -> None:
    from swarmops.domain.policy.traefik import traefik
    ctx = PolicyContext(**{**SSO_CTX.__dict__, "app": app, "apps": ("shop", "victim", "sso", "api")})
    for label in (f"traefik.http.routers.{app}.service", f"traefik.http.middlewares.{app}-e.errors.service"):
        found = {v.rule for v in traefik("web", {"deploy": {"labels": {label: service}}}, {}, ctx)}
        assert found == (set() if allowed else {"SO120"}), label

"""Issue 24 on the lab: Polise as the single sign-on door to every app, in Chromium, over HTTPS (a
certificate authority this run makes), through the real Traefik of stacks/proxy (its shared `sso@file`
middleware and the identity headers it strips) and the real OpenID Connect provider (LemonLDAP::NG,
lab/oidc-provider: dwho is in the groups ops and staff, rtyler in staff only).

swarmops deploys the proxy and the apps from their repos, the apps under the restricted profile: an echo
app behind SSO (it answers with the HTTP_* variables a WSGI server makes of the request's headers, so an
underscore spelling shows as the same variable), the php template made with `--set sso=true` and limited
to the group ops in its apps.d entry, the go template made with it too (for every signed-in user), a
public echo app, and an app whose stack names another app's middleware. Polise signs each answer with a key
this run makes (X-Auth-Token), whose public half swarmops' config gives the apps behind SSO; another app's
container on the proxy network, sending forged headers straight to a template's app, is nobody there.
Polise itself runs on the host
(main.build, the service's own entry point, with its sessions in memory: their PostgreSQL form is tested
in stacks/polise/tests), where the provider listens; the proxy reaches it on the lab bridge, and a
service of this test routes Polise's host there."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, BrowserContext, expect
from ruamel.yaml import YAML

from bench.lab import remove_stack
from tests.integration.browser import chromium, goto, submit_again_on_network_change, through_loopback
from tests.integration.conftest import (
    MANAGER,
    MANAGER_IP,
    REGISTRY,
    ROOT,
    GitRepo,
    Swarmops,
    free_node_port,
    lab_images,
    lab_tls,
    ops_stacks,
    running_tasks,
    wait_for,
)

DOMAIN = "apps.example.go.id"
OIDC_PORT = 8481   # a provider of this module's own (test_polise_login has the default one)
SSO_KEY = Ed25519PrivateKey.generate()   # Polise's signing key (a Swarm secret in the office)
ECHO = """import json, signal, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def app(environ, start):
    seen = {k: v.encode("latin-1").decode("utf-8", "replace") for k, v in environ.items() if k.startswith("HTTP_")}
    start("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen, sort_keys=True).encode()]


make_server("0.0.0.0", 8080, app, handler_class=Quiet).serve_forever()
"""


def echo_app(rid: str, app: str, labels: list[str]) -> dict[str, str | None]:
    lines = "".join(f"        - {label}\n" for label in labels)
    return {
        "web/Dockerfile": f"FROM {REGISTRY}/base/python:3.11\nCOPY echo.py /echo.py\nCMD [\"python3\", \"/echo.py\"]\n",
        "web/echo.py": ECHO,
        "stack.yml": f"""version: "3.8"
services:
  web:
    build: ./web
    stop_grace_period: 2s
    networks: [proxy]
    deploy:
      replicas: 1
      resources: {{limits: {{cpus: "0.25", memory: 64M}}, reservations: {{cpus: "0.01", memory: 16M}}}}
      update_config: {{monitor: 1s}}
      labels:
        - traefik.enable=true
        - traefik.swarm.network=proxy-{rid}
        - traefik.http.routers.${{SWARMOPS_STACK}}.rule=Host(`{app}.{DOMAIN}`)
        - traefik.http.routers.${{SWARMOPS_STACK}}.entrypoints=websecure
        - traefik.http.routers.${{SWARMOPS_STACK}}.tls=true
        - traefik.http.services.${{SWARMOPS_STACK}}.loadbalancer.server.port=8080
{lines}networks:
  proxy:
    external: true
    name: proxy-{rid}
"""}


@dataclass
class Door:
    """The module's deployment: what the browser and the raw client need."""

    lab: docker.APIClient
    swarmops: Swarmops
    node_ip: str        # an app node: its Traefik answers on tls_port
    tls_port: int
    ca_file: Path
    spki: str           # the office certificate's key, for Chromium (which has no CA list of ours)
    polise: str         # Polise's public URL
    apps: dict[str, str]   # role in this test -> app name
    log: Path

    def url(self, role: str, path: str = "/") -> str:
        return f"https://{self.apps[role]}.{DOMAIN}:{self.tls_port}{path}"

    @contextmanager
    def browser(self) -> Iterator[Browser]:
        """Chromium reaching the proxy through a loopback forwarder (browser.through_loopback says why)."""
        with through_loopback(self.node_ip, self.tls_port) as local, \
                chromium(f"--host-resolver-rules=MAP *.{DOMAIN}:{self.tls_port} {local},MAP *.{DOMAIN} {self.node_ip}",
                         f"--ignore-certificate-errors-spki-list={self.spki}") as browser:
            yield browser

    def get(self, host: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """A request to the proxy by the host's name over TLS, checked against this run's CA (not Chromium)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        conn = http.client.HTTPSConnection(host, self.tls_port, context=ctx, timeout=15)
        conn.sock = ctx.wrap_socket(socket.create_connection((self.node_ip, self.tls_port), 15), server_hostname=host)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
        finally:
            conn.close()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def spki_hash(cert_pem: bytes) -> str:
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def new_repo(path: Path) -> GitRepo:
    path.mkdir()
    return GitRepo(path)


def on_bridge() -> int:
    with socket.socket() as s:
        s.bind((MANAGER_IP, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def door(lab: docker.APIClient, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    lab_images("traefik", "haproxy", "python", "php", "golang")
    root = tmp_path_factory.mktemp("sso")
    rid = run_id
    swarmops = Swarmops(dir=root, run_id=rid)
    api_port, polise_port, web_port, tls_port = on_bridge(), on_bridge(), free_node_port(), free_node_port()
    swarmops.extra.update(http={"listen": f"{MANAGER_IP}:{api_port}"}, poll_interval="2s", domain=DOMAIN,
                          apps_dir=str(root / "apps.d"), sso={"public_key": b64url(raw_public(SSO_KEY))})
    swarmops.write()
    swarmops.run("keygen")
    apps = {role: swarmops.name(role) for role in ("proxy", "echo", "kiosk", "board", "open", "borrower")}
    polise_host = f"polise-{rid}.{DOMAIN}"
    public = f"https://{polise_host}:{tls_port}"
    tls = lab_tls()

    provider = subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "up"], capture_output=True, text=True,
                              env={**os.environ, "OIDC_PORT": str(OIDC_PORT),
                                   "OIDC_REDIRECT_URIS": f"{public}/auth/callback"}, timeout=600)
    assert provider.returncode == 0, provider.stderr + provider.stdout

    ops = new_repo(root / "ops")
    ops_stacks(ops, swarmops.state_dir, ["proxy"], {"proxy": tls.secrets}, replace={
        "name: proxy\n": f"name: proxy-{rid}\n",
        "--providers.swarm.network=proxy\n": f"--providers.swarm.network=proxy-{rid}\n",
        "published: 80,": f"published: {web_port},", "published: 443,": f"published: {tls_port},",
        "SSO_POLISE_URL: http://polise_web:8080": f"SSO_POLISE_URL: http://{MANAGER_IP}:{polise_port}"})
    ops.commit("the proxy", {})
    swarmops.add_app(apps["proxy"], ops.url, stack="stacks/proxy/stack.yml", role="app",
                     policy={"profile": "privileged"}, deploy_timeout="120s")
    restricted = {"profile": "restricted", "allowed_external": [f"proxy-{rid}"]}
    middlewares = "traefik.http.routers.${SWARMOPS_STACK}.middlewares="
    for role, labels in (("echo", [f"{middlewares}sso@file"]), ("open", []),
                         ("borrower", [f"{middlewares}{apps['echo']}-auth@swarm"])):   # another app's
        repo = new_repo(root / role)
        repo.commit(f"the {role} app", echo_app(rid, apps[role], labels))
        swarmops.add_app(apps[role], repo.url, policy=restricted)
    made = [new_from_template(swarmops, root, apps["kiosk"], "php", rid, ["ops"]),
            new_from_template(swarmops, root, apps["board"], "go", rid, [])]

    token = swarmops.run("token", "create", "polise", "--scope", "read").stdout.strip().splitlines()[-1]
    (root / "read-token").write_text(token + "\n")
    (root / "session-secret").write_text(secrets.token_urlsafe(32) + "\n")
    (root / "sso-key").write_bytes(SSO_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    log = root / "daemon.log"
    proc = server = route = None
    try:
        swarmops.run("sync", apps["proxy"])   # its network before the apps join it
        proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        server = start_polise(root, public, api_port, polise_port)
        route = route_polise(lab, rid, polise_host, polise_port)
        node_ip = next(n["Status"]["Addr"] for n in lab.nodes() if n["Description"]["Hostname"] == "app2")
        found = Door(lab, swarmops, node_ip, tls_port, tls.ca_file, spki_hash(tls.cert_pem), public, apps, log)

        def all_routed() -> bool:
            try:
                return (found.get(f"{apps['echo']}.{DOMAIN}", "/")[0] == 302
                        and found.get(f"{apps['kiosk']}.{DOMAIN}", "/")[0] == 302
                        and found.get(f"{apps['board']}.{DOMAIN}", "/")[0] == 302
                        and found.get(f"{apps['open']}.{DOMAIN}", "/")[0] == 200
                        and found.get(polise_host, "/healthz")[0] == 200)
            except OSError:
                return False

        wait_for(all_routed, 240, "the apps behind the proxy, Polise routed", log)
        assert all(work.is_dir() for work in made)
        yield found
    finally:
        if server is not None:
            server.should_exit = True
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=90)
        if route is not None:
            lab.remove_service(route)
        for name in {*(app["name"] for app in swarmops.apps), apps["kiosk"], apps["board"]}:   # those two: apps.d
            remove_stack(lab, name)
        subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "down"], env={**os.environ, "OIDC_PORT": str(
            OIDC_PORT)}, capture_output=True, timeout=60)


def new_from_template(swarmops: Swarmops, root: Path, app: str, template: str, rid: str, groups: list[str]) -> Path:
    """A template made with sso, as the ops team makes it (`swarmops new`), limited to `groups` (none: every
    signed-in user)."""
    remote = root / f"{app}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    swarmops.run("new", app, "--template", template, "--remote", f"file://{remote}", "--set", f"domain={DOMAIN}",
                 "--set", "replicas=1", "--set", "sso=true")
    work = root / app
    subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
    stack = work / "stack.yml"
    text = stack.read_text().replace("traefik.swarm.network: proxy\n", f"traefik.swarm.network: proxy-{rid}\n")
    stack.write_text(text.replace("name: proxy\n", f"name: proxy-{rid}\n"))
    git = ["git", "-C", str(work), "-c", "user.name=Ops", "-c", "user.email=ops@example.go.id"]
    subprocess.run([*git, "commit", "-qam", "this run's proxy"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    entry = root / "apps.d" / f"{app}.yml"
    spec = YAML(typ="safe").load(entry.read_text())
    spec["policy"] = {"profile": "restricted", "allowed_external": [f"proxy-{rid}"]}
    spec["sso"] = {"groups": groups, "contact": "the kiosk team (ext. 214)"} if groups else {}
    entry.write_text(json.dumps(spec))
    return work


def start_polise(root: Path, public: str, api_port: int, port: int) -> uvicorn.Server:
    from polise.main import build  # the service's own entry point, from the stack's settings

    app = build({"POLISE_PUBLIC_URL": public, "POLISE_SWARMOPS_URL": f"http://{MANAGER_IP}:{api_port}",
                 "POLISE_SWARMOPS_TOKEN_FILE": str(root / "read-token"),
                 "POLISE_SESSION_SECRET_FILE": str(root / "session-secret"),
                 "POLISE_SSO_KEY_FILE": str(root / "sso-key"),
                 "POLISE_OIDC_DISCOVERY_URL": f"http://127.0.0.1:{OIDC_PORT}/.well-known/openid-configuration",
                 "POLISE_OIDC_CLIENT_ID": "polise",
                 "POLISE_OIDC_CLIENT_SECRET_FILE": f"/run/oidc-provider-{OIDC_PORT}/polise.secret",
                 "POLISE_OIDC_SCOPE": "openid profile email groups", "POLISE_SSO_DOMAIN": DOMAIN})
    server = uvicorn.Server(uvicorn.Config(app, host=MANAGER_IP, port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_for(lambda: server.started, 20, "uvicorn to start Polise")
    return server


def route_polise(lab: docker.APIClient, rid: str, host: str, port: int) -> str:
    """What Polise's own stack labels do in the office: route its host, here to the process on the host."""
    name = f"polise-route-{rid}"
    labels = {"traefik.enable": "true", "traefik.swarm.network": f"proxy-{rid}",
              f"traefik.http.routers.{name}.rule": f"Host(`{host}`)",
              f"traefik.http.routers.{name}.entrypoints": "websecure", f"traefik.http.routers.{name}.tls": "true",
              f"traefik.http.services.{name}.loadbalancer.server.url": f"http://{MANAGER_IP}:{port}"}
    spec = docker.types.TaskTemplate(
        container_spec=docker.types.ContainerSpec(f"{REGISTRY}/base/busybox:1", ["sleep", "3600"],
                                                  stop_grace_period=1_000_000_000),
        placement=docker.types.Placement(constraints=["node.role == manager"]), networks=[f"proxy-{rid}"])
    return str(lab.create_service(spec, name=name, labels=labels)["ID"])


def sign_in(context: BrowserContext, door: Door, role: str, user: str, path: str = "/path?x=1") -> Any:
    """Opens an app: Polise sends the browser to the provider, whose form it fills; back on the app."""
    page = context.new_page()
    goto(page, door.url(role, path))
    expect(page.locator("input[name=user]")).to_be_visible()   # LemonLDAP::NG's own form
    assert page.url.startswith(f"http://127.0.0.1:{OIDC_PORT}/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", user)
    page.keyboard.press("Enter")
    try:
        expect(page).to_have_url(door.url(role, path))   # back where the user started
    except AssertionError:
        if "/auth/callback" not in page.url:
            raise
        # Chromium reloads a page that a network change broke (ERR_NETWORK_CHANGED: the lab's engines add
        # and remove interfaces while other tests run; seen in CI), so Polise's callback redeemed its one-time
        # code twice and said the sign-in failed. The provider's session is there: opening the app again
        # signs in without its form. A sign-in that is really broken fails this second time too.
        goto(page, door.url(role, path))
        expect(page).to_have_url(door.url(role, path))
    return page


def app_cookie(context: BrowserContext, door: Door, role: str) -> str:
    host = f"{door.apps[role]}.{DOMAIN}"
    found = [c for c in context.cookies() if c["name"] == "__Host-polise_sso" and c["domain"] == host]
    assert len(found) == 1, context.cookies()
    assert found[0]["secure"] and found[0]["httpOnly"]
    return str(found[0]["value"])


def echoed(page: Any) -> dict[str, str]:
    return dict(json.loads(page.locator("body").inner_text()))


def test_an_sso_app_signs_in_through_polise_a_second_one_needs_no_new_sign_in_and_sign_out_ends_both(
        door: Door) -> None:
    with door.browser() as browser:
        context = browser.new_context(locale="en-US")
        page = sign_in(context, door, "echo", "dwho")
        seen = echoed(page)
        assert seen["HTTP_X_AUTH_USER"] == "dwho" and seen["HTTP_X_AUTH_NAME"] == "Doctor Who"
        assert {"ops", "staff"} <= set(seen["HTTP_X_AUTH_GROUPS"].split(","))
        # the second and third apps: no form; the php and go templates' own pages greet the user
        for role in ("kiosk", "board"):
            goto(page, door.url(role))
            expect(page.locator("body")).to_contain_text("Signed in as Doctor Who")
            assert not page.url.startswith("http://127.0.0.1")
        cookies = {c["domain"]: c for c in context.cookies() if c["name"] == "__Host-polise_sso"}
        assert set(cookies) == {f"{door.apps[r]}.{DOMAIN}" for r in ("echo", "kiosk", "board")}   # host-only
        polise_cookies = [c for c in context.cookies() if c["name"] == "__Host-polise"]
        assert [c["domain"] for c in polise_cookies] == [urllib.parse.urlsplit(door.polise).hostname]   # its host only
        echo_cookie, kiosk_cookie = app_cookie(context, door, "echo"), app_cookie(context, door, "kiosk")
        # sign-out at Polise: both hosts' cookies are refused from then on, even replayed
        # asked first: a GET signs nobody out
        submit_again_on_network_change(page, f"{door.polise}/logout", "main form[action='/logout'] button")
        expect(page).to_have_url(f"{door.polise}/")
        for role, cookie in (("echo", echo_cookie), ("kiosk", kiosk_cookie)):
            status, headers, _ = door.get(f"{door.apps[role]}.{DOMAIN}", "/", {"Cookie": f"__Host-polise_sso={cookie}"})
            assert status == 302 and headers["location"].startswith(f"{door.polise}/sso/start?"), (role, status)


def test_identity_headers_a_client_sends_never_reach_the_app(door: Door) -> None:
    with door.browser() as browser:
        context = browser.new_context(locale="en-US")
        sign_in(context, door, "echo", "rtyler")
        cookie = app_cookie(context, door, "echo")
    forged = {"X-Auth-User": "admin", "X_Auth_User": "admin", "x_auth_user": "admin", "X-Auth_User": "admin",
              "X.Auth.Email": "boss@example.go.id", "X_AUTH_GROUPS": "ops", "X-Auth-Email": "boss@example.go.id"}
    for name, value in forged.items():
        status, _, body = door.get(f"{door.apps['echo']}.{DOMAIN}", "/", {
            "Cookie": f"__Host-polise_sso={cookie}", name: value})
        seen = json.loads(body)
        assert status == 200 and seen["HTTP_X_AUTH_USER"] == "rtyler", (name, seen)
        assert "admin" not in body and "boss@" not in body and "ops" not in seen["HTTP_X_AUTH_GROUPS"], (name, seen)
    # a public app gets none of them either (the proxy strips them on every route)
    status, _, body = door.get(f"{door.apps['open']}.{DOMAIN}", "/", {"X-Auth-User": "admin", "X_Auth_User": "admin"})
    assert status == 200 and "X_AUTH" not in body and "admin" not in body


def test_a_return_address_outside_the_domain_and_a_tampered_cookie_are_refused(door: Door) -> None:
    polise_host = urllib.parse.urlsplit(door.polise).hostname
    assert polise_host
    for rd in ("https://evil.example.com/", f"https://{DOMAIN}.evil.example.com/", "//evil.example.com/",
               f"http://{door.apps['echo']}.{DOMAIN}/"):
        status, headers, body = door.get(polise_host, "/sso/start?" + urllib.parse.urlencode({"rd": rd}),
                                         {"Accept-Language": "en"})
        assert status == 400 and "location" not in headers and "return address" in body, rd
    with door.browser() as browser:
        context = browser.new_context(locale="en-US")
        sign_in(context, door, "echo", "dwho")
        cookie = app_cookie(context, door, "echo")
    host = f"{door.apps['echo']}.{DOMAIN}"
    assert door.get(host, "/", {"Cookie": f"__Host-polise_sso={cookie}"})[0] == 200
    value, sig = cookie.rsplit(".", 1)
    for bad in (f"{value}.{sig[::-1]}", f"{value[:-2]}xx.{sig}", value.split(".")[0]):
        status, headers, _ = door.get(host, "/", {"Cookie": f"__Host-polise_sso={bad}"})
        assert status == 302 and "/sso/start?" in headers["location"], bad
    # the cookie of one app host is nothing on another
    assert door.get(f"{door.apps['kiosk']}.{DOMAIN}", "/", {"Cookie": f"__Host-polise_sso={cookie}"})[0] == 302


def test_a_user_outside_the_apps_groups_gets_polises_403_page_and_one_inside_gets_in(door: Door) -> None:
    with door.browser() as browser:
        context = browser.new_context(locale="en-US")
        page = sign_in_refused(context, door, "kiosk", "rtyler")
        expect(page.locator(".message")).to_contain_text(f"{door.apps['kiosk']} is only for the members of: ops")
        expect(page.locator("main")).to_contain_text("the kiosk team (ext. 214)")
        # Indonesian for an Indonesian reader
        context_id = browser.new_context(locale="id-ID")
        page = sign_in_refused(context_id, door, "kiosk", "rtyler")
        expect(page.locator(".message")).to_contain_text("hanya untuk anggota: ops")
        inside = browser.new_context(locale="en-US")
        page = sign_in(inside, door, "kiosk", "dwho", "/")
        expect(page.locator("body")).to_contain_text("Signed in as Doctor Who")


def sign_in_refused(context: BrowserContext, door: Door, role: str, user: str) -> Any:
    page = context.new_page()
    with page.expect_response(lambda r: r.url == door.url(role) and r.status == 403, timeout=30_000):
        goto(page, door.url(role))
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", user)
        page.keyboard.press("Enter")
    return page


def test_an_app_without_the_label_stays_public_and_one_naming_another_apps_middleware_is_refused(
        door: Door) -> None:
    status, _, body = door.get(f"{door.apps['open']}.{DOMAIN}", "/")
    assert status == 200 and "HTTP_HOST" in body
    status_of = {s["app"]: s for s in door.swarmops.json("status")}
    borrower = status_of[door.apps["borrower"]]
    assert borrower["status"] == "PolicyViolation" and "SO123" in borrower["message"], borrower
    assert not door.lab.services(filters={"label": f"com.docker.stack.namespace={door.apps['borrower']}"})
    wait_for(lambda: "Sign-in needed" in catalog_card(door, "echo"), 30, "the catalog to mark the SSO app")
    assert "Sign-in needed" not in catalog_card(door, "open")


def catalog_card(door: Door, role: str) -> str:
    host = urllib.parse.urlsplit(door.polise).hostname
    assert host
    _, _, page = door.get(host, "/", {"Accept-Language": "en"})
    return next((c for c in page.split("<li")[1:] if f'data-app="{door.apps[role]}"' in c), "")


DIRECT = """import json, sys, urllib.request
out = {}
for name, url, headers in json.loads(sys.argv[1]):
    try:
        out[name] = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10).read().decode()
    except Exception as e:
        out[name] = f"failed: {e!r}"
print(json.dumps(out))
"""


def from_container_of(door: Door, role: str, requests: list[tuple[str, str, dict[str, str]]]) -> dict[str, str]:
    """What `requests` (name, url, headers) get when sent by the running container of the app `role`: another
    app's code on the proxy network, past the proxy."""
    [task] = running_tasks(door.lab, door.apps[role], "web")
    hostname = door.lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
    on_manager = task["NodeID"] == door.lab.info()["Swarm"]["NodeID"]
    node = docker.APIClient(base_url=MANAGER if on_manager else f"unix:///run/swarm-lab/{hostname}.sock", timeout=60)
    run = node.exec_create(task["Status"]["ContainerStatus"]["ContainerID"],
                           ["python3", "-c", DIRECT, json.dumps(requests)])
    found: dict[str, str] = json.loads(node.exec_start(run).decode().strip().splitlines()[-1])
    return found


def claims_of(token: str) -> dict[str, Any]:
    """The claims of one of Polise's tokens, after its signature verified with this run's key."""
    head, body, sig = (base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))
    SSO_KEY.public_key().verify(sig, token.rsplit(".", 1)[0].encode())
    assert json.loads(head)["alg"] == "EdDSA"
    return dict(json.loads(body))


def minted(aud: str, name: str) -> str:
    """A token as Polise makes one, for `aud`: what only the holder of Polise's key can make."""
    def part(data: dict[str, Any]) -> str:
        return b64url(json.dumps(data).encode())
    now = int(time.time())
    signed = f"{part({'alg': 'EdDSA', 'typ': 'JWT'})}.{part({'aud': aud, 'exp': now + 60, 'sub': 'x', 'name': name})}"
    return f"{signed}.{b64url(SSO_KEY.sign(signed.encode()))}"


def test_another_apps_container_sending_forged_headers_and_a_token_of_its_own_app_straight_to_an_app_is_nobody(
        door: Door) -> None:
    with door.browser() as browser:
        context = browser.new_context(locale="en-US")
        page = sign_in(context, door, "echo", "dwho")
        token = echoed(page)["HTTP_X_AUTH_TOKEN"]   # what the echo app's code is given: a real one, for itself
        claims = claims_of(token)
        assert (claims["aud"], claims["sub"], claims["name"]) == (door.apps["echo"], "dwho", "Doctor Who")
        assert claims["exp"] - claims["iat"] == 60 and claims["iss"] == door.polise
        for role in ("board", "kiosk"):   # through the proxy, the go and php templates greet the user
            goto(page, door.url(role))
            expect(page.locator("body")).to_contain_text("Signed in as Doctor Who")
    forged = {"X-Auth-User": "dwho", "X-Auth-Email": "dwho@badwolf.org", "X-Auth-Name": "Doctor Who",
              "X-Auth-Groups": "ops,staff"}
    # by the tasks' own addresses (`tasks.<service>`): by the service's name (its VIP) the lab answered
    # "No route to host" between containers
    requests = [(f"{role} {why}", f"http://tasks.{door.apps[role]}_web:8080/", headers)
                for role in ("board", "kiosk")
                for why, headers in (("headers", forged), ("replayed", {**forged, "X-Auth-Token": token}),
                                     ("minted", {"X-Auth-Token": minted(door.apps[role], "Only Polise")}))]
    seen = from_container_of(door, "echo", requests)
    for role in ("board", "kiosk"):
        for why in ("headers", "replayed"):   # forged headers, and a token made for another app: nobody
            assert "Hello from" in seen[f"{role} {why}"] and "Signed in as" not in seen[f"{role} {why}"], seen
        # the same way in, a token of Polise's key for this app: the app checks the token, and only it
        assert "Signed in as Only Polise" in seen[f"{role} minted"], seen
    env = door.lab.inspect_service(f"{door.apps['board']}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"SSO_AUDIENCE={door.apps['board']}" in env and f"SSO_PUBLIC_KEY={b64url(raw_public(SSO_KEY))}" in env

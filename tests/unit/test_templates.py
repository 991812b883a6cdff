"""Every app template renders (defaults and edge cases), is read by Docker, renders with swarmops and
passes the restricted policy; a repo made from a template updates from one template tag to the next."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import copier
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ruamel.yaml import YAML

from swarmops.config.models import AppConfig, Config
from swarmops.domain.stackfile import Variables, load_stack
from swarmops.ops.bootstrap import list_templates
from swarmops.ops.policycheck import check_stack_text

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ["php", "node", "python", "go", "static"]
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "postgres-and-bucket": {"database": "postgres", "bucket": "reports.2026", "replicas": 1},
    "mysql-long-name": {"database": "mysql", "app_name": "a" * 63, "port": 65535, "domain": "x.example.go.id"},
    "sso": {"sso": True, "database": "postgres"},
}
CONFIG = Config.model_validate({"registry": "registry.local:5000", "apps": []})


def render(dest: Path, template: str, **data: Any) -> Path:
    answers = {"template": template, "app_name": f"demo-{template}", **data}
    copier.run_copy(str(ROOT), str(dest), data=answers, defaults=True, unsafe=True, quiet=True, vcs_ref="HEAD")
    return dest


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("template", TEMPLATES)
def test_template_renders_and_passes_docker_swarmops_and_the_restricted_policy(
        tmp_path: Path, template: str, variant: str) -> None:
    data = VARIANTS[variant]
    repo = render(tmp_path / "app", template, **data)
    for required in ("Dockerfile", "stack.yml", "docs/USAGE.md", "docs/DATABASE.md", "README.md",
                     ".github/workflows/ci.yml", ".dockerignore", ".gitignore", ".copier-answers.yml"):
        assert (repo / required).is_file(), required
    dockerfile = (repo / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile
    # a build stage where there is something to build; python's server comes with its base image
    assert dockerfile.count("FROM ") == (1 if template == "python" else 2)
    assert "sleep 6" in dockerfile or template in ("php", "node", "go")   # drains before it stops
    name = data.get("app_name", f"demo-{template}")
    stack_text = (repo / "stack.yml").read_text()
    host = f"Host(`{name}.{data.get('domain', 'apps.example.go.id')}`)"
    assert deploy_labels(repo, name)[f"traefik.http.routers.{name}.rule"] == host

    app = AppConfig.model_validate({"name": name, "repo": "file:///dev/null"})
    found = check_stack_text(CONFIG, app, stack_text, "stack.yml", "restricted", repo)
    assert [str(v) for v in found if v.severity == "deny"] == []

    if shutil.which("docker") and "config" in subprocess.run(["docker", "stack", "--help"], capture_output=True,
                                                              text=True).stdout:
        for secret in ("db_password", "s3_access_key", "s3_secret_key"):
            (repo / "secrets").mkdir(exist_ok=True)
            (repo / "secrets" / f"{secret}.age").write_text("x")
        out = subprocess.run(["docker", "stack", "config", "-c", "stack.yml"], cwd=repo, capture_output=True,
                             text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": "unix:///nope"})
        assert out.returncode == 0, out.stderr
        svc = YAML(typ="safe").load(out.stdout)["services"]["web"]
        assert svc["deploy"]["update_config"]["order"] == "start-first"
        assert svc["deploy"]["update_config"]["failure_action"] == "rollback"
        assert svc["deploy"]["resources"]["limits"]["memory"]


def test_bad_answers_are_refused_by_the_templates_validators(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lowercase"):
        render(tmp_path / "x", "static", app_name="Not A Stack")
    with pytest.raises(ValueError, match="1024"):
        render(tmp_path / "y", "static", port=80)


def test_templates_lists_each_template_with_its_own_variables() -> None:
    infos = {t.name: {v.name: v for v in t.variables} for t in list_templates(str(ROOT), None)}
    assert sorted(infos) == sorted(TEMPLATES)
    assert "php_version" in infos["php"] and "php_version" not in infos["go"]
    assert infos["node"]["port"].default == "3000" and infos["static"]["port"].default == "8080"
    assert infos["python"]["python_server"].choices == ["gunicorn", "uvicorn"]
    assert all(infos[t]["sso"].default is False and "single sign-on" in infos[t]["sso"].help for t in TEMPLATES)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@x", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_repo_made_from_a_template_updates_to_the_next_template_tag(tmp_path: Path) -> None:
    src = tmp_path / "swarmops"
    shutil.copytree(ROOT / "templates", src / "templates")
    shutil.copy(ROOT / "copier.yml", src / "copier.yml")
    _git("init", "-q", "-b", "main", cwd=src)
    _git("add", "-A", cwd=src)
    _git("commit", "-q", "-m", "templates v1", cwd=src)
    _git("tag", "v1.0.0", cwd=src)

    app = tmp_path / "app"
    copier.run_copy(str(src), str(app), data={"template": "static", "app_name": "portal"}, defaults=True,
                    unsafe=True, quiet=True, vcs_ref="v1.0.0")
    answers = YAML(typ="safe").load((app / ".copier-answers.yml").read_text())
    assert (answers["_src_path"], answers["_commit"], answers["template"]) == (str(src), "v1.0.0", "static")
    _git("init", "-q", "-b", "main", cwd=app)
    _git("add", "-A", cwd=app)
    _git("commit", "-q", "-m", "from template", cwd=app)
    (app / "site" / "index.html").write_text((app / "site" / "index.html").read_text() + "<!-- ours -->\n")
    _git("commit", "-q", "-am", "our change", cwd=app)

    ci = src / "templates" / "static" / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text() + "      - run: echo lint\n")
    _git("commit", "-q", "-am", "templates v2: lint step", cwd=src)
    _git("tag", "v1.1.0", cwd=src)

    copier.run_update(str(app), defaults=True, unsafe=True, quiet=True, overwrite=True, vcs_ref="v1.1.0")
    assert "echo lint" in (app / ".github" / "workflows" / "ci.yml").read_text()
    assert "<!-- ours -->" in (app / "site" / "index.html").read_text()
    assert YAML(typ="safe").load((app / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"


def test_new_refuses_names_that_are_not_stack_names(tmp_path: Path) -> None:
    from swarmops.errors import BootstrapError
    from swarmops.ops.bootstrap import new_app

    with pytest.raises(BootstrapError, match="not a valid app name"):
        new_app(CONFIG, "My App", "static", f"file://{tmp_path}/x.git", {})


@pytest.mark.parametrize("database", ["postgres", "mysql"])
def test_the_python_templates_page_says_which_server_it_cannot_reach_and_shows_no_credential(
        tmp_path: Path, database: str) -> None:
    repo = render(tmp_path / "app", "python", database=database, bucket="uploads")
    (tmp_path / "db").write_text("db-password-value\n")
    (tmp_path / "key").write_text("access-key-value")
    env = {"PATH": "/usr/bin:/bin", "DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_NAME": "x", "DB_USER": "x",
           "DB_PASSWORD_FILE": str(tmp_path / "db"), "S3_ENDPOINT": "http://127.0.0.1:1", "S3_BUCKET": "uploads",
           "S3_ACCESS_KEY_FILE": str(tmp_path / "key"), "S3_SECRET_KEY_FILE": str(tmp_path / "key")}
    page = subprocess.run([sys.executable, "-c", "from app.main import respond; print(respond('/')[1].decode())"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert page.returncode == 0, page.stderr
    lines = page.stdout[page.stdout.index("Hello from"):].splitlines()   # after the log lines of the checks
    assert lines[0] == "Hello from demo-python"
    assert lines[1].startswith("database: not reachable (") and lines[2].startswith("bucket: not reachable ("), lines
    assert "db-password-value" not in page.stdout + page.stderr and "access-key-value" not in page.stdout


def test_new_seeds_credentials_bound_to_the_app_and_names_the_secret_each_server_stack_needs(tmp_path: Path) -> None:
    from swarmops.adapters import age
    from swarmops.ops.bootstrap import new_app

    state = tmp_path / "state"
    state.mkdir()
    age.keygen(state)
    config = Config.model_validate({"registry": "registry.local:5000", "state_dir": str(state), "apps": []})
    remote = tmp_path / "shop.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    made = new_app(config, "shop-app", "python", f"file://{remote}", {"database": "mysql", "bucket": "files"})
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
    identity, values = age.load_identity(state), set()
    for name in ("db_password", "s3_access_key", "s3_secret_key"):
        path = work / "secrets" / f"{name}.age"
        value, bound = age.unseal(age.decrypt(identity, path.read_bytes(), path.name), "shop-app", name, path.name)
        assert bound and len(value) >= 32, name
        values.add(value)
    assert len(values) == 3   # each one random
    notes = "\n".join(made.notes)
    assert "database stack as shop_app_db_password" in notes and "S3 stack as shop-app_s3_access_key" in notes


def deploy_labels(repo: Path, stack: str) -> dict[str, str]:
    """The web service's deploy labels in swarmops' effective model of the stack, deployed as `stack`."""
    def read(rel: str) -> bytes:
        return (repo / rel).read_bytes()
    builtin = {"SWARMOPS_REGISTRY": "registry.local:5000", "SWARMOPS_APP": stack, "SWARMOPS_STACK": stack}
    model = load_stack((repo / "stack.yml").read_text(), "stack.yml", Variables(builtin, {}, {}), read)
    return dict(model.services["web"].deploy.labels)


def test_each_environment_of_a_template_app_gets_routers_and_a_host_of_its_own(tmp_path: Path) -> None:
    repo = render(tmp_path / "app", "python", app_name="shop")
    staging, production = deploy_labels(repo, "shop-staging"), deploy_labels(repo, "shop")
    assert staging["traefik.http.routers.shop-staging.rule"] == "Host(`shop-staging.apps.example.go.id`)"
    assert production["traefik.http.routers.shop.rule"] == "Host(`shop.apps.example.go.id`)"
    assert not set(staging) & {k for k in production if k.startswith("traefik.http.")}   # no router name shared
    for stack in ("shop", "shop-staging"):   # each passes the restricted policy as its own stack
        app = AppConfig.model_validate({"name": stack, "repo": "file:///dev/null"})
        found = check_stack_text(CONFIG, app, (repo / "stack.yml").read_text(), "stack.yml", "restricted", repo)
        assert [str(v) for v in found if v.severity == "deny"] == [], stack


@pytest.mark.parametrize("template", TEMPLATES)
def test_sso_puts_the_apps_own_router_behind_the_proxys_middleware_only_when_asked(
        tmp_path: Path, template: str) -> None:
    name = f"demo-{template}"
    for sso in (True, False):
        repo = render(tmp_path / str(sso), template, sso=sso)
        labels = deploy_labels(repo, name)
        assert labels[f"traefik.http.routers.{name}.rule"] == f"Host(`{name}.apps.example.go.id`)"
        assert labels.get(f"traefik.http.routers.{name}.middlewares") == ("sso@file" if sso else None)
        # behind sso, HTTPS only; without it, as before
        assert labels.get(f"traefik.http.routers.{name}.entrypoints") == ("websecure" if sso else "web")
        assert labels.get(f"traefik.http.routers.{name}.tls") == ("true" if sso else None)
        mentions = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()
                          and p.name != ".copier-answers.yml" and b"x-auth" in p.read_bytes().lower())
        if sso:
            readme = (repo / "README.md").read_text()
            assert "X-Auth-Groups" in readme and "/_sso/" in readme and "sso: {groups: [...]" in readme
            assert ("nothing reads the headers" in readme) == (template == "static")
        else:   # nothing of sso in the app (the output is byte-identical to the one before `sso` existed)
            assert mentions == [] and not [k for k in labels if "middlewares" in k]


# the display name Polise sends as it is: UTF-8 bytes, with markup an escaped page shows as text
SIGNED_IN = "<script>Dewi Ayu Lestari é</script>"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text, self.tags = "", set[str]()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_home(port: int, headers: dict[str, bytes]) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", "/")
        for header, value in headers.items():
            conn.putheader(header, value)   # the bytes as they are, as the proxy passes them on
        conn.endheaders()
        resp = conn.getresponse()
        return resp.getheader("Content-Type") or "", resp.read().decode("utf-8")
    finally:
        conn.close()


@contextmanager
def _serving(cmd: list[str], cwd: Path, port: int, env: dict[str, str]) -> Iterator[None]:
    server = subprocess.Popen(cmd, cwd=cwd, env={**env, "PORT": str(port)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    err = server.communicate(timeout=10)[1].decode()
                    raise AssertionError(f"{cmd[0]} did not listen: {err}") from None
                time.sleep(0.1)
        yield
    finally:
        if server.returncode is None:
            server.kill()   # their SIGTERM keeps serving 6 s for the proxy; nothing to drain here
            server.communicate(timeout=10)


SERVERS = {   # how each template's sample runs: the server the image runs, or the standard one of its language
    "python-wsgi": ("python", [sys.executable, "-c", "import os; from wsgiref.simple_server import make_server; "
                               "from app.main import wsgi_app; "
                               "make_server('127.0.0.1', int(os.environ['PORT']), wsgi_app).serve_forever()"]),
    "python-asgi": ("python", [sys.executable, "-m", "uvicorn", "app.main:asgi_app", "--host", "127.0.0.1",
                               "--port", "{port}", "--lifespan", "off"]),
    "node": ("node", ["node", "server.js"]),
    "php": ("php", ["php", "-S", "127.0.0.1:{port}", "-t", "public", "public/index.php"]),
    "go": ("go", ["{build}/server"]),
}


POLISE_KEY = Ed25519PrivateKey.generate()
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def polise_token(claims: dict[str, Any], key: Ed25519PrivateKey = POLISE_KEY) -> bytes:
    """What Polise's X-Auth-Token is: a JWT, EdDSA, signed with its key."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signed = f"{part(json.dumps({'alg': 'EdDSA', 'typ': 'JWT'}).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signed}.{part(key.sign(signed.encode()))}".encode()


def sso_env() -> dict[str, str]:
    """What swarmops sets on a service behind the SSO middleware."""
    raw = POLISE_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"SSO_PUBLIC_KEY": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "SSO_AUDIENCE": "demo"}


def forged_requests() -> dict[str, dict[str, bytes]]:
    """Requests a container on the proxy network could send the app directly: none is signed in."""
    now = int(time.time())
    claims = {"sub": "admin", "name": "Admin", "aud": "demo", "exp": now + 60}
    token, nested = polise_token(claims), base64.urlsafe_b64encode(b"[" * 1000).rstrip(b"=")
    return {
        "headers without a token": {"X-Auth-User": b"admin", "X-Auth-Name": b"Admin", "X_Auth_Name": b"Admin"},
        "a token of another key": {"X-Auth-Token": polise_token(claims, Ed25519PrivateKey.generate())},
        "another app's token": {"X-Auth-Token": polise_token({**claims, "aud": "payroll"})},
        "an expired token": {"X-Auth-Token": polise_token({**claims, "exp": now - 120})},
        "a token without a signature": {"X-Auth-Token": polise_token(claims).rpartition(b".")[0] + b"."},
        "a header nested too deep (a RecursionError once)": {"X-Auth-Token": nested + b"." + token.partition(b".")[2]},
        "a signature with !! inserted": {"X-Auth-Token": token[:-10] + b"!!" + token[-10:]},
        "the standard base64 spelling": {"X-Auth-Token": b".".join(
            base64.b64encode(base64.urlsafe_b64decode(p + b"=" * (-len(p) % 4))) for p in token.split(b"."))},
        "a padded token": {"X-Auth-Token": token + b"=="},
        # 64 bytes in 86 characters: the last one's 4 low bits are unused, another value decodes the same
        "other trailing bits": {"X-Auth-Token": token[:-1] + bytes([ALPHABET[ALPHABET.index(token[-1]) ^ 1]])},
    }


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_the_sso_sample_greets_the_user_of_polises_token_by_the_utf8_name_escaped_into_html(
        tmp_path: Path, server: str) -> None:
    template, cmd = SERVERS[server]
    tool = "python3" if template == "python" else template
    if template != "python" and not shutil.which(tool):
        pytest.skip(f"no {tool} here to run the {template} sample")
    repo = render(tmp_path / "app", template, sso=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "APP_NAME": "demo", **sso_env()}
    if template == "go":
        build = subprocess.run(["go", "build", "-o", str(tmp_path / "server"), "."], cwd=repo, capture_output=True,
                               text=True, timeout=300, env={**env, "GOFLAGS": "-mod=mod", "GOPROXY": "off",
                                                             "GOCACHE": str(tmp_path / "gocache"), "CGO_ENABLED": "0"})
        assert build.returncode == 0, build.stderr
    port = _free_port()
    token = polise_token({"sub": "ana", "name": SIGNED_IN, "aud": "demo", "exp": int(time.time()) + 60})
    with _serving([c.format(port=port, build=tmp_path) for c in cmd], repo, port, env):
        content_type, body = _get_home(port, {"X-Auth-Token": token, "X-Auth-Name": b"not this one"})
        _, anonymous = _get_home(port, {})
        forged = {why: _get_home(port, headers)[1] for why, headers in forged_requests().items()}
    page = _Page()
    page.feed(body)
    assert content_type.startswith("text/html") and "charset=utf-8" in content_type.lower()
    assert f"Signed in as {SIGNED_IN}" in page.text.splitlines(), body   # decoded as UTF-8, shown as text
    assert "script" not in page.tags and "<script>" not in body
    assert "Hello from demo" in anonymous and "Signed in as" not in anonymous
    # each forged request gets the page of no one signed in (not an error page)
    assert {why: "Hello from demo" in answer and "Signed in as" not in answer
            for why, answer in forged.items()} == dict.fromkeys(forged, True)


def test_a_page_without_sso_never_shows_a_name_a_client_sent(tmp_path: Path) -> None:
    repo = render(tmp_path / "app", "python")
    env = {"PATH": "/usr/bin:/bin", "APP_NAME": "demo"}
    port = _free_port()
    with _serving([c.format(port=port) for c in SERVERS["python-wsgi"][1]], repo, port, env):
        content_type, body = _get_home(port, {"X-Auth-Name": SIGNED_IN.encode()})
    assert content_type.startswith("text/plain") and body == "Hello from demo\n"


def _new(tmp_path: Path, config: Config, app: str, sets: dict[str, str]) -> tuple[str, list[str]]:
    from swarmops.ops.bootstrap import new_app

    remote = tmp_path / f"{app}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    made = new_app(config, app, "node", f"file://{remote}", sets)
    work = tmp_path / f"{app}-clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
    return (work / "stack.yml").read_text(), made.notes


def test_new_puts_the_app_behind_sso_from_the_set_word_and_tells_how_to_limit_it_to_groups(tmp_path: Path) -> None:
    config = Config.model_validate({"registry": "registry.local:5000", "state_dir": str(tmp_path / "state"),
                                    "apps_dir": str(tmp_path / "apps.d"), "apps": []})
    stack, notes = _new(tmp_path, config, "kiosk", {"sso": "true"})   # --set sso=true: the CLI passes words
    assert "traefik.http.routers.${SWARMOPS_STACK}.middlewares=sso@file" in stack
    [note] = notes
    assert "sso: {groups: [...]" in note and str(tmp_path / "apps.d" / "kiosk.yml") in note
    stack, notes = _new(tmp_path, config, "board", {"sso": "false"})
    assert "middlewares" not in stack and notes == []


def test_new_refuses_a_variable_the_template_does_not_have_instead_of_dropping_it(tmp_path: Path) -> None:
    from swarmops.errors import BootstrapError

    with pytest.raises(BootstrapError, match=r"template 'node' has no variable 'ssso'") as e:
        _new(tmp_path, CONFIG, "kiosk", {"ssso": "true"})
    assert "swarmops templates" in str(e.value)
    assert subprocess.run(["git", "-C", str(tmp_path / "kiosk.git"), "rev-parse", "-q", "--verify", "main"],
                          capture_output=True).returncode != 0   # nothing pushed


def test_new_refuses_sso_when_the_config_names_another_middleware_than_the_templates(tmp_path: Path) -> None:
    from swarmops.errors import BootstrapError

    config = Config.model_validate({"registry": "registry.local:5000", "sso": {"middleware": "portal-sso@file"},
                                    "apps": []})
    with pytest.raises(BootstrapError, match=r"sso\.middleware is portal-sso@file"):
        _new(tmp_path, config, "kiosk", {"sso": "true"})

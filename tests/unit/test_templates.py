"""Every app template renders (defaults and edge cases), is read by Docker, renders with swarmops and
passes the restricted policy; a repo made from a template updates from one template tag to the next."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import copier
import pytest
from ruamel.yaml import YAML

from swarmops.config.models import AppConfig, Config
from swarmops.ops.bootstrap import list_templates
from swarmops.ops.policycheck import check_stack_text

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ["php", "node", "python", "go", "static"]
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "postgres-and-bucket": {"database": "postgres", "bucket": "reports.2026", "replicas": 1},
    "mysql-long-name": {"database": "mysql", "app_name": "a" * 63, "port": 65535, "domain": "x.example.go.id"},
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
    assert f"Host(`{name}.{data.get('domain', 'apps.example.go.id')}`)" in stack_text

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

"""App repos from templates: list the templates and their variables, and make a new app repo (render
with copier, first commit, push, apps.d entry)."""

from __future__ import annotations

import json
import re
import secrets as pysecrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmops.adapters import age as secrets
from swarmops.adapters.git import push_new_repo, remote_branch_head, shallow_clone
from swarmops.config.fields import STACK_NAME
from swarmops.config.models import Config
from swarmops.errors import BootstrapError, ConfigError
from swarmops.util import yamlio

CHECKOUT = Path(__file__).resolve().parents[2]
_WHEN = re.compile(r"template\s*==\s*['\"](\w+)['\"]")
TEMPLATE_SSO_MIDDLEWARE = "sso@file"   # what templates/_shared/stack.yml.jinja names with `sso: true`


@dataclass(frozen=True)
class Variable:
    name: str
    help: str
    default: Any
    choices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    variables: list[Variable]


def template_source(config: Config | None) -> tuple[str, str | None]:
    """The configured template repo and tag; else this checkout of swarmops (for development)."""
    if config and config.templates.source:
        return config.templates.source, config.templates.ref
    if (CHECKOUT / "copier.yml").is_file():
        return str(CHECKOUT), None
    raise BootstrapError("no template source: set templates.source (the git URL of the swarmops repo or the "
                         "ops team's fork) and templates.ref (a tag) in the config")


def list_templates(source: str, ref: str | None, timeout: float = 60) -> list[TemplateInfo]:
    with tempfile.TemporaryDirectory(prefix="swarmops-templates-") as tmp:
        root = Path(source) if Path(source).is_dir() and ref is None else shallow_clone(source, ref, Path(tmp) / "t",
                                                                                      timeout)
        path = root / "copier.yml"
        doc = yamlio.to_plain(yamlio.load(path.read_text(), str(path), ConfigError))
    names = list(doc["template"]["choices"])
    out = []
    for name in names:
        variables = [Variable(key, str(q.get("help", "")), _default(q.get("default"), name),
                              list(q.get("choices") or []))
                     for key, q in doc.items() if not key.startswith("_") and key != "template"
                     and isinstance(q, dict) and _applies(q, name)]
        out.append(TemplateInfo(name, variables))
    return out


def _default(value: Any, template: str) -> Any:
    """A default that depends on the template (a Jinja expression in copier.yml), evaluated for it."""
    if not (isinstance(value, str) and "{{" in value):
        return value
    import jinja2

    return jinja2.Environment(autoescape=False).from_string(value).render(template=template)


def _applies(question: dict[str, Any], template: str) -> bool:
    when = question.get("when")
    return when is None or template in _WHEN.findall(str(when))


@dataclass(frozen=True)
class NewApp:
    app: str
    commit: str
    app_file: Path | None
    entry: dict[str, Any]
    notes: list[str]


def new_app(config: Config, app: str, template: str, remote: str, sets: dict[str, str], branch: str = "main",
            author: str = "swarmops <swarmops@localhost>") -> NewApp:
    if not STACK_NAME.match(app):
        raise BootstrapError(f"{app!r} is not a valid app name: use lowercase letters, digits, '-' and '_', "
                             "starting with a letter or digit, at most 63 characters (it is the stack name)")
    if config.app(app) is not None:
        raise BootstrapError(f"an app named {app!r} is already in the config")
    auth = config.auth
    if remote_branch_head(remote, branch, auth, config.git.timeout) is not None:
        raise BootstrapError(f"branch {branch!r} of the remote is not empty; swarmops new only pushes a new repo")
    source, ref = template_source(config)
    recipient = _recipient(config)
    data: dict[str, Any] = {"template": template, "app_name": app, "registry": config.registry,
                            "age_recipient": recipient or "", **sets}
    with tempfile.TemporaryDirectory(prefix=f"swarmops-new-{app}-") as tmp:
        work = Path(tmp) / app
        _render(source, ref, work, data)
        answers = yamlio.to_plain(yamlio.load((work / ".copier-answers.yml").read_text(), "answers", ConfigError))
        unknown = sorted(set(sets) - set(answers))   # copier ignores them: `sso` at an older tag would be lost
        if unknown:
            raise BootstrapError(f"template {template!r}{f' at {ref}' if ref else ''} has no variable "
                                 f"{', '.join(map(repr, unknown))}; `swarmops templates` lists its variables")
        notes = _seed_secrets(config, app, work, answers) + _sso_notes(config, app, answers)
        commit = push_new_repo(work, remote, branch, f"New {template} app {app} from the swarmops template",
                               author, auth, config.git.timeout)
    entry = {"name": app, "repo": remote, "branch": branch, "stack": "stack.yml", "role": "app"}
    app_file = None
    if config.apps_dir is not None:
        config.apps_dir.mkdir(parents=True, exist_ok=True)
        app_file = config.apps_dir / f"{app}.yml"
        app_file.write_text(json.dumps(entry, indent=2) + "\n")   # JSON is YAML, and needs no quoting rules
    return NewApp(app, commit, app_file, entry, notes)


def _recipient(config: Config) -> str | None:
    pub = config.state_dir / secrets.PUB_FILE
    return pub.read_text().strip() if pub.is_file() else None


def _render(source: str, ref: str | None, work: Path, data: dict[str, Any]) -> None:
    import copier  # imported here: only `new` needs it

    try:
        copier.run_copy(source, str(work), data=data, vcs_ref=ref, defaults=True, unsafe=True, quiet=True,
                        overwrite=True)
    except copier.errors.CopierError as e:   # invalid answers, missing template
        raise BootstrapError(f"template {data['template']!r}: {e}") from e
    except ValueError as e:
        raise BootstrapError(f"template {data['template']!r}: {e}") from e


def _seed_secrets(config: Config, app: str, work: Path, answers: dict[str, Any]) -> list[str]:
    """Random credentials for the database and storage the template wires, encrypted for the daemon."""
    wanted = (["db_password"] if answers.get("database", "none") != "none" else []) + \
             (["s3_access_key", "s3_secret_key"] if answers.get("bucket") else [])
    if not wanted:
        return []
    pub = config.state_dir / secrets.PUB_FILE
    if not pub.is_file():
        raise BootstrapError(f"the app needs secrets ({', '.join(wanted)}) but {pub} does not exist; run "
                             "`swarmops keygen` on the manager first")
    recipient = secrets.parse_recipient(pub.read_text(), str(pub))
    (work / "secrets").mkdir(exist_ok=True)
    for name in wanted:
        value = pysecrets.token_urlsafe(24).encode()
        (work / "secrets" / f"{name}.age").write_bytes(secrets.encrypt(recipient, secrets.seal(app, name, value)))
    return [f"secrets/{n}.age holds a new random value bound to {app}, readable only by the daemon: give the same "
            f"value to the {'database' if n == 'db_password' else 'S3'} stack as "
            f"{app.replace('-', '_') if n == 'db_password' else app}_{n}" for n in wanted]


def _sso_notes(config: Config, app: str, answers: dict[str, Any]) -> list[str]:
    """What the ops team should know of an app behind the proxy's SSO middleware (every signed-in user may
    open it until its entry names groups); refused when the config names another middleware."""
    if answers.get("sso") is not True:
        return []
    if config.sso.middleware != TEMPLATE_SSO_MIDDLEWARE:   # the policy would refuse the first deploy
        raise BootstrapError(f"the templates put the app behind {TEMPLATE_SSO_MIDDLEWARE}, but the config's "
                             f"sso.middleware is {config.sso.middleware}: change the label in the templates' "
                             "stack.yml (templates.source) or the config")
    entry = config.apps_dir / f"{app}.yml" if config.apps_dir is not None else "its entry under apps:"
    return [f"{app} is behind the office's single sign-on: every signed-in user may open it; to limit it to some "
            f"OIDC groups, add sso: {{groups: [...], contact: \"who to ask\"}} to {entry}"]

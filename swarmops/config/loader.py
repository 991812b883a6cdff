"""Load and validate the config: the main file, then each apps.d file on its own so that one bad
file names itself and does not stop the others."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from swarmops.config.environments import expand_environments
from swarmops.config.models import AppConfig, Config, check_overlaps, shared_bucket
from swarmops.errors import ConfigError
from swarmops.util import yamlio

DEFAULT_CONFIG = Path("/etc/swarmops/swarmops.yml")


@dataclass
class LoadedConfig:
    config: Config
    path: Path
    app_errors: list[ConfigError] = field(default_factory=list)


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("SWARMOPS_CONFIG") or DEFAULT_CONFIG)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass --config or set SWARMOPS_CONFIG") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    return yamlio.load(text, str(path), ConfigError)


def _explain(e: ValidationError, path: Path, doc: Any, prefix: tuple[str | int, ...] = ()) -> ConfigError:
    lines = []
    for err in e.errors():
        loc = prefix + tuple(err["loc"])
        keypath = ".".join(str(p) for p in loc) or "(top level)"
        line = yamlio.line_of(doc, loc[len(prefix):])
        where = f"{path}:{line}" if line else str(path)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"unknown key {keypath!r}: remove it or check its spelling against the config reference"
        elif kind == "missing":
            msg = f"missing required key {keypath!r}: add it"
        else:
            msg = f"key {keypath!r}: {err['msg'].removeprefix('Value error, ')}"
        lines.append(f"{where}: {msg}")
    return ConfigError("; ".join(lines))


def _validate_app(raw: Any, source: Path) -> list[AppConfig]:
    """The app of an apps.d file, or one app per environment it declares."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: an app file must be a mapping with keys like name, repo, branch")
    try:
        app = AppConfig.model_validate(yamlio.to_plain(raw))
    except ValidationError as e:
        raise _explain(e, source, raw) from e
    try:
        return expand_environments(app)
    except ValueError as e:
        line = yamlio.line_of(raw, ("environments",))
        raise ConfigError(f"{source}:{line}: key 'environments': {e}" if line else
                          f"{source}: key 'environments': {e}") from e


def _refusal(file: Path, found: list[AppConfig], config: Config, names: dict[str, str], apps: list[AppConfig],
             claimed: dict[str, list[Path]]) -> ConfigError | None:
    """Why the apps of an apps.d file (an app, or its environments) cannot join the others, or None. A stack
    name two files claim is refused in both, whatever their order: an environment added to one entry never
    takes over another team's running stack."""
    for app in found:
        if app.name in names:
            return ConfigError(f"{file}: key 'name': duplicate app name {app.name!r}, already defined in "
                               f"{names[app.name]}; rename one")
        others = [f for f in claimed[app.name] if f != file]
        if others:
            return ConfigError(f"{file}: key 'name': stack {app.name!r} is claimed by {others[0]} too; neither is "
                               "deployed until one is renamed")
        if (why := config.lacks_s3(app)) is not None:
            return ConfigError(f"{file}: key 'backup.volumes': {why}")
    if (why := shared_bucket([*apps, *found])) is not None:
        return ConfigError(f"{file}: key 'backup.s3.bucket': {why}")
    try:
        check_overlaps([*names, *(app.name for app in found)])
    except ValueError as e:
        return ConfigError(f"{file}: key 'name': {e}")
    return None


def load_config(path: Path) -> LoadedConfig:
    """The config with apps from `apps:` and `apps_dir`. Bad apps.d files become `app_errors`."""
    doc = _read(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the config must be a mapping with keys like registry, state_dir, apps")
    try:
        config = Config.model_validate(yamlio.to_plain(doc))
    except ValidationError as e:
        raise _explain(e, path, doc) from e
    errors: list[ConfigError] = []
    if config.apps_dir is not None:
        apps = list(config.apps)
        names = {a.name: str(path) for a in apps}
        try:
            files = sorted(config.apps_dir.glob("*.y*ml")) if config.apps_dir.is_dir() else []
        except OSError as e:   # a name too long, a directory swarmops may not enter
            line = yamlio.line_of(doc, ("apps_dir",))
            where = f"{path}:{line}" if line else str(path)
            raise ConfigError(f"{where}: key 'apps_dir': cannot read {str(config.apps_dir)[:200]!r}: "
                              f"{e.strerror}; fix the path or let swarmops read it") from e
        entries: list[tuple[Path, list[AppConfig]]] = []
        for file in files:
            try:
                entries.append((file, _validate_app(_read(file), file)))
            except ConfigError as e:
                errors.append(e)
        claimed: dict[str, list[Path]] = {}
        for file, found in entries:
            for app in found:
                claimed.setdefault(app.name, []).append(file)
        for file, found in entries:
            problem = _refusal(file, found, config, names, apps, claimed)
            if problem is not None:   # an app and its environments come in together, or not at all
                errors.append(problem)
                continue
            for app in found:
                names[app.name] = str(file)
                apps.append(app)
        config = config.model_copy(update={"apps": apps})
    return LoadedConfig(config=config, path=path, app_errors=errors)

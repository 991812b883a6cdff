from pathlib import Path

import pytest

from swarmops.config.duration import parse_duration
from swarmops.config.loader import load_config
from swarmops.errors import ConfigError

BASE = """\
registry: registry.local:5000
state_dir: /tmp/swarmops-test
poll_interval: 30s
apps:
  - name: polise
    repo: file:///srv/git/polise.git
"""


def write(tmp_path: Path, text: str, name: str = "swarmops.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, BASE))
    app = loaded.config.apps[0]
    assert loaded.config.poll_interval == 30.0
    assert (app.branch, app.stack, app.role) == ("main", "stack.yml", "app")
    assert loaded.app_errors == []


def test_unknown_key_is_named_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "    colour: blue\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}:7" in str(e.value)
    assert "apps.0.colour" in str(e.value)
    assert "unknown key" in str(e.value)


def test_missing_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing required key 'apps.0.repo'"):
        load_config(write(tmp_path, BASE.replace("    repo: file:///srv/git/polise.git\n", "")))


def test_bad_duration_says_how_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, BASE.replace("30s", "soon")))
    assert "poll_interval" in str(e.value) and "30s, 5m or 1h" in str(e.value)


def test_duplicate_app_name_is_refused(tmp_path: Path) -> None:
    dup = BASE + "  - name: polise\n    repo: file:///srv/git/other.git\n"
    with pytest.raises(ConfigError, match="duplicate app name 'polise'"):
        load_config(write(tmp_path, dup))


def test_duplicate_yaml_key_is_refused_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "registry: other:5000\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}:7" in str(e.value) and "duplicate key" in str(e.value)


def test_invalid_app_name_explains_the_rule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lowercase letters"):
        load_config(write(tmp_path, BASE.replace("name: polise", "name: Polise App")))


def test_registry_with_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        load_config(write(tmp_path, BASE.replace("registry.local:5000", "https://registry.local:5000")))


def test_one_bad_apps_d_file_names_itself_and_keeps_the_others(tmp_path: Path) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    write(apps_d, "name: good\nrepo: file:///srv/good.git\n", "good.yml")
    bad = write(apps_d, "name: bad\nrepo: file:///srv/bad.git\nbranhc: main\n", "bad.yml")
    write(apps_d, "name: polise\nrepo: file:///srv/x.git\n", "dup.yml")
    loaded = load_config(write(tmp_path, BASE + f"apps_dir: {apps_d}\n"))
    assert [a.name for a in loaded.config.apps] == ["polise", "good"]
    messages = [str(e) for e in loaded.app_errors]
    assert any(str(bad) in m and "branhc" in m for m in messages)
    assert any("dup.yml" in m and "duplicate app name 'polise'" in m for m in messages)


def test_missing_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SWARMOPS_CONFIG"):
        load_config(tmp_path / "nope.yml")


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("60s", 60), ("5m", 300), ("1h", 3600), (90, 90)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_stack_path_outside_repo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inside the repo"):
        load_config(write(tmp_path, BASE + "    stack: ../etc/stack.yml\n"))


def test_nesting_too_deep_for_the_parser_is_a_config_error(tmp_path: Path) -> None:
    # was a RecursionError out of ruamel
    path = write(tmp_path, "registry: " + "[\n" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: nested too deeply"):
        load_config(path)


@pytest.mark.parametrize(("value", "leaked"), [
    ("!!int abc", "ValueError"), ("!!int ''", "IndexError"), ("!!bool maybe", "KeyError"),
    ("!!set x", "AttributeError"), ("2001-02-30", "ValueError"), ("!!float x", "ValueError")])
def test_a_value_its_yaml_tag_cannot_hold_is_a_config_error_with_the_line(tmp_path: Path, value: str,
                                                                          leaked: str) -> None:
    # each leaked out of ruamel's constructors as the exception named
    path = write(tmp_path, BASE + f"registry_insecure: {value}\n")
    with pytest.raises(ConfigError, match=rf"{path}:7: not valid YAML: .* is not a valid !!\w+; fix the value"):
        load_config(path)


def test_a_mapping_as_a_key_is_a_config_error(tmp_path: Path) -> None:
    # was a TypeError (unhashable CommentedSeq) out of ruamel
    path = write(tmp_path, BASE + "? {k: [1]}\n: 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_config(path)


def test_aliases_that_expand_without_bound_are_refused(tmp_path: Path) -> None:
    bomb = "".join(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))
    path = write(tmp_path, BASE + "x0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + bomb)
    with pytest.raises(ConfigError, match="once aliases are expanded"):
        load_config(path)


@pytest.mark.parametrize("number", ["0x" + "f" * 2000, "1" * 5000])
def test_a_number_too_long_to_print_is_a_config_error(tmp_path: Path, number: str) -> None:
    # was a ValueError (Python's 4300-digit limit) out of ruamel or out of printing the value
    path = write(tmp_path, BASE.replace("poll_interval: 30s", f"poll_interval: {number}"))
    with pytest.raises(ConfigError, match=rf"{path}:3: a number of more than|{path}:3: a number of \d+ digits"):
        load_config(path)


def test_an_apps_dir_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    # was an OSError (File name too long) out of Path.is_dir
    path = write(tmp_path, BASE + "apps_dir: /" + "a" * 300 + "\n")
    with pytest.raises(ConfigError, match=rf"{path}:7: key 'apps_dir': cannot read .*File name too long"):
        load_config(path)


def test_sso_defaults_to_the_proxys_file_middleware_and_no_app_entry(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE)).config
    assert config.sso.middleware == "sso@file" and config.apps[0].sso is None


def test_an_apps_d_entry_names_its_sso_groups_and_contact(tmp_path: Path) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    write(apps_d, "name: awdi\nrepo: file:///srv/awdi.git\nsso:\n  groups: [dinas-pu, 'Tim Banjir']\n"
                  "  contact: Bidang SDA, ext. 214\n", "awdi.yml")
    loaded = load_config(write(tmp_path, BASE + f"apps_dir: {apps_d}\nsso: {{middleware: portal-sso@file}}\n"))
    awdi = loaded.config.app("awdi")
    assert loaded.app_errors == [] and loaded.config.sso.middleware == "portal-sso@file"
    assert awdi is not None and awdi.sso is not None
    assert (awdi.sso.groups, awdi.sso.contact) == (["dinas-pu", "Tim Banjir"], "Bidang SDA, ext. 214")


@pytest.mark.parametrize(("sso", "words"), [
    ('{contact: "Ana\\nCall 555"}', "U+000A"),
    ('{contact: "ops \\u202eetis.live"}', "U+202E"),
    ('{contact: "\\e[8mhidden"}', "U+001B"),
    ("{contact: '   '}", "empty"),
    (f"{{contact: {'x' * 201}}}", "keep it to 200"),
    ("{groups: [admins, admins]}", "listed twice"),
    ("{groups: [' admins']}", "spaces"),
    ("{groups: ['']}", "empty"),
])
def test_a_bad_sso_entry_is_refused_naming_its_file_line_and_key(tmp_path: Path, sso: str, words: str) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    bad = write(apps_d, f"name: awdi\nrepo: file:///srv/awdi.git\nsso: {sso}\n", "awdi.yml")
    loaded = load_config(write(tmp_path, BASE + f"apps_dir: {apps_d}\n"))
    [error] = [str(e) for e in loaded.app_errors]
    assert error.startswith(f"{bad}:3: key 'sso.") and words in error, error
    assert [a.name for a in loaded.config.apps] == ["polise"]


@pytest.mark.parametrize("middleware", ["sso", "sso@", "@file", "sso@file, other@file"])
def test_the_sso_middleware_must_name_its_provider(tmp_path: Path, middleware: str) -> None:
    path = write(tmp_path, BASE + f"sso:\n  middleware: '{middleware}'\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}:8: key 'sso.middleware'" in str(e.value) and "name@provider" in str(e.value)


def test_an_unknown_sso_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'apps.0.sso.grups'"):
        load_config(write(tmp_path, BASE + "    sso: {grups: [admins]}\n"))

"""The render: written from the effective model, it leaves the docker CLI nothing to interpret, and
sets only what swarmops must (images, role, tracking labels, versioned names, deploy-dir paths)."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmops.domain.compose.schema import CLI_20_10
from swarmops.domain.render import COMMIT_LABEL, SPEC_LABEL, RenderRequest, referenced_files, render_stack
from swarmops.domain.stackfile import build_specs
from swarmops.errors import StackError
from tests.unit.fakes import stack_of

DATA = Path(__file__).parent / "data"
GOLDEN = (DATA / "golden-stack.yml").read_text()
FILES = {"motd.txt": b"hi\n"}


def request(**over: Any) -> RenderRequest:
    base: dict[str, Any] = dict(
        app="demo", commit="a" * 40, role="app", allowed_roles=("app",), role_label="role",
        images={"worker": "reg:5000/demo/worker:aaaaaaaaaaaa"}, fingerprints={"worker": "f" * 64},
        file_digests={"motd.txt": "1" * 64}, deploy_dir="/var/lib/swarmops/deploys/demo/aaaaaaaaaaaa")
    base.update(over)
    return RenderRequest(**base)


def render(text: str = GOLDEN, variables: dict[str, str] | None = None, **over: Any) -> Any:
    return render_stack(stack_of(text, variables=variables, files=FILES), request(**over))


def doc_of(text: str = GOLDEN, **over: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(render(text, **over).text)
    return loaded


def test_scalars_mean_in_the_render_what_they_mean_to_the_docker_cli() -> None:
    doc = doc_of()
    web, worker = doc["services"]["web"], doc["services"]["worker"]
    assert {"mode": "ingress", "protocol": "tcp", "published": 22, "target": 22} in web["ports"]   # not 1342
    assert web["configs"][0]["mode"] == 0o440
    assert worker["environment"] == {"COUNT": "8", "ZONE": "0755"}   # a merge key is shallow: its own wins
    assert web["environment"] == {"GREETING": "yes", "MODE": "on"}
    assert web["tty"] is True and "build" not in worker


def test_same_inputs_give_byte_identical_render() -> None:
    assert render().text == render().text


def test_commits_that_differ_only_in_docs_give_identical_specs() -> None:
    one, two = render(commit="a" * 40), render(commit="b" * 40)
    assert {n: s.spec_hash for n, s in one.services.items()} == {n: s.spec_hash for n, s in two.services.items()}
    assert [s.spec for s in one.services.values()] == [s.spec for s in two.services.values()]
    assert one.text != two.text   # only the commit label differs


def test_tracking_labels_go_on_service_labels_only() -> None:
    web = doc_of()["services"]["web"]
    assert web["deploy"]["labels"][COMMIT_LABEL] == "a" * 40
    assert web["deploy"]["labels"]["traefik.enable"] == "true"
    assert not any("io.swarmops" in label for label in web["labels"])


def test_spec_hash_changes_with_what_docker_runs() -> None:
    changed = GOLDEN.replace("replicas: 2", "replicas: 3")
    assert render(changed).services["web"].spec_hash != render().services["web"].spec_hash
    assert render(changed).services["worker"].spec_hash == render().services["worker"].spec_hash


def test_config_file_content_changes_the_config_name_and_the_spec() -> None:
    a, b = render(), render(file_digests={"motd.txt": "2" * 64})
    assert "motd_11111111" in a.text and "motd_22222222" in b.text
    assert a.services["web"].spec_hash != b.services["web"].spec_hash
    assert "/var/lib/swarmops/deploys/demo/aaaaaaaaaaaa/files/motd.txt" in a.text
    assert doc_of()["services"]["web"]["configs"][0]["target"] == "/etc/motd"


def test_a_renamed_config_keeps_the_target_its_key_gave_it() -> None:
    text = "version: '3.3'\nservices:\n  web:\n    image: x\n    configs: [motd]\nconfigs:\n  motd: {file: motd.txt}\n"
    assert doc_of(text)["services"]["web"]["configs"] == [{"source": "motd_11111111", "target": "/motd"}]


def test_role_constraint_is_added_for_the_apps_role() -> None:
    doc = doc_of(role="db", allowed_roles=("db",))
    assert doc["services"]["web"]["deploy"]["placement"]["constraints"] == ["node.labels.role == db"]


def test_service_may_keep_an_allowed_role_and_gets_no_second_constraint() -> None:
    text = GOLDEN.replace("      replicas: 2\n", "      replicas: 2\n      placement:\n"
                          "        constraints: [NODE.LABELS.role==minio]\n")
    doc = doc_of(text, allowed_roles=("app", "minio"))
    assert doc["services"]["web"]["deploy"]["placement"]["constraints"] == ["node.labels.role == minio"]


def test_labels_the_file_sets_under_io_swarmops_are_replaced() -> None:
    text = GOLDEN.replace("        - traefik.enable=true", "        - traefik.enable=true\n"
                          "        - io.swarmops.commit=forged")
    assert doc_of(text)["services"]["web"]["deploy"]["labels"][COMMIT_LABEL] == "a" * 40


def test_anchors_are_resolved_and_extension_fields_dropped() -> None:
    doc = doc_of()
    assert doc["services"]["web"]["deploy"]["labels"][SPEC_LABEL] != doc["services"]["worker"]["deploy"][
        "labels"][SPEC_LABEL]
    assert doc["services"]["worker"]["stop_grace_period"] == "2s"
    assert "x-defaults" not in doc and "&" not in render().text and "*" not in render().text


def test_a_file_without_version_gets_the_lowest_that_has_every_key_it_uses() -> None:
    text = render(GOLDEN.replace('version: "3.8"\n', "")).text
    assert '\nversion: "3.3"\n' in text and "the file has no version" in text
    with_pids = "services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits: {pids: 10}\n"
    assert '\nversion: "3.9"\n' in render(with_pids).text


def test_a_version_the_deploy_cli_does_not_know_is_refused() -> None:
    with pytest.raises(StackError, match=r"stack.yml:1: version 3.12 is not one the deploy CLI knows \(3.0 to 3.9\)"):
        render("version: '3.12'\nservices:\n  web:\n    image: x\n", cli_versions=CLI_20_10)


def test_versions_before_3_2_get_short_syntax_ports_and_volumes() -> None:
    text = "version: '3.1'\nservices:\n  web:\n    image: x\n    ports: ['30080:80']\n    volumes: ['data:/d:ro']\n" \
           "volumes:\n  data:\n"
    web = doc_of(text)["services"]["web"]
    assert web["ports"] == ["30080:80/tcp"] and web["volumes"] == ["data:/d:ro"]


def test_every_literal_dollar_is_escaped_so_the_cli_reads_it_back() -> None:
    text = "services:\n  web:\n    image: x\n    environment: {HASH: '$$2y$$05$$abc', PLAIN: '${A}'}\n"
    rendered = render(text, variables={"A": "a$b"})
    assert 'HASH: "$$2y$$05$$abc"' in rendered.text and 'PLAIN: "a$$b"' in rendered.text
    assert rendered.doc["services"]["web"]["environment"] == {"HASH": "$2y$05$abc", "PLAIN": "a$b"}


def test_duplicate_keys_are_refused_with_file_and_line() -> None:
    with pytest.raises(StackError, match=r"stack.yml:4: duplicate key 'web'"):
        stack_of("services:\n  web:\n    image: a\n  web:\n    image: b\n")


def test_a_stack_without_services_is_refused_unless_allowed() -> None:
    with pytest.raises(StackError, match="allow_empty"):
        stack_of("version: '3.8'\nservices: {}\n")
    assert stack_of("version: '3.8'\n", allow_empty=True).services == {}


def test_build_sections_become_repo_relative_specs() -> None:
    stack = stack_of("services:\n  a:\n    build: ./svc\n  b:\n    build:\n      context: .\n"
                     "      dockerfile: docker/B.Dockerfile\n      args: [X=1]\n      target: prod\n",
                     "deploy/stack.yml")
    specs = build_specs(stack)
    assert (specs["a"].context, specs["a"].dockerfile) == ("deploy/svc", "deploy/svc/Dockerfile")
    assert (specs["b"].context, specs["b"].dockerfile, specs["b"].args, specs["b"].target) == (
        "deploy", "deploy/docker/B.Dockerfile", (("X", "1"),), "prod")


@pytest.mark.parametrize("snippet", ["build: ../../etc", "build: {context: '${X:-..}'}", "env_file: /etc/shadow",
                                     "env_file: '${X:-..}/../etc/passwd'"])
def test_paths_outside_the_repo_are_refused_after_interpolation(snippet: str) -> None:
    with pytest.raises(StackError, match=r"stack.yml:3: .*(outside the repo|a path on the host)"):
        stack_of(f"services:\n  a:\n    {snippet}\n    image: x\n")


def test_config_files_outside_the_repo_are_refused_after_interpolation() -> None:
    with pytest.raises(StackError, match=r"stack.yml:5: configs.c.file: .* points outside the repo"):
        stack_of("services:\n  a:\n    image: x\nconfigs:\n  c: {file: '${X:-..}/x/../../etc/passwd'}\n")
    assert referenced_files(stack_of("services:\n  a:\n    image: x\nconfigs:\n  c: {file: ./c.txt}\n")) == ["c.txt"]


def test_env_files_are_merged_into_the_environment_and_environment_wins() -> None:
    stack = stack_of("services:\n  a:\n    image: x\n    env_file: [a.env]\n    environment: {B: from-stack}\n",
                     files={"a.env": b"# comment\nA=1\n  B=2\nC=with $dollar\n"})
    assert stack.services["a"].environment == {"A": "1", "B": "from-stack", "C": "with $dollar"}


@pytest.mark.parametrize("snippet", ["environment: [SECRET_FROM_DAEMON]", "environment: {SECRET_FROM_DAEMON: }",
                                     "env_file: a.env"])
def test_key_only_environment_entries_take_declared_variables_never_the_daemons(
        snippet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_FROM_DAEMON", "leaked")
    text = f"services:\n  a:\n    image: x\n    {snippet}\n"
    files = {"a.env": b"SECRET_FROM_DAEMON\n"}
    with pytest.raises(StackError, match="SECRET_FROM_DAEMON has no value"):
        stack_of(text, files=files)
    declared = stack_of(text, files=files, variables={"SECRET_FROM_DAEMON": "declared"})
    assert declared.services["a"].environment == {"SECRET_FROM_DAEMON": "declared"}


def test_the_app_entry_wins_over_the_repos_dotenv_and_builtins_over_both() -> None:
    text = "services:\n  a:\n    image: ${SWARMOPS_REGISTRY}/a:1\n    environment: {V: '${V}', W: '${W}'}\n"
    stack = stack_of(text, variables={"V": "ops"}, dotenv={"V": "dev", "W": "dev"})
    assert stack.services["a"].environment == {"V": "ops", "W": "dev"}
    assert stack.services["a"].image == "reg:5000/a:1"


def test_a_missing_variable_names_file_line_key_and_variable() -> None:
    with pytest.raises(StackError, match=r"stack.yml:4: services.a.labels.host: variable DOMAIN is not set"):
        stack_of("services:\n  a:\n    image: x\n    labels: {host: 'Host(`a.${DOMAIN}`)'}\n")


def test_relative_binds_are_refused_with_the_fix() -> None:
    with pytest.raises(StackError, match=r"stack.yml:3: services.a.volumes.0: './conf:/etc/x' binds a path "
                                         r"relative to the repo, which is not on the nodes; put the files in configs:"):
        stack_of("services:\n  a:\n    volumes: ['./conf:/etc/x']\n    image: x\n")


@pytest.mark.parametrize("name", ["1", "~", "true", "? [a]\n  "])
def test_a_service_name_that_is_not_text_is_refused_as_docker_does(name: str) -> None:
    with pytest.raises(StackError, match=r"stack.yml:2: .*(not text|used as a key)"):
        stack_of(f"services:\n  {name}:\n    image: x\n")


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "/var/lib/swarmops/repos/other.git"])
def test_a_service_name_that_is_a_path_is_refused_before_any_use(name: str) -> None:
    with pytest.raises(StackError, match=r"is not allowed: use letters, digits"):
        stack_of(f"services:\n  '{name}':\n    build: .\n")


@pytest.mark.parametrize("section", ["configs: [motd]", "secrets: db", "configs: 1"])
def test_top_level_configs_and_secrets_must_be_mappings(section: str) -> None:
    with pytest.raises(StackError, match=r"stack.yml:4: (configs|secrets): must be a mapping"):
        stack_of(f"services:\n  web:\n    image: x\n{section}\n")


@pytest.mark.parametrize("constraints", ["node.labels.role == db", "1", "{a: b}"])
def test_placement_constraints_must_be_a_list(constraints: str) -> None:
    text = f"services:\n  web:\n    image: x\n    deploy:\n      placement:\n        constraints: {constraints}\n"
    with pytest.raises(StackError, match=r"stack.yml:6: services.web.deploy.placement.constraints: must be a list"):
        stack_of(text)


def test_a_deploy_section_that_is_not_a_mapping_names_file_and_key() -> None:
    with pytest.raises(StackError, match=r"stack.yml:4: services.web.deploy: must be a mapping"):
        stack_of("services:\n  web:\n    image: x\n    deploy: [1]\n")


@pytest.mark.parametrize("number", ["0x" + "f" * 2000, "9" * 5000, "-" + "1" * 4400])
def test_a_number_too_long_is_refused_at_load(number: str) -> None:
    # 5000 decimal digits: Python would refuse to read it into an int (ValueError, not a StackError)
    with pytest.raises(StackError, match=r"stack.yml:4: .* too large for a 64-bit number"):
        stack_of(f"services:\n  web:\n    image: x\n    stop_grace_period: {number}\n")


def test_the_render_passes_the_docker_cli_with_no_variable_in_its_environment(tmp_path: Path) -> None:
    rendered = render(deploy_dir=str(tmp_path))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd.txt").write_text("hi\n")
    (tmp_path / "stack.yml").write_text(rendered.text)
    res = subprocess.run(["docker", "stack", "config", "-c", "stack.yml"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    seen = yaml.safe_load(res.stdout)["services"]
    assert seen["worker"]["environment"] == rendered.doc["services"]["worker"]["environment"]
    assert seen["web"]["ports"] == rendered.doc["services"]["web"]["ports"]

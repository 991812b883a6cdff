import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from swarmops.domain.render import COMMIT_LABEL, SPEC_LABEL, RenderRequest, referenced_files, render_stack
from swarmops.domain.stackfile import build_specs, load_stack
from swarmops.errors import StackError

DATA = Path(__file__).parent / "data"
GOLDEN = (DATA / "golden-stack.yml").read_text()


def request(**over: Any) -> RenderRequest:
    base: dict[str, Any] = dict(
        app="demo", commit="a" * 40, role="app", allowed_roles=("app",), role_label="role",
        images={"worker": "reg:5000/demo/worker:aaaaaaaaaaaa"}, fingerprints={"worker": "f" * 64},
        file_digests={"motd.txt": "1" * 64}, deploy_dir="/var/lib/swarmops/deploys/demo/aaaaaaaaaaaa")
    base.update(over)
    return RenderRequest(**base)


def render(text: str = GOLDEN, **over: Any) -> Any:
    return render_stack(load_stack(text, "stack.yml"), request(**over))


def test_scalars_keep_their_text_so_docker_reads_the_same_values() -> None:
    text = render().text
    for written in ("- 22:22", "mode: 0440", "COUNT: 010", 'ZONE: "0755"', "- GREETING=yes", "tty: true"):
        assert written in text, written
    assert "build:" not in text


def test_same_inputs_give_byte_identical_render() -> None:
    assert render().text == render().text


def test_commits_that_differ_only_in_docs_give_identical_specs() -> None:
    one = render(commit="a" * 40)
    two = render(commit="b" * 40)
    assert {n: s.spec_hash for n, s in one.services.items()} == {n: s.spec_hash for n, s in two.services.items()}
    assert [s.spec for s in one.services.values()] == [s.spec for s in two.services.values()]
    assert one.text != two.text   # only the commit label differs


def test_tracking_labels_go_on_service_labels_only() -> None:
    doc = YAML(typ="safe").load(render().text)
    web = doc["services"]["web"]
    assert web["deploy"]["labels"][COMMIT_LABEL] == "a" * 40
    assert web["deploy"]["labels"]["traefik.enable"] == "true"
    assert not any("io.swarmops" in str(label) for label in web["labels"])


def test_spec_hash_changes_with_what_docker_runs() -> None:
    changed = GOLDEN.replace("replicas: 2", "replicas: 3")
    assert render(changed).services["web"].spec_hash != render().services["web"].spec_hash
    assert render(changed).services["worker"].spec_hash == render().services["worker"].spec_hash


def test_config_file_content_changes_the_config_name_and_the_spec() -> None:
    a, b = render(), render(file_digests={"motd.txt": "2" * 64})
    assert "demo_motd_11111111" in a.text and "demo_motd_22222222" in b.text
    assert a.services["web"].spec_hash != b.services["web"].spec_hash
    assert "/var/lib/swarmops/deploys/demo/aaaaaaaaaaaa/files/motd.txt" in a.text


def test_role_constraint_is_added_for_the_apps_role() -> None:
    doc = YAML(typ="safe").load(render(role="db", allowed_roles=("db",)).text)
    assert doc["services"]["web"]["deploy"]["placement"]["constraints"] == ["node.labels.role == db"]


def test_service_may_keep_an_allowed_role_and_gets_no_second_constraint() -> None:
    text = GOLDEN.replace("      replicas: 2\n", "      replicas: 2\n      placement:\n"
                          "        constraints: [node.labels.role==minio]\n")
    doc = YAML(typ="safe").load(render(text, allowed_roles=("app", "minio")).text)
    assert doc["services"]["web"]["deploy"]["placement"]["constraints"] == ["node.labels.role==minio"]


def test_service_naming_any_role_gets_no_second_constraint_and_policy_decides() -> None:
    text = GOLDEN.replace("      replicas: 2\n", "      replicas: 2\n      placement:\n"
                          "        constraints: [node.labels.role == db]\n")
    doc = YAML(typ="safe").load(render(text).text)
    assert doc["services"]["web"]["deploy"]["placement"]["constraints"] == ["node.labels.role == db"]


def test_labels_the_file_sets_under_io_swarmops_are_replaced() -> None:
    text = GOLDEN.replace("        - traefik.enable=true", "        - traefik.enable=true\n"
                          "        - io.swarmops.commit=forged")
    doc = YAML(typ="safe").load(render(text).text)
    assert doc["services"]["web"]["deploy"]["labels"][COMMIT_LABEL] == "a" * 40


def test_anchors_shared_between_services_are_not_changed_through_each_other() -> None:
    doc = YAML(typ="safe").load(render().text)
    assert doc["services"]["web"]["deploy"]["labels"][SPEC_LABEL] != doc["services"]["worker"]["deploy"][
        "labels"][SPEC_LABEL]
    assert "deploy" not in doc["x-defaults"]


def test_version_is_written_when_the_file_has_none() -> None:
    text = render(GOLDEN.replace('version: "3.8"\n', "")).text
    assert text.startswith('version: "3.8"')


def test_duplicate_keys_are_refused_with_file_and_line() -> None:
    with pytest.raises(StackError, match=r"stack.yml:\d+: .*duplicate key"):
        load_stack("services:\n  web:\n    image: a\n  web:\n    image: b\n", "stack.yml")


def test_a_stack_without_services_is_refused_unless_allowed() -> None:
    with pytest.raises(StackError, match="allow_empty"):
        load_stack("version: '3.8'\nservices: {}\n", "stack.yml")
    assert load_stack("version: '3.8'\n", "stack.yml", allow_empty=True).service_names() == []


def test_build_sections_become_repo_relative_specs() -> None:
    stack = load_stack("services:\n  a:\n    build: ./svc\n  b:\n    build:\n      context: .\n"
                       "      dockerfile: docker/B.Dockerfile\n      args: [X=1]\n      target: prod\n",
                       "deploy/stack.yml")
    specs = build_specs(stack)
    assert (specs["a"].context, specs["a"].dockerfile) == ("deploy/svc", "deploy/svc/Dockerfile")
    assert (specs["b"].context, specs["b"].dockerfile, specs["b"].args, specs["b"].target) == (
        "deploy", "deploy/docker/B.Dockerfile", (("X", "1"),), "prod")


def test_paths_outside_the_repo_are_refused() -> None:
    with pytest.raises(StackError, match="outside the repo"):
        build_specs(load_stack("services:\n  a:\n    build: ../../etc\n", "stack.yml"))
    with pytest.raises(StackError, match="outside the repo"):
        referenced_files(load_stack("services:\n  a:\n    image: x\n    env_file: /etc/shadow\n", "stack.yml"))


def _stack_config(path: Path) -> dict[str, Any]:
    out = subprocess.run(["docker", "stack", "config", "-c", str(path)], capture_output=True, text=True,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent"},
                         check=True, cwd=path.parent)
    result: dict[str, Any] = YAML(typ="safe").load(out.stdout)
    return result


def _without_render_changes(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for svc in doc["services"].values():
        svc.pop("build", None)
        if svc.get("image", "").startswith("reg:5000/"):
            svc.pop("image")
        deploy = svc.get("deploy", {})
        deploy.pop("placement", None)
        labels = {k: v for k, v in deploy.get("labels", {}).items() if not k.startswith("io.swarmops.")}
        if labels:
            deploy["labels"] = labels
        else:
            deploy.pop("labels", None)
        if not deploy:
            svc.pop("deploy", None)
    doc.pop("configs", None)
    return doc


@pytest.mark.skipif(shutil.which("docker") is None and not os.environ.get("CI"),
                    reason="the docker CLI is not installed (CI requires it)")
def test_docker_reads_the_render_as_it_reads_the_original(tmp_path: Path) -> None:
    help_text = subprocess.run(["docker", "stack", "--help"], capture_output=True, text=True).stdout
    if " config " not in help_text:
        if os.environ.get("CI"):
            pytest.fail("CI needs a docker CLI with `stack config` (28.x) to check the render")
        pytest.skip("this docker CLI has no `stack config` (Debian 20.10)")
    (tmp_path / "motd.txt").write_text("hi\n")
    original = tmp_path / "stack.yml"
    original.write_text(GOLDEN)
    rendered = tmp_path / "rendered.yml"
    rendered.write_text(render(deploy_dir=str(tmp_path)).text)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd.txt").write_text("hi\n")
    assert _without_render_changes(_stack_config(rendered)) == _without_render_changes(_stack_config(original))


def test_infrastructure_images_name_the_private_registry_by_variable() -> None:
    text = "services:\n  proxy:\n    image: ${SWARMOPS_REGISTRY}/mirror/traefik:v3.1.4\n"
    rendered = render(text, images={}, fingerprints={}, registry="198.18.0.2:5000")
    assert rendered.services["proxy"].image == "198.18.0.2:5000/mirror/traefik:v3.1.4"


@pytest.mark.parametrize("name", ["1", "~", "true", "? [a]\n  "])
def test_a_service_name_that_is_not_a_string_is_refused_as_docker_does(name: str) -> None:
    # was a KeyError: service_names() gave str(key), which is not the key
    with pytest.raises(StackError, match=r"stack.yml:1: key .* in services is not a string, which Docker refuses"):
        render(f"services:\n  {name}:\n    image: x\n")


@pytest.mark.parametrize("section", ["configs: [motd]", "secrets: db", "configs: 1"])
def test_top_level_configs_and_secrets_must_be_mappings(section: str) -> None:
    # was an AttributeError ('CommentedSeq' object has no attribute 'items') in referenced_files
    with pytest.raises(StackError, match=r"stack.yml:4: '(configs|secrets)' must be a mapping of name to definition"):
        render(f"services:\n  web:\n    image: x\n{section}\n")


@pytest.mark.parametrize("constraints", ["node.labels.role == db", "1", "{a: b}"])
def test_placement_constraints_must_be_a_list(constraints: str) -> None:
    # was an AttributeError ('str' object has no attribute 'append') or a TypeError (int is not iterable)
    text = f"services:\n  web:\n    image: x\n    deploy:\n      placement:\n        constraints: {constraints}\n"
    with pytest.raises(StackError, match=r"stack.yml:6: services.web.deploy.placement.constraints must be a list"):
        render(text)


def test_a_deploy_section_that_is_not_a_mapping_names_file_and_key() -> None:
    with pytest.raises(StackError, match=r"stack.yml:4: services.web.deploy must be a mapping"):
        render("services:\n  web:\n    image: x\n    deploy: [1]\n")


def test_deploy_labels_of_the_wrong_shape_are_refused_not_dropped() -> None:
    with pytest.raises(StackError, match=r"stack.yml:5: services.web.deploy.labels must be a mapping or a list"):
        render("services:\n  web:\n    image: x\n    deploy:\n      labels: traefik.enable=true\n")


def test_a_number_too_long_to_print_is_refused_at_load() -> None:
    # was a ValueError out of json.dumps in the spec hash (Python prints at most 4300 digits)
    with pytest.raises(StackError, match=r"stack.yml:4: a number of more than 4096 bits"):
        render("services:\n  web:\n    image: x\n    stop_grace_period: 0x" + "f" * 2000 + "\n")

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from swarmops.domain.compose.schema import (
    CLI_20_10,
    CLI_28,
    key_problems,
    lowest_version,
    min_version,
    parse_version,
)


def svc(**keys: Any) -> dict[str, Any]:
    """A stack with one service `web` carrying `keys` besides its image."""
    return {"services": {"web": {"image": "nginx", **keys}}}


def test_the_versions_each_cli_knows() -> None:
    assert CLI_20_10 == ((3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 7), (3, 8), (3, 9))
    assert CLI_28[:10] == CLI_20_10
    assert CLI_28[10:] == ((3, 10), (3, 11), (3, 12), (3, 13))
    assert set(CLI_20_10) < set(CLI_28)


@pytest.mark.parametrize(("text", "version"), [("3", (3, 0)), ("3.0", (3, 0)), ("3.8", (3, 8)), ("3.13", (3, 13))])
def test_parse_version(text: str, version: tuple[int, int]) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize("text", ["2.4", "4", "latest", "3.14", "3.08", "3.", "", " 3.8", "3.8.1", "v3.8"])
def test_parse_version_refuses_what_no_cli_reads(text: str) -> None:
    with pytest.raises(ValueError, match="not one docker stack deploy knows"):
        parse_version(text)


@pytest.mark.parametrize(("path", "version"), [
    (("services", "*", "image"), (3, 0)),
    (("services", "*", "deploy", "resources", "limits", "pids"), (3, 9)),
    (("services", "*", "healthcheck", "start_interval"), (3, 12)),
    (("services", "*", "healthcheck", "start_period"), (3, 4)),
    (("services", "*", "oom_score_adj"), (3, 13)),
    (("services", "*", "init"), (3, 7)),
    (("services", "*", "isolation"), (3, 5)),
    (("services", "*", "cgroupns_mode"), (3, 9)),
    (("configs",), (3, 3)),
    (("configs", "*", "file"), (3, 3)),
    (("configs", "*", "name"), (3, 5)),
    (("configs", "*", "template_driver"), (3, 8)),
    (("secrets",), (3, 1)),
    (("secrets", "*", "name"), (3, 5)),
    (("secrets", "*", "driver"), (3, 8)),
    (("volumes", "*", "name"), (3, 4)),
    (("networks", "*", "name"), (3, 5)),
    (("networks", "*", "attachable"), (3, 2)),
    (("services", "*", "secrets", "[]", "source"), (3, 1)),
    (("services", "*", "configs", "[]", "mode"), (3, 3)),
    (("services", "*", "ports", "[]", "published"), (3, 2)),
    (("services", "*", "volumes", "[]", "bind", "propagation"), (3, 2)),
    (("services", "*", "volumes", "[]", "tmpfs", "size"), (3, 6)),
    (("services", "*", "deploy", "placement", "max_replicas_per_node"), (3, 8)),
    (("services", "*", "deploy", "placement", "preferences", "[]", "spread"), (3, 3)),
    (("services", "*", "deploy", "rollback_config"), (3, 7)),
    (("services", "*", "deploy", "rollback_config", "order"), (3, 7)),
    (("services", "*", "deploy", "update_config", "order"), (3, 4)),
    (("services", "*", "deploy", "update_config", "parallelism"), (3, 0)),
    (("services", "*", "deploy", "endpoint_mode"), (3, 2)),
    (("services", "*", "deploy", "resources", "reservations", "generic_resources"), (3, 5)),
    (("services", "*", "credential_spec", "config"), (3, 8)),
    (("services", "*", "networks", "*", "driver_opts"), (3, 13)),
    (("services", "*", "build", "labels"), (3, 3)),
    (("services", "*", "build", "anything"), (3, 11)),             # 3.11 lets build take any key, any content
    (("services", "*", "build", "ssh", "id"), (3, 11)),
    (("x-defaults",), (3, 4)),
    (("services", "*", "x-defaults"), (3, 7)),
    (("volumes", "*", "x-cluster-spec", "group"), (3, 7)),
    (("services", "web", "labels", "com.example.team"), (3, 0)),   # a real name in place of "*", a free-form map
    (("services", "*", "deploy", "labels", "anything"), (3, 0)),
    (("services", "*", "secrets", "[]", "whatever"), (3, 1)),      # the long syntax has no closed key list
])
def test_min_version(path: tuple[str, ...], version: tuple[int, int]) -> None:
    assert min_version(path) == version


@pytest.mark.parametrize("path", [
    ("services", "*", "foo"),
    ("services", "*", "deploy", "x-foo"),                 # extension fields only at the top and in the five sections
    ("services", "*", "ports", "[]", "host_ip"),          # newer Compose Specification keys docker stack never took
    ("services", "*", "ports", "[]", "name"),
    ("services", "*", "deploy", "resources", "limits", "devices"),
    ("services", "*", "depends_on", "db", "condition"),
    ("services", "*", "image", "foo"),
    ("networks", "*", "ipam", "config", "[]", "gateway"),
    ("networks", "*", "external", "foo"),
    ("services", "*", "ulimits", "nofile", "foo"),
    ("name",),
    ("include",),
])
def test_min_version_none_for_what_no_version_allows(path: tuple[str, ...]) -> None:
    assert min_version(path) is None


def test_key_problems_names_the_key_its_path_and_the_fix() -> None:
    tree = svc(deploy={"resources": {"limits": {"cpus": "0.5", "pids": 100}}}, foo=1)
    assert key_problems(tree, (3, 8)) == [
        (("services", "web", "deploy", "resources", "limits", "pids"),
         "key 'pids' needs version 3.9 or newer; this file says 3.8: raise version"),
        (("services", "web", "foo"), "key 'foo' is not a Compose key Docker knows; remove it"),
    ]
    assert key_problems(tree, (3, 9)) == [
        (("services", "web", "foo"), "key 'foo' is not a Compose key Docker knows; remove it")]


def test_key_problems_walks_lists_with_their_indices() -> None:
    tree = svc(ports=["8080:80", {"target": 80, "published": 8081, "host_ip": "127.0.0.1"}],
               volumes=["data:/data", {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1000}}])
    assert key_problems(tree, (3, 6)) == [
        (("services", "web", "ports", 1, "host_ip"), "key 'host_ip' is not a Compose key Docker knows; remove it")]
    assert [path for path, _ in key_problems(tree, (3, 1))] == [
        ("services", "web", "ports", 1, "target"), ("services", "web", "ports", 1, "published"),
        ("services", "web", "ports", 1, "host_ip"),
        ("services", "web", "volumes", 1, "type"), ("services", "web", "volumes", 1, "target"),
        ("services", "web", "volumes", 1, "tmpfs")]       # tmpfs.size needs no more than tmpfs: said once


def test_key_problems_reports_a_new_section_once_not_every_key_below_it() -> None:
    tree = {"version": "3.2", "services": {"web": {"image": "nginx", "configs": [{"source": "c", "target": "/c"}]}},
            "configs": {"c": {"file": "./c.txt", "name": "c-v1"}}}
    assert key_problems(tree, (3, 2)) == [
        (("services", "web", "configs"), "key 'configs' needs version 3.3 or newer; this file says 3.2: raise version"),
        (("configs",), "key 'configs' needs version 3.3 or newer; this file says 3.2: raise version"),
        (("configs", "c", "name"), "key 'name' needs version 3.5 or newer; this file says 3.2: raise version"),
    ]


def test_extension_fields_where_the_schema_allows_them() -> None:
    tree = {"x-common": {"anything": {"goes": [1]}}, **svc(**{"x-mine": 1})}
    assert [msg for _, msg in key_problems(tree, (3, 3))] == [
        "key 'x-common' needs version 3.4 or newer; this file says 3.3: raise version",
        "key 'x-mine' needs version 3.7 or newer; this file says 3.3: raise version"]
    assert key_problems(tree, (3, 7)) == []
    assert key_problems(svc(deploy={"x-mine": 1}), (3, 13)) == [
        (("services", "web", "deploy", "x-mine"), "key 'x-mine' is not a Compose key Docker knows; remove it")]


def test_free_form_maps_are_not_checked() -> None:
    tree = svc(labels={"a.b": "1"}, environment={"ANY_NAME": "x"}, sysctls={"net.core.somaxconn": 1024},
               extra_hosts={"db": "198.18.0.2"}, ulimits={"nofile": {"soft": 1, "hard": 2}, "nproc": 5},
               logging={"driver": "json-file", "options": {"max-size": "1m"}},
               deploy={"labels": {"x": "y"}, "placement": {"constraints": ["node.role==manager"]}},
               networks={"back": {"aliases": ["db"]}, "front": None})
    tree |= {"networks": {"back": {"driver": "overlay", "driver_opts": {"encrypted": ""}, "labels": ["k=v"],
                                   "ipam": {"driver": "default", "config": [{"subnet": "198.19.9.0/24"}]}},
                          "front": {"external": {"name": "edge"}}},
             "volumes": {"data": {"driver_opts": {"type": "nfs", "o": "addr=1.2.3.4"}}, "empty": None}}
    assert key_problems(tree, (3, 0)) == []


def test_closed_objects_inside_are_checked() -> None:
    tree = svc(ulimits={"nofile": {"soft": 1, "hard": 2, "max": 3}}, healthcheck={"test": "true", "grace": "1s"})
    tree["networks"] = {"back": {"ipam": {"config": [{"subnet": "198.19.9.0/24", "gateway": "198.19.9.1"}]}}}
    assert [path for path, _ in key_problems(tree, (3, 13))] == [
        ("services", "web", "ulimits", "nofile", "max"), ("services", "web", "healthcheck", "grace"),
        ("networks", "back", "ipam", "config", 0, "gateway")]


def test_odd_values_do_not_trip_the_walk() -> None:
    assert key_problems({}, (3, 0)) == []
    odd: dict[Any, Any] = {"services": None, "volumes": {"v": None}, 3: "x"}
    assert key_problems(odd, (3, 0)) == [
        ((3,), "key '3' is not a Compose key Docker knows; remove it")]
    assert key_problems(svc(build="./app", deploy=None, command=["a", {"b": 1}]), (3, 0)) == []


def test_lowest_version() -> None:
    assert lowest_version(svc(), CLI_20_10) == (3, 0)
    tree = {**svc(deploy={"resources": {"limits": {"pids": 1}}}), "configs": {"c": {"file": "c"}}}
    assert lowest_version(tree, CLI_20_10) == (3, 9)
    assert lowest_version(svc(oom_score_adj=-500), CLI_20_10) is None
    assert lowest_version(svc(oom_score_adj=-500), CLI_28) == (3, 13)
    assert lowest_version(svc(healthcheck={"start_interval": "1s"}), ((3, 13), (3, 12), (3, 8))) == (3, 12)
    assert lowest_version(svc(foo=1), CLI_28) is None
    assert lowest_version(svc(), ()) is None


# The real docker 28 CLI against the table: `docker stack config` validates offline, without a daemon.
DIFFERENTIAL: list[tuple[str, dict[str, Any], str | None]] = [
    ("pids", svc(deploy={"resources": {"limits": {"pids": 5}}}), "3.8"),
    ("pids", svc(deploy={"resources": {"limits": {"pids": 5}}}), "3.9"),
    ("oom_score_adj", svc(oom_score_adj=-500), "3.12"),
    ("oom_score_adj", svc(oom_score_adj=-500), None),                 # no version: docker 28 reads 3.13
    ("start_interval", svc(healthcheck={"test": "true", "start_interval": "1s"}), "3.11"),
    ("start_interval", svc(healthcheck={"test": "true", "start_interval": "1s"}), "3.12"),
    ("start_period", svc(healthcheck={"test": "true", "start_period": "1s"}), "3.3"),
    ("init", svc(init=True), "3.6"),
    ("init", svc(init=True), "3.7"),
    ("x-top", {"x-common": {"a": 1}, **svc()}, "3.3"),
    ("x-top", {"x-common": {"a": 1}, **svc()}, "3.4"),
    ("x-service", svc(**{"x-mine": {"a": 1}}), "3.6"),
    ("x-service", svc(**{"x-mine": {"a": 1}}), "3.7"),
    ("x-deploy", svc(deploy={"x-mine": 1}), "3.13"),
    ("template_driver", {**svc(), "configs": {"c": {"file": "./c.txt", "template_driver": "golang"}}}, "3.7"),
    ("template_driver", {**svc(), "configs": {"c": {"file": "./c.txt", "template_driver": "golang"}}}, "3.8"),
    ("secret name", {**svc(secrets=["s"]), "secrets": {"s": {"file": "./s.txt", "name": "s-v1"}}}, "3.4"),
    ("secret long", {**svc(secrets=[{"source": "s", "target": "t", "extra": 1}]), "secrets": {"s": {"file": "s"}}},
     "3.1"),
    ("rollback_config", svc(deploy={"rollback_config": {"parallelism": 1}}), "3.6"),
    ("endpoint_mode", svc(deploy={"endpoint_mode": "dnsrr"}), "3.1"),
    ("update order", svc(deploy={"update_config": {"order": "start-first"}}), "3.3"),
    ("update order", svc(deploy={"update_config": {"order": "start-first"}}), "3.4"),
    ("max_replicas_per_node", svc(deploy={"placement": {"max_replicas_per_node": 1}}), "3.7"),
    ("ports long", svc(ports=[{"target": 80, "published": 8080}]), "3.1"),
    ("ports long", svc(ports=[{"target": 80, "published": 8080, "host_ip": "127.0.0.1"}]), "3.13"),
    ("bind options", svc(volumes=[{"type": "bind", "source": "/srv", "target": "/x", "bind": {"other": 1}}]), "3.2"),
    ("build open", svc(build={"context": ".", "ssh": ["default"]}), "3.10"),
    ("build open", svc(build={"context": ".", "ssh": ["default"]}), "3.11"),
    ("attachment driver_opts", {**svc(networks={"n": {"driver_opts": {"a": "b"}}}), "networks": {"n": None}}, "3.12"),
    ("ipam gateway", {**svc(), "networks": {"n": {"ipam": {"config": [{"subnet": "198.19.10.0/24",
                                                                      "gateway": "198.19.10.1"}]}}}}, "3.13"),
    ("ulimits", svc(ulimits={"nofile": {"soft": 1, "hard": 2, "max": 3}}), "3.13"),
    ("free maps", svc(labels={"a": "b"}, sysctls={"net.x": 1}, deploy={"labels": {"c": "d"}}), "3.0"),
]


def _docker_with_stack_config() -> str | None:
    docker = "/usr/local/bin/docker" if os.access("/usr/local/bin/docker", os.X_OK) else shutil.which("docker")
    if docker is None:
        return None
    help_text = subprocess.run([docker, "stack", "--help"], capture_output=True, text=True).stdout
    return docker if " config " in help_text else None


@pytest.mark.skipif(_docker_with_stack_config() is None and not os.environ.get("CI"),
                    reason="no docker CLI with `stack config` (docker 28) installed")
@pytest.mark.parametrize(("case", "tree", "version"), DIFFERENTIAL, ids=[f"{c}-{v}" for c, _, v in DIFFERENTIAL])
def test_docker_accepts_a_file_exactly_when_no_key_problems(
        tmp_path: Path, case: str, tree: dict[str, Any], version: str | None) -> None:
    docker = _docker_with_stack_config()
    assert docker is not None, "CI needs the docker 28 CLI"
    doc = tree if version is None else {"version": version, **tree}
    (tmp_path / "stack.yml").write_text(json.dumps(doc))           # JSON is YAML
    run = subprocess.run([docker, "stack", "config", "-c", "stack.yml"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin"}, timeout=30)
    problems = key_problems(doc, parse_version(version) if version else CLI_28[-1])
    assert (run.returncode == 0) == (problems == []), (case, run.stderr, problems)
    if "Additional property" in run.stderr:                          # docker names one key: it is one of ours
        named = run.stderr.split("Additional property ")[1].split()[0]
        assert named in {path[-1] for path, _ in problems}

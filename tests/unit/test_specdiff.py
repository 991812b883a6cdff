from typing import Any

from swarmops.domain.specdiff import diff_summaries, summarize_compose, summarize_live

COMPOSE = {
    "image": "reg/app/web:abc", "environment": ["MODE=prod", "DEBUG"], "labels": ["team=water"],
    "ports": ["8080:80", {"target": 22, "published": 2222, "mode": "host"}],
    "secrets": ["db"], "networks": ["back"],
    "deploy": {"replicas": 2, "placement": {"constraints": ["node.labels.role == app"]},
               "labels": {"traefik.enable": "true", "io.swarmops.commit": "x"},
               "resources": {"limits": {"cpus": "0.5", "memory": "64M"}}},
}
TOP = {"secrets": {"db": {"file": "x", "name": "app_db_1234abcd"}}, "networks": {"back": {}}}
LIVE: dict[str, Any] = {
    "Labels": {"traefik.enable": "true", "io.swarmops.commit": "y", "com.docker.stack.namespace": "app"},
    "Mode": {"Replicated": {"Replicas": 2}},
    "TaskTemplate": {
        "ContainerSpec": {"Image": "reg/app/web:abc@sha256:00", "Env": ["MODE=prod", "DEBUG="],
                          "Labels": {"team": "water", "com.docker.stack.namespace": "app"},
                          "Secrets": [{"SecretName": "app_db_1234abcd"}]},
        "Placement": {"Constraints": ["node.labels.role == app"]},
        "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 67108864}},
        "Networks": [{"Target": "n1"}]},
    "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                               {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}]},
}


def test_a_deployed_render_and_its_live_spec_have_no_difference() -> None:
    want = summarize_compose("app", COMPOSE, TOP)
    have = summarize_live(LIVE, {"n1": "app_back"})
    assert diff_summaries(want, have) == []


def test_changed_env_and_replicas_are_named_field_by_field() -> None:
    live = {**LIVE, "Mode": {"Replicated": {"Replicas": 5}}}
    live["TaskTemplate"] = {**LIVE["TaskTemplate"], "ContainerSpec": {
        **LIVE["TaskTemplate"]["ContainerSpec"], "Env": ["MODE=debug", "DEBUG="]}}
    diffs = diff_summaries(summarize_compose("app", COMPOSE, TOP), summarize_live(live, {"n1": "app_back"}))
    assert diffs == [("env.MODE", "prod", "debug"), ("replicas", 2, 5)]


def test_the_http_diff_shows_that_an_env_value_changed_but_never_the_value() -> None:
    from swarmops.ops.actions import ServiceDiff, diff_to_json

    diffs = [ServiceDiff("web", "update", "spec changed",
                         [("env", {"DB_PASSWORD": "hunter2"}, {"DB_PASSWORD": "swordfish"}), ("replicas", 2, 1)])]
    shown = diff_to_json("c" * 40, diffs, b"k" * 32)
    text = str(shown)
    assert "hunter2" not in text and "swordfish" not in text
    env = shown["services"][0]["fields"][0]
    assert env["git"]["DB_PASSWORD"] != env["live"]["DB_PASSWORD"]          # the change still shows
    assert shown["services"][0]["fields"][1] == {"field": "replicas", "git": 2, "live": 1}
    assert "hunter2" in str(diff_to_json("c" * 40, diffs))                  # the CLI's own diff is unmasked
    import hashlib
    assert hashlib.sha256(b"hunter2").hexdigest()[:8] not in text           # keyed: not guessable offline
    other_key = diff_to_json("c" * 40, diffs, b"j" * 32)["services"][0]["fields"][0]
    assert other_key["git"] != env["git"]                                   # another daemon, other digests
    assert diff_to_json("c" * 40, diffs, b"k" * 32) == shown                # equal values compare equal

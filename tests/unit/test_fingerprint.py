from swarmops.domain.fingerprint import base_images, fingerprint
from swarmops.domain.stackfile import BuildSpec

SPEC = BuildSpec("web", "web", "web/Dockerfile", (("V", "1"),), None)


def test_base_images_skip_stage_names_and_substitute_args() -> None:
    dockerfile = "ARG BASE=reg/base/py:3\nFROM $BASE AS build\nRUN x\nFROM build\nFROM --platform=linux/amd64 reg/b:1\n"
    assert base_images(dockerfile, {}) == ["reg/base/py:3", "reg/b:1"]
    assert base_images(dockerfile, {"BASE": "reg/base/py:4"}) == ["reg/base/py:4", "reg/b:1"]


def test_fingerprint_follows_every_build_input() -> None:
    base = fingerprint(SPEC, "tree1", "blob1", "FROM a\n")
    assert base == fingerprint(SPEC, "tree1", "blob1", "FROM a\n")
    assert base != fingerprint(SPEC, "tree2", "blob1", "FROM a\n")
    assert base != fingerprint(SPEC, "tree1", "blob2", "FROM a\n")
    assert base != fingerprint(SPEC, "tree1", "blob1", "FROM b\n")
    assert base != fingerprint(BuildSpec("web", "web", "web/Dockerfile", (("V", "2"),), None), "tree1", "blob1",
                               "FROM a\n")
    assert base != fingerprint(BuildSpec("web", "web", "web/Dockerfile", (("V", "1"),), "prod"), "tree1",
                               "blob1", "FROM a\n")

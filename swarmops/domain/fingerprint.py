"""What an image is made from, as one hash: equal fingerprints mean an image can be reused."""

from __future__ import annotations

import hashlib
import json
import re

from swarmops.domain.stackfile import BuildSpec

_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", re.IGNORECASE | re.MULTILINE)


def base_images(dockerfile: str, args: dict[str, str]) -> list[str]:
    """The FROM references of a Dockerfile, build args substituted, stage names left out."""
    defaults = {m.group(1): m.group(2) or "" for m in _ARG.finditer(dockerfile)}
    values = {**defaults, **args}
    stages: set[str] = set()
    refs: list[str] = []
    for line in dockerfile.splitlines():
        m = _FROM.match(line)
        if not m:
            continue
        ref = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda a: values.get(a.group(1), ""), m.group(1))
        parts = line.split()
        if len(parts) >= 4 and parts[-2].lower() == "as":
            stages.add(parts[-1].lower())
        if ref.lower() not in stages:
            refs.append(ref)
    return refs


def fingerprint(spec: BuildSpec, context_tree: str, dockerfile_blob: str, dockerfile_text: str) -> str:
    """sha256 over the context's git tree id, the Dockerfile blob, args, target and base images."""
    args = dict(spec.args)
    material = {
        "context_tree": context_tree,
        "dockerfile": dockerfile_blob,
        "args": spec.args,
        "target": spec.target,
        "bases": base_images(dockerfile_text, args),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()

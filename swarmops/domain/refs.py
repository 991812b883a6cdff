"""What an app follows in its repo: a branch, or the highest version among the tags matching a pattern
(`tags: "v*"`, as Flux's semver ref and Argo CD's tag tracking do). Pure: the refs come from the remote's
advertisement, read by the git adapter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

# a pattern is a literal ref part with at most one `*`: git's refspec globs and fnmatch agree on it then
# (`?` and `[...]` would mean something to fnmatch and nothing to a refspec)
TAG_PATTERN = re.compile(r"^[A-Za-z0-9._/-]*\*?[A-Za-z0-9._/-]*$")
# numbers without leading zeros (v01.0.0 is not v1.0.0's equal: it would tie with it) and of at most 18 digits
# (a tag of thousands of digits is more than int() takes); a tag that is not one sorts below every version
_NUMBER = r"(?:0|[1-9]\d{0,17})"
_VERSION = re.compile(rf"^({_NUMBER}(?:\.{_NUMBER})*)(?![0-9])(.*)$", re.S)
# what `git check-ref-format` allows of a tag made here (a subset: no `@{`, `..`, control characters, ...)
_TAG_NAME = re.compile(r"^(?!.*\.\.)(?!.*/\.)(?!\.)[A-Za-z0-9._/-]+(?<!\.lock)(?<![./])$")


def tag_pattern(v: str) -> str:
    """A valid tag pattern, or ValueError saying what one looks like."""
    if not v or not TAG_PATTERN.fullmatch(v) or ".." in v or v.startswith(("/", "-")):
        raise ValueError(f"{v!r} is not a tag pattern: letters, digits, '.', '_', '-', '/' and at most one '*', "
                         "for example v*")
    return v


def matches(tag: str, pattern: str) -> bool:
    return fnmatchcase(tag, pattern)


def version_key(tag: str, pattern: str) -> tuple[int, tuple[int, ...], int, str]:
    """Orders the tags of one pattern: by the version numbers after the pattern's literal prefix
    (v1.10.0 after v1.9.2), a pre-release (v2.0.0-rc1) before its release; tags without a number come first,
    by name."""
    rest = tag[len(pattern.split("*", 1)[0]):]
    m = _VERSION.match(rest)
    if m is None:
        return (0, (), 0, tag)
    numbers, suffix = tuple(int(n) for n in m.group(1).split(".")), m.group(2)
    return (1, numbers, 0 if suffix else 1, suffix)


def latest_tag(refs: Mapping[str, str], pattern: str) -> tuple[str, str] | None:
    """(tag, commit) of the highest tag matching `pattern` among advertised refs (name -> sha); an annotated
    tag is its peeled commit (`refs/tags/T^{}`), as a deploy runs the commit, not the tag object."""
    tags = [name.removeprefix("refs/tags/") for name in refs
            if name.startswith("refs/tags/") and not name.endswith("^{}")]
    found = [t for t in tags if matches(t, pattern)]
    if not found:
        return None
    best = max(found, key=lambda t: version_key(t, pattern))
    return best, refs.get(f"refs/tags/{best}^{{}}", refs[f"refs/tags/{best}"])


def next_tag(refs: Mapping[str, str], pattern: str) -> str | None:
    """The tag a promotion pushes when the operator names none: the highest matching tag with its last number
    one higher (v1.4.2 -> v1.4.3); None when there is no numbered tag to count from."""
    found = latest_tag(refs, pattern)
    if found is None:
        return None
    tag = found[0]
    m = re.match(r"^(.*?)(\d+)(\D*)$", tag)
    if m is None or version_key(tag, pattern)[0] == 0:
        return None
    return f"{m.group(1)}{int(m.group(2)) + 1}"


def promotable_tag(refs: Mapping[str, str], pattern: str, tag: str) -> str | None:
    """Why `tag` cannot be what a promotion pushes for an environment following `pattern`, or None: it must
    match, be a plain tag name, be new, and become the highest (else the environment would not move)."""
    if not _TAG_NAME.fullmatch(tag) or not matches(tag, pattern):
        return f"tag {tag!r} does not match {pattern} (or is not a plain tag name)"
    if f"refs/tags/{tag}" in refs:
        return f"tag {tag} exists already; a promotion makes a new tag"
    found = latest_tag(refs, pattern)
    if found is not None and version_key(tag, pattern) <= version_key(found[0], pattern):
        return (f"tag {tag} would not be above {found[0]}, the highest tag matching {pattern}, which the "
                "environment follows")
    return None

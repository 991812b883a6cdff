"""The small building blocks of the config's models: the strict base, and the checks of names and values
that several parts of the format share (stack names, variables, replica counts, one line of text)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from swarmops.domain.refs import tag_pattern

# A stack name is also the image repository path component: Docker needs lowercase.
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
VARIABLE = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# controls, format characters (bidirectional overrides, zero-width), line and paragraph separators: they
# reorder, hide or break what Polise shows a refused user
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def one_line(value: str, what: str, limit: int) -> str:
    """`value` as a short single line of visible text, or a ValueError that says what is wrong."""
    bad = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        raise ValueError(f"{what} has the control or format character U+{ord(bad):04X}; write it on one line of "
                         "plain text")
    if not value.strip():
        raise ValueError(f"{what} is empty; leave the key out instead")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} starts or ends with spaces; remove them")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long; keep it to {limit}")
    return value


def once(v: list[str], kind: str) -> list[str]:
    twice = sorted({d for d in v if v.count(d) > 1})
    if twice:
        raise ValueError(f"{kind} {twice[0]!r} is listed twice; list each {kind} once")
    return v


ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def variable_names(v: dict[str, str]) -> dict[str, str]:
    for key in v:
        if not VARIABLE.match(key):
            raise ValueError(f"{key!r} is not a variable name: letters, digits and '_', not starting with a digit")
        if key.startswith("SWARMOPS_"):
            raise ValueError(f"{key} is set by swarmops itself; choose another name")
    return v


def stack_name(v: str) -> str:
    if not STACK_NAME.match(v):
        raise ValueError(f"{v!r} is not a valid app name: use lowercase letters, digits, '-' and '_', starting with a "
                         "letter or digit, at most 63 characters (it is the stack name)")
    return v


def replica_counts(v: dict[str, int]) -> dict[str, int]:
    for service, count in v.items():
        if not 0 <= count <= 1000:
            raise ValueError(f"replicas of {service!r}: {count} is not 0 to 1000")
    return v


# the values an app and each of its environments declare alike, checked where the model is made
Variables = Annotated[dict[str, str], AfterValidator(variable_names)]   # ${VAR} values for the stack file
Replicas = Annotated[dict[str, int], AfterValidator(replica_counts)]    # per service, over the stack file's
TagPattern = Annotated[str, AfterValidator(tag_pattern)]                # v*: the highest matching tag

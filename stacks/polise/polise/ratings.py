"""Ratings of an app and, separately, of its docs: 1 to 5 stars, one per user per app and target (a new
one replaces the old), and a low rating must say why, so that the app's owners can act on it."""

from __future__ import annotations

from polise.store import Store

TARGETS = ("app", "docs")
LOW = 2                 # a rating of this or less asks for a comment
MAX_COMMENT = 2000


class RatingRefused(Exception):
    """A rating that breaks a rule: the message tells the user what to change."""


def check(target: str, stars: int, comment: str) -> None:
    if target not in TARGETS:
        raise RatingRefused(f"rate the app or its docs, not {target!r}")
    if not 1 <= stars <= 5:
        raise RatingRefused(f"{stars} stars: choose 1 to 5")
    if stars <= LOW and not comment.strip():
        raise RatingRefused(f"a rating of {stars} needs a comment: say what is wrong, so that it can be fixed")
    if len(comment) > MAX_COMMENT:
        raise RatingRefused(f"the comment is {len(comment)} characters long: at most {MAX_COMMENT}")


def rate(store: Store, app: str, target: str, user_sub: str, user_name: str, stars: int, comment: str = "") -> None:
    check(target, stars, comment)
    store.rate(app, target, user_sub, user_name, stars, comment.strip())

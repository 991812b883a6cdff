"""Ratings of an app and, separately, of its docs: 1 to 5 stars, one per user per app and target (a new
one replaces the old), and a low rating must say why, so that the app's owners can act on it."""

from __future__ import annotations

from polise.i18n import N_
from polise.store import Store

TARGETS = ("app", "docs")
LOW = 2                 # a rating of this or less asks for a comment
MAX_COMMENT = 2000


class RatingRefused(Exception):
    """A rating that breaks a rule: the message (an i18n.Text) tells the user what to change."""


def check(target: str, stars: int, comment: str) -> None:
    if target not in TARGETS:
        raise RatingRefused(N_("Rate the app or its docs, not %(target)r.", target=target))
    if not 1 <= stars <= 5:
        raise RatingRefused(N_("%(stars)d stars: choose 1 to 5.", stars=stars))
    if stars <= LOW and not comment.strip():
        raise RatingRefused(N_("A rating of %(stars)d needs a comment: say what is wrong, so that it can be fixed.",
                               stars=stars))
    if len(comment) > MAX_COMMENT:
        raise RatingRefused(N_("The comment is %(length)d characters long: at most %(most)d.",
                               length=len(comment), most=MAX_COMMENT))


def rate(store: Store, app: str, target: str, user_sub: str, user_name: str, stars: int, comment: str = "") -> None:
    check(target, stars, comment)
    store.rate(app, target, user_sub, user_name, stars, comment.strip())

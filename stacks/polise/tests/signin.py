"""A signed-in browser without the provider: a session made in the app's own sessions (polise.sessions),
and Polise's session cookie for it, signed as its SessionMiddleware signs it."""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Mapping, Sequence

from fastapi import FastAPI
from itsdangerous import TimestampSigner

from polise.sessions import User


def session_cookie(app: FastAPI, user: Mapping[str, str | Sequence[str]], csrf: str, secret: str) -> str:
    groups = tuple(user.get("groups", ()))
    sid = app.state.sessions.create(User(str(user["sub"]), str(user["name"]), str(user["email"]), groups))
    return TimestampSigner(secret).sign(b64encode(json.dumps({"sid": sid, "csrf": csrf}).encode())).decode()

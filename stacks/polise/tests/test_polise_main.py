"""Polise's settings from the environment: each missing or wrong one named with what to do."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from polise.main import SettingsError, build


def env(tmp_path: Path, **over: str) -> dict[str, str]:
    (tmp_path / "token").write_text("read-token\n")
    (tmp_path / "session").write_text("session-secret\n")
    (tmp_path / "sso_key").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "not-a-key").write_text("session-secret\n")
    return {"POLISE_SWARMOPS_URL": "http://127.0.0.1:9", "POLISE_SWARMOPS_TOKEN_FILE": str(tmp_path / "token"),
            "POLISE_PUBLIC_URL": "https://polise.example.go.id",
            "POLISE_SESSION_SECRET_FILE": str(tmp_path / "session"),
            "POLISE_SSO_KEY_FILE": str(tmp_path / "sso_key"), **over}


@pytest.mark.parametrize(("var", "value", "words"), [
    ("POLISE_SWARMOPS_URL", "", "POLISE_SWARMOPS_URL is not set"),
    ("POLISE_SWARMOPS_URL", "swarmops:9480", "write it as http(s)://host:port"),
    ("POLISE_SWARMOPS_TOKEN_FILE", "/nonexistent/token", "mount it as that Swarm secret"),
    ("POLISE_SESSION_SECRET_FILE", "", "POLISE_SESSION_SECRET_FILE is not set"),
    ("POLISE_FORGE_KIND", "gitlab", "github or gitea"),
    ("POLISE_OWNERS", "portal:ana@x", "is not app=email,email"),
    ("POLISE_PUBLIC_URL", " ", "POLISE_PUBLIC_URL is not set"),
    ("POLISE_TIME_ZONE", "Mars/Olympus", "not a time zone"),
    ("POLISE_OPS_WEBHOOK_URL", "mattermost.local/hooks/x", "POLISE_OPS_WEBHOOK_URL: write it as http(s)"),
    ("POLISE_SSO_KEY_FILE", "", "POLISE_SSO_KEY_FILE is not set"),
    ("POLISE_SSO_KEY_FILE", "/nonexistent/sso_key", "mount it as that Swarm secret"),
])
def test_a_missing_or_wrong_setting_is_named(tmp_path: Path, var: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(words)):
        build(env(tmp_path, **{var: value}))


def test_polise_does_not_start_with_a_signing_key_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        build(env(tmp_path, POLISE_SSO_KEY_FILE=str(tmp_path / "not-a-key")))
    assert str(raised.value) == (f"POLISE_SSO_KEY_FILE={tmp_path / 'not-a-key'}: not a PEM private key without a "
                                 "passphrase; make one with: openssl genpkey -algorithm ed25519")


def test_the_app_built_from_the_environment_says_503_when_swarmops_is_away(tmp_path: Path) -> None:
    english = {"Accept-Language": "en"}
    page = TestClient(build(env(tmp_path)), headers=english).get("/")   # port 9 on loopback: nothing listens
    assert page.status_code == 503 and "swarmops did not answer" in page.text


def test_polise_starts_and_serves_without_its_database(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])   # closed again: nothing listens there
    with TestClient(build(env(tmp_path, POLISE_DB_HOST="127.0.0.1", POLISE_DB_PORT=port))) as c:   # runs the start
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/status.json").json() == {"database": "down", "reports": None}

"""Commands developers run in their own checkout or CI: no config, no engine."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from swarmops import secrets
from swarmops.cli import main

HOSTILE = Path(__file__).parent / "data" / "hostile"


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMOPS_CONFIG", "/nonexistent/swarmops.yml")


def test_policy_check_refuses_a_hostile_file_with_rule_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "check", str(HOSTILE / "SO101-privileged.yml"),
                 "--app", "shop", "--registry", "registry.local:5000"])
    out = capsys.readouterr().out
    assert code == 1 and "SO101-privileged.yml:8: service 'web', key services.web.privileged: [SO101]" in out


def test_policy_check_passes_a_clean_file_under_the_privileged_profile(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "stack.yml"
    stack.write_text("services:\n  proxy:\n    image: registry.local:5000/infra/proxy:1\n"
                     "    ports: [\"80:80\"]\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock:ro\"]\n")
    assert main(["policy", "check", str(stack), "--profile", "privileged",
                 "--registry", "registry.local:5000"]) == 0
    assert main(["policy", "check", str(stack), "--profile", "restricted",
                 "--registry", "registry.local:5000"]) == 1
    capsys.readouterr()


def test_secret_encrypt_writes_the_age_file_and_prints_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    public = secrets.keygen(tmp_path / "state")
    checkout = tmp_path / "app"
    checkout.mkdir()
    (checkout / secrets.RECIPIENT_FILE).write_text(public + "\n")
    monkeypatch.chdir(checkout)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hunter2")))
    assert main(["secret", "encrypt", "app", "dbpass"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "secrets/dbpass.age" and "hunter2" not in out.out + out.err
    ct = (checkout / "secrets" / "dbpass.age").read_bytes()
    assert secrets.decrypt(secrets.load_identity(tmp_path / "state"), ct, "x") == b"hunter2"


def test_secret_encrypt_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    public = secrets.keygen(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"v")))
    assert main(["secret", "encrypt", "app", "x", "--recipient", public,
                 "--output", "-"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"age-encryption.org/v1")
    assert not (tmp_path / "secrets").exists()


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "/nonexistent.yml", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarmops: /nonexistent.yml: no such file") and err.count("\n") == 1

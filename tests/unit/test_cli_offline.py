"""Commands developers run in their own checkout or CI: no config, no engine."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from swarmops.adapters import age as secrets
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
    plaintext = secrets.decrypt(secrets.load_identity(tmp_path / "state"), ct, "x")
    assert secrets.unseal(plaintext, "app", "dbpass", "x") == (b"hunter2", True)


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


def test_policy_check_names_a_missing_variable_in_one_line_and_reads_the_repos_dotenv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOMAIN", "from-the-shell")   # never read: only declared sources count
    (tmp_path / "stack.yml").write_text("version: '3.8'\nservices:\n  web:\n    image: registry.local:5000/a/web:1\n"
                                        "    labels: {host: 'Host(`${DOMAIN}`)'}\n    ports: ['${P}:80']\n")
    assert main(["policy", "check", "stack.yml", "--app", "a"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("swarmops: stack.yml:5: services.web.labels.host: variable DOMAIN is not set")
    (tmp_path / ".env").write_text("DOMAIN=a.example.go.id\nP=80\n")
    assert main(["policy", "check", "stack.yml", "--app", "a"]) == 1
    out = capsys.readouterr().out
    assert "stack.yml:6: service 'web', key services.web.ports.0: [SO113] port 80 is outside" in out


def test_policy_check_refuses_a_relative_bind_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stack.yml").write_text("services:\n  web:\n    image: registry.local:5000/a/web:1\n"
                                        "    volumes: ['./conf:/etc/conf']\n")
    assert main(["policy", "check", "stack.yml", "--app", "a", "--profile", "privileged"]) == 1
    err = capsys.readouterr().err
    assert "stack.yml:4: services.web.volumes.0: './conf:/etc/conf' binds a path relative to the repo" in err

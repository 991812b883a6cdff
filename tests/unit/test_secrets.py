import stat
from pathlib import Path

import pytest

from swarmops.adapters import age as secrets
from swarmops.domain.render import RenderRequest, age_secrets, referenced_files, render_stack
from swarmops.errors import SecretError
from tests.unit.fakes import stack_of

STACK = """version: "3.8"
services:
  web:
    image: reg/app/web:1
    secrets: [dbpass]
secrets:
  dbpass:
    file: secrets/dbpass.age
"""


def test_keygen_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    public = secrets.keygen(tmp_path)
    key = tmp_path / secrets.KEY_FILE
    assert public.startswith("age1") and (tmp_path / secrets.PUB_FILE).read_text().strip() == public
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(SecretError, match="--force"):
        secrets.keygen(tmp_path)


def test_encrypt_with_the_public_key_decrypt_with_the_daemons_key(tmp_path: Path) -> None:
    public = secrets.keygen(tmp_path)
    ct = secrets.encrypt(secrets.parse_recipient(public, "test"), b"s3cret-value")
    assert b"s3cret-value" not in ct
    assert secrets.decrypt(secrets.load_identity(tmp_path), ct, "secrets/x.age") == b"s3cret-value"


def test_a_secret_for_another_key_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    other = secrets.keygen(tmp_path / "other")
    secrets.keygen(tmp_path / "mine")
    ct = secrets.encrypt(secrets.parse_recipient(other, "test"), b"value")
    with pytest.raises(SecretError, match=r"secrets/dbpass.age: cannot be decrypted") as e:
        secrets.decrypt(secrets.load_identity(tmp_path / "mine"), ct, "secrets/dbpass.age")
    assert "value" not in str(e.value)


def test_versioned_names_change_with_content_and_fit_swarms_limit(tmp_path: Path) -> None:
    secrets.keygen(tmp_path)
    ident = secrets.load_identity(tmp_path)
    a = secrets.versioned_name(ident, "app", "dbpass", b"one")
    assert a == secrets.versioned_name(ident, "app", "dbpass", b"one")
    assert a != secrets.versioned_name(ident, "app", "dbpass", b"two")
    assert a.startswith("app_dbpass_") and len(secrets.versioned_name(ident, "a" * 63, "n" * 40, b"x")) <= 64


def test_age_secrets_become_external_versioned_secrets_and_are_never_copied() -> None:
    stack = stack_of(STACK)
    assert age_secrets(stack) == {"dbpass": "secrets/dbpass.age"}
    assert referenced_files(stack) == []
    req = RenderRequest(app="app", commit="c", role="app", allowed_roles=("app",), role_label="role", images={},
                        fingerprints={}, file_digests={}, deploy_dir="/d", secret_names={"dbpass": "app_dbpass_1"})
    text = render_stack(stack, req).text
    assert "secrets/dbpass.age" not in text and "  app_dbpass_1:\n    external: true" in text
    changed = RenderRequest(**{**req.__dict__, "secret_names": {"dbpass": "app_dbpass_2"}})
    assert render_stack(stack, changed).services["web"].spec_hash != render_stack(stack, req).services["web"].spec_hash


def test_a_secret_is_bound_to_its_app_and_name_and_a_replay_is_refused_with_the_fix() -> None:
    sealed = secrets.seal("shop", "dbpass", b"v\n\nwith blank lines")
    assert secrets.unseal(sealed, "shop", "dbpass", "secrets/dbpass.age") == (b"v\n\nwith blank lines", True)
    for app, name in (("billing", "dbpass"), ("shop", "admin_password")):
        with pytest.raises(SecretError, match=r"secrets/x.age: \[SO129\] made for secret 'dbpass' of app "
                                                      rf"'shop', not secret '{name}' of app '{app}'; fix: "
                                                      rf"encrypt the value for this app and name: swarmops secret "
                                                      rf"encrypt {app} {name}") as e:
            secrets.unseal(sealed, app, name, "secrets/x.age")
        assert "with blank lines" not in str(e.value)


def test_rekey_binds_old_files_and_keeps_the_value_so_the_swarm_name_stays(tmp_path: Path) -> None:
    public = secrets.keygen(tmp_path / "state")
    ident = secrets.load_identity(tmp_path / "state")
    recipient = secrets.parse_recipient(public, "test")
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "dbpass.age").write_bytes(secrets.encrypt(recipient, b"old-value"))            # before binding
    (folder / "token.age").write_bytes(secrets.encrypt(recipient, secrets.seal("shop", "token", b"t")))
    before = secrets.versioned_name(ident, "shop", "dbpass", b"old-value")
    assert secrets.rekey(folder, "shop", ident, recipient) == [folder / "dbpass.age"]
    value, bound = secrets.unseal(secrets.decrypt(ident, (folder / "dbpass.age").read_bytes(), "x"), "shop",
                                  "dbpass", "x")
    assert (value, bound) == (b"old-value", True)
    assert secrets.versioned_name(ident, "shop", "dbpass", value) == before
    assert secrets.rekey(folder, "shop", ident, recipient) == []

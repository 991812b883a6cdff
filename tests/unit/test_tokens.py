import stat
from pathlib import Path

import pytest

from swarmops.adapters.tokens import TokenStore
from swarmops.errors import TokenError


def test_a_token_is_shown_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("polise", "read")
    assert token.startswith("so_") and token not in (tmp_path / "tokens.json").read_text()
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert store.scope_of(token) == "read" and store.scope_of(token + "x") is None


def test_names_are_unique_scopes_are_checked_and_revoked_tokens_stop_working(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("ops", "deploy")
    with pytest.raises(TokenError, match="exists"):
        store.create("ops", "read")
    with pytest.raises(TokenError, match="read or deploy"):
        store.create("x", "admin")
    store.revoke("ops")
    assert store.scope_of(token) is None and store.list() == []
    with pytest.raises(TokenError, match="no token"):
        store.revoke("ops")

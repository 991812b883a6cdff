"""Issue 25: the catalog's card and the app's page say when the app's last backup ran and how it ended, in the
reader's language, with when the last good one was after a failure; nothing for an app without a backup, and
nothing (never a 500) for a value of swarmops' answer that is no time or no result. swarmops' backup_message
is the operators' (it may name hosts) and never reaches a page.

The apps are made by the adapter's own `app_info` from swarmops-shaped AppStatus dicts, over the fake read API
of test_polise_web; the last tests read raw JSON through the real SwarmopsClient."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from test_polise_web import FakeReadApi

from polise.swarmops_api import AppInfo, SwarmopsClient, app_info
from polise.web import create_app

AT = 1_800_000_000.0          # 15 January 2027 15.00 WIB
OK_AT = AT - 86_400.0         # the day before
OPERATORS_DETAIL = "pg_dump on db-1.lab.internal:5432 refused: password authentication failed"
LANGS = ("id", "en")
LINE = {   # the whole <dt>/<dd> pair, as a screen reader reads the <dl>
    ("id", "succeeded"): '<dt>Cadangan terakhir</dt><dd class="backup" data-result="succeeded">'
                         "15 Januari 2027 15.00 WIB · berhasil</dd>",
    ("en", "succeeded"): '<dt>Last backup</dt><dd class="backup" data-result="succeeded">'
                         "15 January 2027 3:00\u202fPM WIB · succeeded</dd>",
    ("id", "failed"): '<dt>Cadangan terakhir</dt><dd class="backup" data-result="failed">'
                      "15 Januari 2027 15.00 WIB · gagal (terakhir berhasil: 14 Januari 2027 15.00 WIB)</dd>",
    ("en", "failed"): '<dt>Last backup</dt><dd class="backup" data-result="failed">'
                      "15 January 2027 3:00\u202fPM WIB · failed "
                      "(last succeeded: 14 January 2027 3:00\u202fPM WIB)</dd>",
    ("id", "never"): '<dt>Cadangan terakhir</dt><dd class="backup" data-result="failed">'
                     "15 Januari 2027 15.00 WIB · gagal (belum pernah berhasil)</dd>",
    ("en", "never"): '<dt>Last backup</dt><dd class="backup" data-result="failed">'
                     "15 January 2027 3:00\u202fPM WIB · failed (never succeeded)</dd>",
}
BACKUPS = {
    "succeeded": {"backup_at": AT, "backup_result": "succeeded", "backup_message": "snapshot db-1.lab.internal",
                  "backup_ok_at": AT},
    "failed": {"backup_at": AT, "backup_result": "failed", "backup_message": OPERATORS_DETAIL, "backup_ok_at": OK_AT},
    "never": {"backup_at": AT, "backup_result": "failed", "backup_message": OPERATORS_DETAIL, "backup_ok_at": None},
}


def status(**fields: Any) -> dict[str, Any]:
    """swarmops' AppStatus of the fake's portal (as GET /api/v1/apps lists it), with these fields."""
    return {"app": "portal", "status": "Synced", "commit": "a" * 40, "title": "Add the form",
            "deployed_at": 1_800_000_000.0, "last_result": "succeeded", "message": "", "services": [], **fields}


def api_with(**fields: Any) -> FakeReadApi:
    api = FakeReadApi()
    api.apps_[0] = app_info(status(**fields))
    return api


def shown(api: FakeReadApi, lang: str) -> dict[str, str]:
    """The portal's catalog card and the facts of its page, both answered 200."""
    c = TestClient(create_app(api, "https://polise.example.go.id"), headers={"Accept-Language": lang})
    catalog, page = c.get("/"), c.get("/apps/portal")
    assert (catalog.status_code, page.status_code) == (200, 200)
    card = re.search(r'<li class="app card" data-app="portal">.*?</li>', catalog.text, re.S)
    about = re.search(r'<dl id="about".*?</dl>', page.text, re.S)
    assert card and about
    return {"card": card.group(0), "page": about.group(0), "catalog": catalog.text, "whole page": page.text}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("backup", ["succeeded", "failed", "never"])
def test_the_card_and_the_app_page_say_when_the_last_backup_ran_and_how_it_ended(lang: str, backup: str) -> None:
    seen = shown(api_with(**BACKUPS[backup]), lang)
    for where in ("card", "page"):
        assert LINE[lang, backup] in seen[where], where
        # below "Deployed", inside the same <dl>
        assert seen[where].index("deployed" if where == "page" else "Dipasang" if lang == "id" else "Deployed") \
            < seen[where].index(LINE[lang, backup]) < seen[where].index("</dl>"), where


@pytest.mark.parametrize("lang", LANGS)
def test_swarmops_backup_message_never_reaches_a_page(lang: str) -> None:
    for backup in BACKUPS.values():
        seen = shown(api_with(**backup), lang)
        assert "db-1.lab.internal" not in seen["catalog"] + seen["whole page"]
        assert "pg_dump" not in seen["catalog"] + seen["whole page"]
    assert not hasattr(app_info(status(**BACKUPS["failed"])), "backup_message")


@pytest.mark.parametrize("lang", LANGS)
def test_an_app_without_a_backup_shows_no_backup_line(lang: str) -> None:
    seen = shown(api_with(backup_at=None, backup_result=None, backup_message="", backup_ok_at=None), lang)
    for where in ("card", "page"):
        assert 'class="backup"' not in seen[where] and "Cadangan" not in seen[where] \
            and "Last backup" not in seen[where], where
    # an older swarmops, whose AppStatus has no backup fields at all, and the other app of the catalog
    assert 'class="backup"' not in shown(api_with(), lang)["card"]
    assert 'class="backup"' not in shown(api_with(**BACKUPS["failed"]), lang)["catalog"].split('data-app="awdi"')[1]


HOSTILE = {
    "a string that would overflow": {"backup_at": "1e400", "backup_result": "succeeded"},
    "a number as a string": {"backup_at": "1800000000", "backup_result": "succeeded"},
    "a bool": {"backup_at": True, "backup_result": "succeeded"},
    "a negative time": {"backup_at": -5, "backup_result": "failed"},
    "zero": {"backup_at": 0, "backup_result": "succeeded"},
    "NaN": {"backup_at": float("nan"), "backup_result": "succeeded"},
    "infinity": {"backup_at": float("inf"), "backup_result": "succeeded"},
    "past year 9999": {"backup_at": 1e300, "backup_result": "succeeded"},
    "an int of 400 digits": {"backup_at": 10**400, "backup_result": "succeeded"},
    "a list": {"backup_at": [AT], "backup_result": "succeeded"},
    "markup as the result": {"backup_at": AT, "backup_result": "<script>alert(1)</script>"},
    "another word as the result": {"backup_at": AT, "backup_result": "running"},
    "a result in capitals": {"backup_at": AT, "backup_result": "SUCCEEDED"},
    "a list as the result": {"backup_at": AT, "backup_result": ["succeeded"]},
    "no result": {"backup_at": AT, "backup_result": None},
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fields", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_backup_time_or_result_that_means_nothing_shows_no_line_and_no_500(lang: str, fields: dict[str, Any]) \
        -> None:
    info = app_info(status(**fields))
    assert info.backup_at is None or info.backup_result is None
    seen = shown(api_with(**fields), lang)
    for where in ("card", "page"):
        assert 'class="backup"' not in seen[where] and "<script>alert" not in seen[where], where
    assert "<script>alert" not in seen["catalog"] + seen["whole page"]


def test_an_odd_time_of_the_last_good_backup_is_none_and_the_failure_is_still_shown() -> None:
    for odd in ("yesterday", True, -1, float("nan"), 1e300):
        info = app_info(status(backup_at=AT, backup_result="failed", backup_ok_at=odd))
        assert (info.backup_at, info.backup_result, info.backup_ok_at) == (AT, "failed", None)
        assert 'data-result="failed"' in shown(api_with(backup_at=AT, backup_result="failed", backup_ok_at=odd),
                                               "en")["card"]


@pytest.mark.parametrize("odd", ["soon", True, -5, float("inf"), 1e300, 10**400])
def test_a_deploy_time_that_means_nothing_is_a_dash_not_a_500(odd: Any) -> None:
    assert app_info(status(deployed_at=odd)).deployed_at is None
    assert "<dt>Deployed</dt><dd>-</dd>" in shown(api_with(deployed_at=odd), "en")["card"]


def test_the_client_reads_swarmops_raw_json_backup_fields_without_raising(tmp_path: Path) -> None:
    """JSON as Python's parser takes it: 1e400 is infinity, NaN and Infinity are accepted."""
    body = ('[{"app": "a", "status": "Synced", "backup_at": 1e400, "backup_result": "succeeded"},'
            ' {"app": "b", "status": "Synced", "backup_at": NaN, "backup_result": "failed", "backup_ok_at": Infinity},'
            ' {"app": "c", "status": "Synced", "backup_at": "1e400", "backup_result": "<script>"},'
            ' {"app": "d", "status": "Synced", "backup_at": true, "backup_result": 1, "deployed_at": "soon"},'
            ' {"app": "e", "status": "Synced", "backup_at": -5, "backup_result": null, "backup_ok_at": {}},'
            ' {"app": "f", "status": "Synced", "backup_at": 1800000000, "backup_result": "failed",'
            ' "backup_message": "db-1.lab.internal", "backup_ok_at": 1799913600.5}]')
    token = tmp_path / "token"
    token.write_text("t")
    http = httpx.Client(base_url="http://swarmops", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, text=body, headers={"content-type": "application/json"})))
    got = {a.name: a for a in SwarmopsClient(http, token).apps()}
    for name in "abcde":
        assert (got[name].backup_at, got[name].backup_ok_at, got[name].deployed_at) == (None, None, None), name
    assert [got[name].backup_result for name in "abcde"] == ["succeeded", "failed", None, None, None]
    assert got["f"] == AppInfo("f", "Synced", backup_at=AT, backup_result="failed", backup_ok_at=1_799_913_600.5)

"""Polise in Bahasa Indonesia first and English second: the language chosen per reader, every text in the
catalogs, times in the office's time zone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from test_polise_web import FakeReadApi

from polise.i18n import accepted
from polise.web import create_app

ROOT = Path(__file__).parents[1]
LOCALE = ROOT / "polise" / "locale"
PAGES = ("/", "/apps/portal", "/news", "/contributions", "/apps/portal/docs/usage", "/privacy")
ERRORS = {"/apps/nosuch": 404, "/contributions?days=0": 422}
# words of the old English pages that an Indonesian page must not show
ENGLISH = ("Catalog", "Version", "Deployed", "Sign in", "Sign out", "Search", "Rate", "Report", "News",
           "Contributions", "Not found", "What changed", "Privacy", "none yet", "Your reports", "There is no app",
           "cannot use", "Synced", "Degraded", "Docs", "Address", "How to use", "Merges", "stars", "Language")


def client(**headers: str) -> TestClient:
    return TestClient(create_app(FakeReadApi(), "https://polise.example.go.id"), headers=headers)


def visible(html: str) -> str:
    """The page's text as a reader sees it: no style, no hidden raw words, no tags."""
    html = re.sub(r"<style>.*?</style>|<[^>]* hidden>[^<]*<[^>]*>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def strings(found: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (found,) if isinstance(found, str) else tuple(found)


def test_with_accept_language_id_every_page_and_error_is_indonesian() -> None:
    c = client(**{"Accept-Language": "id-ID,id;q=0.9,en;q=0.5"})
    for path in (*PAGES, *ERRORS):
        page = c.get(path)
        assert page.status_code == ERRORS.get(path, 200), path
        assert '<html lang="id">' in page.text and "Aplikasi" in page.text, path
        assert not [w for w in ENGLISH if w in visible(page.text)], path
    assert "Tidak ada aplikasi bernama" in c.get("/apps/nosuch").text
    assert "days: harus 1 atau lebih" in c.get("/contributions?days=0").text


def test_with_accept_language_en_every_page_and_error_is_english() -> None:
    c = client(**{"Accept-Language": "en-GB,en;q=0.8"})
    for path in (*PAGES, *ERRORS):
        page = c.get(path)
        assert page.status_code == ERRORS.get(path, 200), path
        assert '<html lang="en">' in page.text and "Apps" in page.text and "Berita" not in page.text, path
    assert "There is no app named" in c.get("/apps/nosuch").text


def test_without_a_language_polise_speaks_indonesian_and_names_the_languages_in_vary() -> None:
    page = client(**{"Accept-Language": "fr, de;q=0.5"}).get("/")
    assert '<html lang="id">' in page.text and "Accept-Language" in page.headers["vary"]
    assert '<html lang="id">' in client().get("/").text


def test_the_language_switch_sets_a_cookie_that_wins_over_the_header() -> None:
    c = client(**{"Accept-Language": "id"})
    assert 'href="/lang/en?next=/apps/portal"' in c.get("/apps/portal").text
    switched = c.get("/lang/en", params={"next": "/apps/portal"}, follow_redirects=False)
    assert (switched.status_code, switched.headers["location"]) == (303, "/apps/portal")
    assert 'lang="en"' in c.get("/apps/portal").text.split(">", 2)[1]
    assert c.get("/lang/en", params={"next": "//evil.example"}, follow_redirects=False).headers["location"] == "/"
    assert c.get("/lang/fr").status_code == 404


def test_accept_language_is_read_by_its_weights() -> None:
    assert accepted("en;q=0.3, id-ID, fr;q=0") == ["id-id", "en"]


def test_every_text_of_the_templates_and_sources_is_in_the_catalogs_with_an_indonesian_translation() -> None:
    method_map, options_map = parse_mapping_cfg((ROOT / "babel.cfg").open())
    found = {m[2] for m in extract_from_dir(str(ROOT), method_map, options_map, keywords={"N_": None, "_": None,
                                                                                            "gettext": None,
                                                                                            "ngettext": (1, 2)})}
    assert len(found) > 100
    ids = {m.id for m in read_po((LOCALE / "messages.pot").open("rb"))}
    assert found <= ids, f"run the catalog update (README): {found - ids}"
    for lang in ("id", "en"):
        po = read_po((LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb"))
        mo = read_mo((LOCALE / lang / "LC_MESSAGES" / "messages.mo").open("rb"))
        for key in found:
            message = po.get(key)
            assert message is not None and all(message.string if isinstance(message.string, tuple)
                                               else [message.string]), (lang, key)
            assert mo.get(key) is not None and strings(mo[key].string) == strings(message.string), \
                f"compile the catalogs (README): {lang} {key}"


@pytest.mark.parametrize(("lang", "shown"), [("id", "15 Januari 2027 15.00 WIB"),
                                             ("en", "15 January 2027 3:00\u202fPM WIB")])
def test_times_are_shown_in_the_offices_time_zone_wib(lang: str, shown: str) -> None:
    page = client(**{"Accept-Language": lang}).get("/apps/portal").text   # deployed 2027-01-15 08:00 UTC
    assert f'class="deployed">{shown}<' in page


def test_the_office_time_zone_is_a_setting() -> None:
    app = create_app(FakeReadApi(), "https://polise.example.go.id", time_zone="Asia/Jayapura")
    assert "15 Januari 2027 17.00 WIT" in TestClient(app).get("/apps/portal").text

"""Polise speaks Bahasa Indonesia first and English second. The reader's language is the `lang` cookie (the
switch on every page sets it), else the first of Accept-Language that Polise speaks, else Indonesian. Texts
come from Babel catalogs (locale/{id,en}/LC_MESSAGES/messages.mo, compiled from the .po files beside them);
times are shown in the office's time zone, formatted for the reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from starlette.exceptions import HTTPException
from starlette.requests import Request

LOCALES = ("id", "en")           # the first is the default
COOKIE = "lang"
NAMES = {"id": "Bahasa Indonesia", "en": "English"}
LOCALE_DIR = Path(__file__).with_name("locale")
OFFICE_ZONE = "Asia/Pontianak"
# Indonesia's zones as its people name them (CLDR names them only in Indonesian); others by their offset
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
CATALOGS: dict[str, NullTranslations] = {lang: Translations.load(str(LOCALE_DIR), [lang]) for lang in LOCALES}


class Text:
    """A message for a person, translated once their language is known (where it is raised, it is not).
    `str()` gives the English, for the log."""

    def __init__(self, msgid: str, **params: object) -> None:
        self.msgid, self.params = msgid, params

    def __str__(self) -> str:
        return self.msgid % self.params

    def __repr__(self) -> str:
        return f"Text({self.msgid!r})"

    def translated(self, translations: NullTranslations) -> str:
        return translations.gettext(self.msgid) % self.params


def N_(msgid: str, **params: object) -> Text:
    return Text(msgid, **params)


def message_of(exc: BaseException) -> Text | str:
    """An exception's message: a Text when it was written for people, else the string."""
    if isinstance(exc, Problem):
        return exc.text
    first = exc.args[0] if exc.args else ""
    return first if isinstance(first, Text) else str(exc)


class Problem(HTTPException):
    """An HTTP error whose message is said in the reader's language."""

    def __init__(self, status: int, text: Text) -> None:
        super().__init__(status, str(text))
        self.text = text


def accepted(header: str) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (q=0 means not wanted)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose(request: Request) -> str:
    cookie = request.cookies.get(COOKIE, "")
    if cookie in LOCALES:
        return cookie
    for tag in accepted(request.headers.get("accept-language", "")):
        primary = tag.split("-")[0]
        primary = "id" if primary == "in" else primary   # the old code for Indonesian
        if primary in LOCALES:
            return primary
    return LOCALES[0]


@dataclass(frozen=True)
class Reader:
    """Who reads a page: their language and the office's time zone."""

    lang: str
    zone: ZoneInfo

    @property
    def translations(self) -> NullTranslations:
        return CATALOGS[self.lang]

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def say(self, message: Text | str) -> str:
        return message.translated(self.translations) if isinstance(message, Text) else message

    def when(self, moment: float | datetime | None) -> str:
        """`15 Januari 2027 15.00 WIB`: no comma, so that "author, time" still splits at its last one."""
        if not moment:
            return "-"
        at = (datetime.fromtimestamp(moment, UTC) if isinstance(moment, int | float) else moment).astimezone(self.zone)
        return (f"{format_date(at, 'd MMMM y', locale=self.lang)} {format_time(at, 'short', locale=self.lang)} "
                f"{zone_name(self.zone, at)}")


def reader_of(request: Request) -> Reader:
    zone = getattr(request.app.state, "zone", None)
    return Reader(choose(request), zone if isinstance(zone, ZoneInfo) else ZoneInfo(OFFICE_ZONE))


def zone_name(zone: ZoneInfo, at: datetime) -> str:
    if zone.key in ZONE_NAMES:
        return ZONE_NAMES[zone.key]
    offset = at.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@pass_context
def _gettext(context: Context, message: str) -> str:
    reader: Reader = context["reader"]
    return reader.gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    reader: Reader = context["reader"]
    return reader.translations.ngettext(singular, plural, n)


@pass_context
def _say(context: Context, message: Any) -> str:
    reader: Reader = context["reader"]
    return reader.say(message)


@pass_context
def _when(context: Context, moment: float | datetime | None) -> str:
    reader: Reader = context["reader"]
    return reader.when(moment)


def install(env: Environment) -> None:
    """Jinja's i18n extension, its gettext reading the page's reader (a context value: one environment
    serves every request at once)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["say"] = _say
    env.filters["when"] = _when

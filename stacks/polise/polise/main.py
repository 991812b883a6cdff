"""The service's entry point (`uvicorn polise.main:app`): its settings come from the environment the
stack sets, so the image holds no configuration."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from joserfc.jwk import OKPKey
from psycopg.conninfo import make_conninfo

from polise import auth, i18n, reports, sso, ssotoken
from polise.sessions import MemorySessions
from polise.store import Store, StoreSessions, StoreUnavailable
from polise.swarmops_api import SwarmopsClient
from polise.web import TEMPLATES, create_app

log = logging.getLogger("polise")
FILE_EVERY = 30.0   # seconds between runs of the report filer


class SettingsError(Exception):
    """A setting is missing or wrong: the message names the variable and what to set."""


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: the Polise stack file sets it (see stacks/polise/README.md)")
    return value


def _file(env: Mapping[str, str], name: str) -> Path:
    path = Path(_need(env, name))
    if not path.is_file():
        raise SettingsError(f"{name}={path}: no such file; mount it as that Swarm secret")
    return path


@dataclass(frozen=True)
class Settings:
    swarmops_url: str
    swarmops_token_file: Path
    public_url: str
    session_secret: str
    dsn: str | None                       # None: no ratings or reports (POLISE_DB_HOST unset)
    oidc: auth.OidcSettings | None        # None: nobody can sign in (POLISE_OIDC_DISCOVERY_URL unset)
    forge: reports.ForgeSettings | None   # None: reports stay queued (POLISE_FORGE_KIND unset)
    owners: dict[str, set[str]]           # POLISE_OWNERS="portal=ana@x.go.id,budi@x.go.id;awdi=citra@x.go.id"
    sso_key: OKPKey                       # POLISE_SSO_KEY_FILE: signs the identity the SSO apps check
    time_zone: str = i18n.OFFICE_ZONE     # POLISE_TIME_ZONE: the office's, for every time shown
    retention: str = ""                   # POLISE_PRIVACY_RETENTION: the privacy page's "for how long"
    ops_webhook: str = ""                 # POLISE_OPS_WEBHOOK_URL: told of a report that can never be filed
    sso_domain: str = ""                  # POLISE_SSO_DOMAIN: the apps' domain; sign-in returns only under it

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        url = _need(env, "POLISE_SWARMOPS_URL")
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"POLISE_SWARMOPS_URL={url!r}: write it as http(s)://host:port")
        public = _need(env, "POLISE_PUBLIC_URL").rstrip("/")
        return cls(url, _file(env, "POLISE_SWARMOPS_TOKEN_FILE"), public,
                   _file(env, "POLISE_SESSION_SECRET_FILE").read_text().strip(), _dsn(env), _oidc(env, public),
                   _forge(env), _owners(env.get("POLISE_OWNERS", "")), _sso_key(env), _zone(env),
                   env.get("POLISE_PRIVACY_RETENTION", "").strip(), _webhook(env), _sso_domain(env, public))


def _sso_domain(env: Mapping[str, str], public_url: str) -> str:
    """The office's apps' domain: POLISE_SSO_DOMAIN, else the domain of Polise's own host
    (polise.apps.example.go.id -> apps.example.go.id)."""
    domain = env.get("POLISE_SSO_DOMAIN", "").strip().lower().strip(".")
    host = sso.host_name(urlsplit(public_url).netloc)
    if not domain and host and host[0].count(".") >= 2:
        domain = host[0].split(".", 1)[1]
    if not domain or not sso.host_name(domain) or "." not in domain:
        raise SettingsError(f"POLISE_SSO_DOMAIN={domain!r}: write the apps' domain, like apps.example.go.id")
    return domain


def _sso_key(env: Mapping[str, str]) -> OKPKey:
    try:
        return ssotoken.load_key(_file(env, "POLISE_SSO_KEY_FILE"))
    except ssotoken.SsoKeyError as e:
        raise SettingsError(f"POLISE_SSO_KEY_FILE={e}") from None


def _webhook(env: Mapping[str, str]) -> str:
    url = env.get("POLISE_OPS_WEBHOOK_URL", "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError("POLISE_OPS_WEBHOOK_URL: write it as http(s)://host/path (an incoming webhook)")
    return url


def _zone(env: Mapping[str, str]) -> str:
    zone = env.get("POLISE_TIME_ZONE", "").strip() or i18n.OFFICE_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"POLISE_TIME_ZONE={zone!r}: not a time zone; write it like Asia/Pontianak") from None
    return zone


def _owners(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        app, sep, people = part.partition("=")
        if not sep or not app.strip() or not people.strip():
            raise SettingsError(f"POLISE_OWNERS: {part!r} is not app=email,email (entries separated by ;)")
        out[app.strip()] = {p.strip() for p in people.split(",") if p.strip()}
    return out


def _dsn(env: Mapping[str, str]) -> str | None:
    if not env.get("POLISE_DB_HOST"):
        return None
    password = _file(env, "POLISE_DB_PASSWORD_FILE").read_text().strip() if env.get("POLISE_DB_PASSWORD_FILE") else None
    return make_conninfo(host=env["POLISE_DB_HOST"], port=env.get("POLISE_DB_PORT", "5432"),
                         dbname=env.get("POLISE_DB_NAME", "polise"), user=env.get("POLISE_DB_USER", "polise"),
                         password=password)


def _oidc(env: Mapping[str, str], public_url: str) -> auth.OidcSettings | None:
    if not env.get("POLISE_OIDC_DISCOVERY_URL"):
        return None
    return auth.OidcSettings(env["POLISE_OIDC_DISCOVERY_URL"], _need(env, "POLISE_OIDC_CLIENT_ID"),
                             _file(env, "POLISE_OIDC_CLIENT_SECRET_FILE"), f"{public_url}/auth/callback",
                             env.get("POLISE_OIDC_SCOPE", "").strip() or "openid profile email",
                             env.get("POLISE_OIDC_GROUPS_CLAIM", "").strip() or "groups")


def _forge(env: Mapping[str, str]) -> reports.ForgeSettings | None:
    kind = env.get("POLISE_FORGE_KIND", "")
    if not kind:
        return None
    if kind not in ("github", "gitea"):
        raise SettingsError(f"POLISE_FORGE_KIND={kind!r}: github or gitea")
    return reports.ForgeSettings(kind, _need(env, "POLISE_FORGE_API_URL"),  # type: ignore[arg-type]
                                 _file(env, "POLISE_FORGE_TOKEN_FILE").read_text().strip(),
                                 security_repo=env.get("POLISE_SECURITY_REPO") or None)


def _filer(store: Store, forge: reports.ForgeSettings, zone: str, webhook: str, stop: threading.Event) -> None:
    client = reports.ForgeClient(forge)
    notify = reports.OpsWebhook(webhook) if webhook else None
    while not stop.wait(FILE_EVERY):
        try:
            reports.file_due(store, client, forge, zone=ZoneInfo(zone), notify=notify)
        except StoreUnavailable as e:
            log.warning("reports not filed this time: %s", e)


def build(env: Mapping[str, str]) -> FastAPI:
    settings = Settings.from_env(env)
    store = Store(settings.dsn) if settings.dsn else None
    swarmops = SwarmopsClient.connect(settings.swarmops_url, settings.swarmops_token_file)
    app = create_app(swarmops, settings.public_url, store, settings.owners, settings.time_zone, settings.retention)
    auth.install(app, settings.oidc, settings.session_secret, settings.public_url.startswith("https://"),
                 StoreSessions(store) if store else MemorySessions())
    # the door asks swarmops with a short deadline: a slow answer must not hold up every app's requests
    door = SwarmopsClient.connect(settings.swarmops_url, settings.swarmops_token_file, timeout=3.0)
    sso.install(app, TEMPLATES, sso.Directory(door), settings.public_url, settings.sso_domain,
                settings.session_secret, ssotoken.Signer(settings.sso_key, settings.public_url))
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            try:
                store.migrate()
            except StoreUnavailable as e:   # the public pages serve anyway; the schema is made once it answers
                log.warning("Polise starts without its database: %s", e)
            if settings.forge is not None:
                threading.Thread(target=_filer, daemon=True,
                                 args=(store, settings.forge, settings.time_zone, settings.ops_webhook, stop)).start()
        yield
        stop.set()

    app.router.lifespan_context = lifespan
    return app


def __getattr__(name: str) -> FastAPI:   # `polise.main:app`, built when uvicorn asks for it
    if name == "app":
        return build(os.environ)
    raise AttributeError(name)

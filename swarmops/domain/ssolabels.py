"""Which routers of an app pass the shared SSO middleware, read from Traefik's service labels: one reader for
the live state (live.py, what Polise is told) and the render (render.py: an app with any such router gets,
on every service, the key that checks Polise's signed answer)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Traefik's labels, read as the policy reads them (keys lower-cased): an HTTP router's attribute, a chain
_ROUTER_LABEL = re.compile(r"^traefik\.http\.routers\.(?P<name>[^.]+)\.(?P<attr>rule|middlewares)$")
_CHAIN_LABEL = re.compile(r"^traefik\.http\.middlewares\.(?P<name>[^.]+)\.chain\.middlewares$")
LABEL_PROVIDERS = ("", "swarm", "docker")   # how a router names a middleware defined in service labels
SSO_PUBLIC_KEY, SSO_AUDIENCE = "SSO_PUBLIC_KEY", "SSO_AUDIENCE"   # what swarmops sets on those services


@dataclass(frozen=True)
class SsoKey:
    """What the render gives every service of an app with a router behind the shared middleware: Polise's
    public key ("" when the config has none: the apps then trust no token) and, as the audience, the app's
    name."""

    middleware: str
    public_key: str

    def environment(self, app: str) -> dict[str, str]:
        return {SSO_PUBLIC_KEY: self.public_key, SSO_AUDIENCE: app}


@dataclass(frozen=True)
class Routers:
    """An app's HTTP routers as its services' labels define them."""

    attrs: dict[str, dict[str, str]]   # router -> its rule and middlewares, from whichever service sets them
    owners: dict[str, set[str]]        # router -> the services whose labels name it
    chains: dict[str, list[str]]       # the app's chain middlewares -> what each names

    def behind(self, middleware: str) -> list[str]:
        """The routers that name `middleware` (exactly, as `name@provider`), directly or through the app's
        own chains (Traefik's labels of one provider share their middlewares)."""
        return sorted(name for name, attrs in self.attrs.items()
                      if _reaches(names(attrs.get("middlewares", "")), self.chains, middleware, set()))



def read_routers(labels_of: Mapping[str, Mapping[str, str]]) -> Routers:
    """service -> its labels, read as the policy reads them (keys lower-cased). A service with
    `traefik.enable=false` has no routers."""
    found = Routers({}, {}, {})
    for service, raw in labels_of.items():
        labels = {str(k).lower(): str(v) for k, v in raw.items()}
        if labels.get("traefik.enable", "").strip().lower() == "false":
            continue
        for key, value in labels.items():
            if m := _ROUTER_LABEL.match(key):
                found.attrs.setdefault(m["name"], {})[m["attr"]] = value
                found.owners.setdefault(m["name"], set()).add(service)
            elif m := _CHAIN_LABEL.match(key):
                found.chains[m["name"]] = names(value)
    return found


def names(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _reaches(refs: list[str], chains: dict[str, list[str]], middleware: str, seen: set[str]) -> bool:
    for ref in refs:
        if ref == middleware:
            return True
        name, _, provider = ref.partition("@")
        chain = name.lower()
        if provider in LABEL_PROVIDERS and chain in chains and chain not in seen:
            seen.add(chain)
            if _reaches(chains[chain], chains, middleware, seen):
                return True
    return False

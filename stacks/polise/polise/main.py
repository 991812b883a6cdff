"""The service's entry point (`uvicorn polise.main:app`): its settings come from the environment the
stack sets, so the image holds no configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from polise.swarmops_api import SwarmopsClient
from polise.web import create_app


class SettingsError(Exception):
    """A setting is missing or wrong: the message names the variable and what to set."""


@dataclass(frozen=True)
class Settings:
    swarmops_url: str
    swarmops_token_file: Path
    public_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: the Polise stack file sets it (see stacks/polise/README.md)")
            return value

        token_file = Path(need("POLISE_SWARMOPS_TOKEN_FILE"))
        if not token_file.is_file():
            raise SettingsError(f"POLISE_SWARMOPS_TOKEN_FILE={token_file}: no such file; mount the swarmops read "
                                "token as that Swarm secret")
        url = need("POLISE_SWARMOPS_URL")
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"POLISE_SWARMOPS_URL={url!r}: write it as http(s)://host:port")
        return cls(url, token_file, need("POLISE_PUBLIC_URL"))


def build(env: Mapping[str, str]) -> FastAPI:
    settings = Settings.from_env(env)
    return create_app(SwarmopsClient(settings.swarmops_url, settings.swarmops_token_file), settings.public_url)


def __getattr__(name: str) -> FastAPI:   # `polise.main:app`, built when uvicorn asks for it
    if name == "app":
        return build(os.environ)
    raise AttributeError(name)

"""Issue 27, item 4, on the lab: the status page signs people in through the lab's real OpenID Connect
provider (lab/oidc-provider: LemonLDAP::NG, its one client `polise` registered for this page's callback
here), and the config's `access:` rules decide from the provider's groups what each may do, per
environment. In Chromium: rtyler (group staff) syncs staging and may not promote to production (403,
production unchanged); dwho (group ops) promotes; the history names both."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.integration.browser import chromium, goto
from tests.integration.conftest import ROOT, GitRepo, Swarmops, commit_of, free_port, wait_for, web_app

OIDC_PORT = 8482   # a provider of this module's own (test_sso has 8481, test_polise_login the default)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """(the daemon's port, the provider's discovery URL), the provider up with that port's callback."""
    port = free_port()
    env = {**os.environ, "OIDC_PORT": str(OIDC_PORT), "OIDC_REDIRECT_URIS": f"http://127.0.0.1:{port}/auth/callback"}
    up = subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "up"], capture_output=True, text=True,
                        env=env, timeout=600)
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        yield port, f"http://127.0.0.1:{OIDC_PORT}/.well-known/openid-configuration"
    finally:
        subprocess.run(["bash", str(ROOT / "lab" / "oidc-provider"), "down"], env=env, capture_output=True, timeout=60)


def sign_in(context: BrowserContext, url: str, user: str) -> Any:
    page = context.new_page()
    goto(page, f"{url}/login")
    page.click("#oidc")
    expect(page.locator("input[name=user]")).to_be_visible()   # LemonLDAP::NG's own form
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", user)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text(f"user:{user}")   # back on the status page, signed in
    return page


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as res:
            return bool(res.status == 200)
    except OSError:
        return False


def history(swarmops: Swarmops, app: str) -> list[dict[str, Any]]:
    return list(swarmops.json("history", app))


def test_the_office_sign_in_decides_per_environment_who_may_sync_and_who_may_promote(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, provider: tuple[int, str]) -> None:
    port, discovery = provider
    url = f"http://127.0.0.1:{port}"
    repo: GitRepo = repo_factory()
    first = repo.commit("v1", web_app("v1"))
    repo.tag(first, "v1.0.0")
    app = swarmops.name("rbac")
    staging = f"{app}-staging"
    swarmops.extra.update(poll_interval="10m", http={
        "listen": f"127.0.0.1:{port}", "external_url": url, "oidc": {
            "discovery_url": discovery, "client_id": "polise",
            "client_secret_file": f"/run/oidc-provider-{OIDC_PORT}/polise.secret"}},
        access=[{"groups": ["staff"], "apps": [f"{app}/staging"], "may": ["sync", "promote"]},
                {"groups": ["ops"], "apps": ["*"], "may": ["*"]}])
    swarmops.add_app(app, repo.url, deploy_timeout="60s", environments={
        "staging": {"branch": "main"}, "production": {"name": app, "tags": "v*", "require_staging": True}})
    swarmops.run("sync", f"{app}/staging")
    swarmops.run("sync", f"{app}/production")
    second = repo.commit("v2 on main", {"web/index.html": "v2\n"})
    # the daemon's first checks would deploy it before anyone asks: paused, only an operator's sync moves it
    swarmops.run("pause", f"{app}/staging")

    log = swarmops.dir / "daemon.log"
    daemon = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: answers(f"{url}/login"), 60, "the daemon's HTTP server", log)
        with chromium() as browser:
            developer = sign_in(browser.new_context(), url, "rtyler")
            goto(developer, f"{url}/apps/{staging}")
            developer.click("#sync")
            wait_for(lambda: commit_of(lab, staging) == second and history(swarmops, staging)[0]["result"]
                     == "succeeded", 90, "staging synced by rtyler", log)
            assert history(swarmops, staging)[0]["actor"] == "user:rtyler"
            # production: not even readable for staff, and a promote posted by hand is refused
            goto(developer, f"{url}/apps/{staging}")
            csrf = developer.locator("input[name=csrf]").first.get_attribute("value")
            refused = developer.request.post(f"{url}/apps/{app}/promote", form={"csrf": str(csrf)},
                                             headers={"Origin": url}, max_redirects=0)
            assert refused.status == 403, refused.text()
            assert developer.request.get(f"{url}/apps/{app}").status == 403
            assert commit_of(lab, app) == first

            operator = sign_in(browser.new_context(), url, "dwho")
            goto(operator, f"{url}/apps/{app}")
            operator.click("#promote")
            wait_for(lambda: commit_of(lab, app) == second and history(swarmops, app)[0]["result"] == "succeeded",
                     90, "production promoted by dwho", log)
        assert history(swarmops, app)[0]["actor"] == "user:dwho"
        assert repo._git("ls-remote", str(repo.bare), "refs/tags/v1.0.1").split()[0] == second
        text = log.read_text()
        assert "user:rtyler signed in" in text and "promoted by user:dwho" in text
    finally:
        daemon.terminate()
        daemon.wait(timeout=90)

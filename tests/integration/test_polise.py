"""Issue 13 on the lab: swarmops deploys the proxy, PostgreSQL (built from Debian's postgresql-15) and Polise
(Debian's python3 with its libraries: lab/base-images python + stacks/polise/build-runtime) from the ops
repo, like any app, Polise under the restricted profile. Polise, on an app node behind the proxy, reads
the daemon's API with a read token and keeps its ratings in PostgreSQL on the db node. Issue 20 on the
same deployment (one per module): Polise's forms in Chromium, and a hostile commit end to end.

Sign-in through a real OpenID Connect provider and filing reports at a forge stand-in are tested on
loopback in stacks/polise/tests, and single sign-on in tests/integration/test_sso.py (the lab's tasks
cannot reach the provider on the host's loopback); here a session is made in Polise's database and its
cookie signed with the session secret the test gave the stack (the way Polise's own sign-in makes them)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from base64 import b64encode, urlsafe_b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import docker
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from itsdangerous import TimestampSigner
from playwright.sync_api import expect

from bench.lab import remove_stack
from tests.integration.browser import chromium, other_origin, through_loopback
from tests.integration.conftest import (
    MANAGER,
    MANAGER_IP,
    ROOT,
    GitRepo,
    Swarmops,
    free_node_port,
    free_port,
    lab_images,
    lab_tls,
    ops_stacks,
    run_lab_script,
    running_tasks,
    wait_for,
    web_app,
)

SESSION_SECRET = b"lab-session-secret-for-the-polise-test"
SSO_KEY = Ed25519PrivateKey.generate()   # the stack's sso_key secret: signs the answers to the proxy
USER = {"sub": "sub-ana", "name": "Ana", "email": "ana@example.go.id"}
# what a terminal, a page or a feed must never get raw (tab and newline are text)
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def session_cookie(lab: docker.APIClient, postgres: str, user: dict[str, str], csrf: str) -> str:
    """A session for `user` made in Polise's PostgreSQL as its sign-in makes one (polise.store.StoreSessions:
    the hash of the id), and Polise's session cookie for it, signed as its SessionMiddleware signs it."""
    sid = secrets.token_urlsafe(32)
    values = ", ".join("'" + v.replace("'", "''") + "'" for v in (
        hashlib.sha256(sid.encode()).hexdigest(), user["sub"], user["name"], user["email"]))
    task = running_tasks(lab, postgres, "postgres")[0]
    host = lab.inspect_node(task["NodeID"])["Description"]["Hostname"]
    node = docker.APIClient(base_url=f"unix:///run/swarm-lab/{host}.sock", timeout=60)
    run = node.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], [
        "psql", "-v", "ON_ERROR_STOP=1", "-d", "polise", "-c", "INSERT INTO sessions (id, sub, name, email, expires) "
        f"VALUES ({values}, now() + interval '1 hour')"], user="postgres")
    out = node.exec_start(run["Id"]).decode(errors="replace")
    assert node.exec_inspect(run["Id"])["ExitCode"] == 0, out
    session = {"sid": sid, "csrf": csrf}
    return TimestampSigner(SESSION_SECRET.decode()).sign(b64encode(json.dumps(session).encode())).decode()


class Polise:
    """Polise through the proxy's (the real Traefik's) host-mode port on an app node, by its Host name."""

    def __init__(self, node_ip: str, port: int, public_url: str) -> None:
        self.base, self.public = f"http://{node_ip}:{port}", public_url
        self.host = urllib.parse.urlsplit(public_url).netloc
        self.cookie = ""   # Polise's session cookie for USER, once Polise has made its tables

    def get(self, path: str, signed_in: bool = False) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path, headers={"Host": self.host, **(
            {"Cookie": self.cookie} if signed_in else {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def rate(self, app: str, stars: int) -> int:
        body = urllib.parse.urlencode({"target": "app", "stars": stars, "csrf": "lab-csrf"}).encode()
        req = urllib.request.Request(f"{self.base}/apps/{app}/rate", data=body, method="POST", headers={
            "Host": self.host, "Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.public})   # the form as Polise's own page (its POLISE_PUBLIC_URL) posts it
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return e.code


def row(page: str, app: str) -> str:
    """The catalog's card of one app."""
    return next((r for r in page.split('<li class="app')[1:] if f">{app}<" in r), "")


@dataclass
class Office:
    """The module's deployment: proxy, PostgreSQL, Polise and two sample apps, and the daemon running them."""

    lab: docker.APIClient
    swarmops: Swarmops
    site: Polise
    polise: str                  # Polise's app name
    samples: dict[str, GitRepo]  # the sample apps by name
    api: str                     # the daemon's HTTP API
    token: str                   # the read token Polise uses
    db_password: str
    log: Path                    # the daemon's output
    postgres: str                # the postgres stack's app name (Polise's sessions are in it)

    def api_get(self, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(self.api + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()


def new_repo(path: Path) -> GitRepo:
    path.mkdir()
    return GitRepo(path)


@pytest.fixture(scope="module")
def office(lab: docker.APIClient, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    lab_images("traefik", "haproxy", "python", "postgres")   # the proxy is the real Traefik
    run_lab_script(ROOT / "stacks" / "polise" / "build-runtime")
    root = tmp_path_factory.mktemp("polise")
    swarmops = Swarmops(dir=root, run_id=run_id)
    api_port, web_port, tls_port = free_port(), free_node_port(), free_node_port()
    swarmops.extra.update(http={"listen": f"{MANAGER_IP}:{api_port}"}, poll_interval="2s")
    swarmops.write()
    swarmops.run("keygen")
    proxy, postgres, polise = (swarmops.name(n) for n in ("proxy", "postgres", "polise"))
    # a name under the same site as every other app of the office (the threat the forms' origin check is for)
    host = f"{polise}.apps.example.go.id"
    public_url = f"http://{host}:{web_port}"
    token = swarmops.run("token", "create", "polise", "--scope", "read").stdout.strip().splitlines()[-1]
    db_password = b"polise-db-password-" + os.urandom(6).hex().encode()

    ops = new_repo(root / "ops")
    ops_stacks(ops, swarmops.state_dir, ["proxy", "postgres", "polise"], {
        "proxy": lab_tls().secrets,
        "postgres": {"postgres_password": b"superuser-" + os.urandom(6).hex().encode(),
                     "polise_db_password": db_password},
        "polise": {"swarmops_read_token": token.encode(), "session_secret": SESSION_SECRET,
                   "db_password": db_password, "oidc_client_secret": b"unused-here",
                   "forge_token": b"unused-here", "sso_key": SSO_KEY.private_bytes(
                       serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}},
        replace={   # what the office sets for itself; names of its own so that other tests' stacks don't clash
            "name: proxy\n": f"name: proxy-{swarmops.run_id}\n",
            "--providers.swarm.network=proxy\n": f"--providers.swarm.network=proxy-{swarmops.run_id}\n",
            "traefik.swarm.network=proxy\n": f"traefik.swarm.network=proxy-{swarmops.run_id}\n",
            "name: db-postgres\n": f"name: db-postgres-{swarmops.run_id}\n",
            "published: 80,": f"published: {web_port},", "published: 443,": f"published: {tls_port},",
            "http://swarmops.internal:9480": f"http://{MANAGER_IP}:{api_port}",
            # the proxy's way to Polise's /_sso/, by its task's address (by the service's VIP the lab's proxy got
            # no answer: 502/504)
            "SSO_POLISE_URL: http://polise_web:8080": f"SSO_POLISE_URL: http://tasks.{polise}_web:8080",
            "POLISE_DB_HOST: postgres_postgres": f"POLISE_DB_HOST: {postgres}_postgres",
            "https://polise.apps.example.go.id": public_url, "Host(`polise.apps.example.go.id`)": f"Host(`{host}`)",
            # plain HTTP on the lab's web port here (HTTPS and the SSO door: test_sso.py)
            ".entrypoints=websecure\n": ".entrypoints=web\n", ".tls=true\n": ".tls=false\n"})
    ops.commit("proxy, postgres and polise", {})
    samples = {name: new_repo(root / name) for name in (swarmops.name("timetable"), swarmops.name("rainfall"))}
    for name, repo in samples.items():
        repo.commit(f"First version of {name}", web_app(name))
        swarmops.add_app(name, repo.url)
    for name, stack, role in ((proxy, "proxy", "app"), (postgres, "postgres", "db")):
        swarmops.add_app(name, ops.url, stack=f"stacks/{stack}/stack.yml", role=role,
                         policy={"profile": "privileged"}, deploy_timeout="120s")
    swarmops.add_app(polise, ops.url, stack="stacks/polise/stack.yml", role="app", deploy_timeout="120s",
                     policy={"profile": "restricted", "allowed_hosts": [host],
                             "allowed_external": [f"proxy-{swarmops.run_id}", f"db-postgres-{swarmops.run_id}"]})
    log = root / "daemon.log"
    proc = None
    try:
        swarmops.run("sync", proxy)      # the networks Polise joins exist before it is deployed
        swarmops.run("sync", postgres)
        proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        node_ip = next(n["Status"]["Addr"] for n in lab.nodes() if n["Description"]["Hostname"] == "app2")
        site = Polise(node_ip, web_port, public_url)

        def catalog_lists_both() -> bool:
            code, page = site.get("/")
            # swarmops' own word, kept in the status span whichever language the page is in
            return code == 200 and all(re.search(r'class="status"[^>]*>Synced<', row(page, name)) for name in samples)

        wait_for(catalog_lists_both, 240, "Polise's catalog listing both sample apps as Synced", log)
        site.cookie = f"session={session_cookie(lab, postgres, USER, 'lab-csrf')}"
        yield Office(lab, swarmops, site, polise, samples, f"http://{MANAGER_IP}:{api_port}", token,
                     db_password.decode(), log, postgres)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=90)
        for app in swarmops.apps:
            remove_stack(lab, app["name"])


def test_swarmops_deploys_polise_which_lists_the_apps_shows_deployed_news_and_keeps_ratings_over_a_restart(
        office: Office) -> None:
    lab, swarmops, site, polise, log = office.lab, office.swarmops, office.site, office.polise, office.log
    tasks = running_tasks(lab, polise, "web")
    assert tasks, "Polise runs"
    spec = lab.inspect_service(f"{polise}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert not any("docker.sock" in str(m) for m in spec.get("Mounts", []))
    # the signing key the stack's secret holds: its public half is what /_sso/keys publishes
    raw = SSO_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    code, keys = site.get("/_sso/keys")
    assert code == 200 and [k["x"] for k in json.loads(keys)["keys"]] == [
        urlsafe_b64encode(raw).rstrip(b"=").decode()]

    # news: a commit appears once deployed, not before
    timetable = next(iter(office.samples))
    swarmops.run("pause", timetable)
    commit = office.samples[timetable].commit("Add the winter timetable\n\nDetails for ops.",
                                              {"web/index.html": "winter\n"})
    plan = swarmops.json("sync", timetable, "--dry-run")   # swarmops sees it, and deploys nothing
    assert plan["result"] == "planned" and commit in json.dumps(plan)
    for path in ("/news.json", "/news.atom", "/news"):
        code, body = site.get(path)
        assert code == 200 and "Add the winter timetable" not in body, path
    swarmops.run("resume", timetable)
    wait_for(lambda: "Add the winter timetable" in site.get("/news.json")[1], 120,
             "the deployed commit in Polise's news", log)
    entry = next(e for e in json.loads(site.get("/news.json")[1]) if e["title"] == "Add the winter timetable")
    assert entry["app"] == timetable and entry["commit"] == commit
    assert "Add the winter timetable" in site.get("/news.atom")[1]

    # ratings live in PostgreSQL: they survive a restart of the Polise service
    assert site.rate(timetable, 4) in (200, 303)
    assert "4.0 (1)" in row(site.get("/")[1], timetable)
    before = {t["ID"] for t in running_tasks(lab, polise, "web")}
    subprocess.run(["docker", "-H", MANAGER, "service", "update", "--force", "--detach", "--quiet", f"{polise}_web"],
                   check=True, capture_output=True)
    wait_for(lambda: (now := {t["ID"] for t in running_tasks(lab, polise, "web")}) and not now & before
             and site.get("/healthz")[0] == 200, 120, "a new Polise task after the restart", log)
    wait_for(lambda: "4.0 (1)" in row(site.get("/")[1], timetable), 60, "the rating after the restart", log)
    code, page = site.get(f"/apps/{timetable}", signed_in=True)
    assert code == 200 and "Ana" in page

    text = log.read_text()
    assert office.token not in text and office.db_password not in text
    for service in (f"{swarmops.name('postgres')}_postgres", f"{polise}_web"):   # nor in the services' own logs
        logs = subprocess.run(["docker", "-H", MANAGER, "service", "logs", "--raw", service], capture_output=True,
                              text=True, timeout=60)
        assert "ready" in logs.stdout + logs.stderr or "Uvicorn" in logs.stdout + logs.stderr, service
        assert office.db_password not in logs.stdout + logs.stderr and office.token not in logs.stdout + logs.stderr


def test_another_apps_page_cannot_post_polises_rating_and_report_forms_which_work_from_polises_own_page(
        office: Office, tmp_path: Path) -> None:
    """Another app of the office, same site (example.go.id), other origin: Chromium sends the citizen's
    SameSite=Lax cookie with its form posts, even carrying the session's CSRF token (as a leak would give
    it). Polise refuses them (403: a missing cookie would be 401) and stores nothing."""
    app = list(office.samples)[1]
    public = office.site.public
    polise_host = urllib.parse.urlsplit(public).hostname
    evil_host = f"evil-{office.swarmops.run_id}.apps.example.go.id"
    user = {"sub": "sub-budi", "name": "Budi", "email": ""}
    csrf = os.urandom(12).hex()
    node_ip = urllib.parse.urlsplit(office.site.base).hostname
    port = urllib.parse.urlsplit(public).port or 443
    with through_loopback(str(node_ip), port) as local, \
            chromium(f"--host-resolver-rules=MAP {polise_host}:{port} {local},MAP {evil_host} 127.0.0.1") as browser:
        context = browser.new_context(locale="en-US")   # the texts below are Polise's English ones
        cookie = session_cookie(office.lab, office.postgres, user, csrf)
        context.add_cookies([{"name": "session", "value": cookie, "url": public, "httpOnly": True, "sameSite": "Lax"}])
        page = context.new_page()
        # a Polise task just started by the restart above may answer once before its database pool is
        # open, and without the database a visitor is shown signed out (seen in a fresh-clone CI)
        for _ in range(15):
            page.goto(f"{public}/apps/{app}")
            if "Budi" in page.locator("header").inner_text():
                break
            time.sleep(1)
        expect(page.locator("header")).to_contain_text("Budi")   # signed in
        assert page.locator("#report input[name=csrf]").get_attribute("value") == csrf

        def auto_post(path: str, fields: dict[str, str]) -> str:
            inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
            return (f'<form id="f" method="post" action="{public}{path}">{inputs}</form>'
                    '<script>document.getElementById("f").submit()</script>')

        forms = {"rate": {"target": "app", "stars": "1", "comment": "forged from another page", "csrf": csrf},
                 "report": {"kind": "problem", "title": "forged report", "body": "from another page", "csrf": csrf}}
        with other_origin(tmp_path, {f"{k}.html": auto_post(f"/apps/{app}/{k}", v) for k, v in forms.items()}) as port:
            for form in forms:
                evil = context.new_page()
                with evil.expect_response(f"{public}/apps/{app}/{form}") as answer:
                    evil.goto(f"http://{evil_host}:{port}/{form}.html")
                assert answer.value.request.header_value("origin") == f"http://{evil_host}:{port}", form
                assert answer.value.status == 403, form
                evil.close()

        page.goto(f"{public}/apps/{app}")   # nothing stored: no rating of Budi's, no report
        expect(page.locator("form.rate .mine")).to_have_count(0)
        page.goto(f"{public}/me/reports")
        expect(page.locator("#reports .report")).to_have_count(0)

        page.goto(f"{public}/apps/{app}")   # the same forms from Polise's own page work
        page.check("form.rate[data-target=app] input[name=stars][value='4']")
        page.click("form.rate[data-target=app] button")
        expect(page.locator("form.rate[data-target=app] .mine")).to_have_text("your rating: 4")
        page.fill("#report input[name=title]", "The rainfall chart is empty")
        page.fill("#report textarea[name=body]", "Since this morning the chart shows no bars.")
        page.click("#report button")
        expect(page).to_have_url(f"{public}/me/reports")
        expect(page.locator("#reports .report")).to_have_count(1)
        expect(page.locator("#reports .report .state")).to_have_text("queued")


# A commit that tries the terminal (OSC 52 writes the clipboard, ESC[8m hides text, CSI as one C1 byte clears
# the screen) and forges records: the commit log's old separators (\x1e \x1f), git's %x00, a numstat line and
# a JSON entry. The author name's tail after \x1e is another person: a reader that splits the name on it would
# give that tail to someone else's commits.
FORGED_RECORD = ("\x1e\x1f%x00" + "a" * 40 + "\x1f\x1fAna Ops\x1fana@example.org\x1f2026-01-01T00:00:00+00:00"
                 "\x1fforged\x1f%x00\n999999\t0\tforged.py%x00")
FORGED_JSON = ('", "author": "Ana Ops", "email": "ana@example.org", "files": [{"path": "forged.py", "kind": '
               '"code", "added": 999999, "deleted": 0}]}, {"sha": "')
HOSTILE_TITLE = f"Fix\x1b]52;c;ZXZpbA==\x07 the \x1b[8mhidden\x1b[0m page\x9b2J{FORGED_JSON}"
HOSTILE_AUTHOR = ("Cat\x1b]52;c;ZXZpbA==\x07\x1b[8m\x1e\x1fAna Ops", "cat@example.org")


def shown(text: str) -> str:
    """How a page shows text from a repo: without its control characters."""
    return RAW_CONTROLS.sub("", text)


class Blocks(HTMLParser):
    """The texts of the `inner` elements of each `outer` element of a page (entities decoded)."""

    def __init__(self, page: str, outer: str, inner: tuple[str, ...]) -> None:
        super().__init__()
        self.outer, self.inner, self._in, self._open = outer, inner, "", False
        self.blocks: list[list[str]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == self.outer:
            self.blocks.append([])
            self._open = True
        elif tag in self.inner and self._open:
            self.blocks[-1].append("")
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = "" if tag == self._in else self._in
        self._open = self._open and tag != self.outer   # what follows the block (a footer) is not in it

    def handle_data(self, data: str) -> None:
        if self._in:
            self.blocks[-1][-1] += data


def git_view(repo: GitRepo) -> list[tuple[str, str, str, str, list[tuple[str, int, int]]]]:
    """Each commit of the branch, newest first, as git itself shows it: id, author and email (through the
    .mailmap), message, and each file's added and deleted lines."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo.work, check=True, capture_output=True, text=True).stdout

    out = []
    for sha in git("rev-list", "main").split():
        author, email, message = git("show", "-s", "--format=%aN%x00%aE%x00%B", sha).split("\0")
        files = [line.split("\t") for line in git("show", "--numstat", "--format=", sha).splitlines() if line]
        out.append((sha, author, email, message.strip(), [(p, int(a), int(d)) for a, d, p in files]))
    return out


def test_a_hostile_commit_is_deployed_and_shown_escaped_or_stripped_everywhere_with_no_forged_entry(
        office: Office) -> None:
    app = list(office.samples)[1]
    repo, swarmops, site = office.samples[app], office.swarmops, office.site
    sha = repo.commit(f"{HOSTILE_TITLE}\n\n{FORGED_RECORD}\n", {
        "web/index.html": "hostile\n",
        ".mailmap": "Dev Eloper <dev@example.org> <old@laptop.local>\n"}, author=HOSTILE_AUTHOR)
    wait_for(lambda: any(d["commit_sha"] == sha and d["result"] == "succeeded"
                         for d in swarmops.json("history", app)), 180, "the hostile commit deployed", office.log)

    shell = swarmops.run("history", app).stdout            # the operator's terminal: escapes, never the bytes
    assert not RAW_CONTROLS.search(shell)
    assert "\\x1b]52;c;ZXZpbA==\\x07 the \\x1b[8mhidden\\x1b[0m page\\x9b2J" in shell
    log = office.log.read_text()                           # journald's: JSON-escaped
    assert sha[:12] in log and not RAW_CONTROLS.search(log)

    code, body = office.api_get(f"/api/v1/apps/{app}/commits")
    assert code == 200 and not RAW_CONTROLS.search(body.decode())
    commits = json.loads(body)["commits"]
    assert [(c["sha"], c["author"], c["email"], c["message"], [(f["path"], f["added"], f["deleted"])
                                                              for f in c["files"]]) for c in commits] == git_view(repo)
    assert commits[0]["title"] == HOSTILE_TITLE and commits[0]["author"] == HOSTILE_AUTHOR[0]
    assert "Ana Ops" not in {c["author"] for c in commits}

    wait_for(lambda: sha in site.get("/news.json")[1], 60, "the hostile commit in Polise's news", office.log)
    for path in ("/", "/news", "/news.json", "/news.atom", "/contributions", "/contributions.json", f"/apps/{app}"):
        code, text = site.get(path)
        assert code == 200 and not RAW_CONTROLS.search(text), path

    entries = [(h2, p.rsplit(", ", 1)[0]) for h2, p in Blocks(site.get("/news")[1], "article", ("h2", "p")).blocks]
    assert sorted(e for e in entries if e[0].startswith(f"{app}: ")) == sorted([
        (f"{app}: {shown(HOSTILE_TITLE)}", shown(HOSTILE_AUTHOR[0])), (f"{app}: First version of {app}", "Dev Eloper")])
    assert "Ana Ops" not in {author for _, author in entries}

    people = {cells[0]: cells for cells in Blocks(site.get("/contributions")[1], "li", ("h2", "dd")).blocks if cells}
    assert set(people) == {"Dev Eloper", shown(HOSTILE_AUTHOR[0])}
    assert people[shown(HOSTILE_AUTHOR[0])][1:4] == ["1", "1", "2"]   # commits, code commits, code lines

    atom = ET.fromstring(site.get("/news.atom")[1].encode())          # a strict XML parser
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = {e.findtext("a:id", namespaces=ns): e for e in atom.iterfind("a:entry", ns)}
    hostile = feed[f"urn:polise:{app}:{sha}"]
    assert hostile.findtext("a:title", namespaces=ns) == f"{app}: {shown(HOSTILE_TITLE)}"
    assert hostile.findtext("a:author/a:name", namespaces=ns) == shown(HOSTILE_AUTHOR[0])
    assert hostile.findtext("a:content", namespaces=ns) == shown(f"{HOSTILE_TITLE}\n\n{FORGED_RECORD}")
    assert "Ana Ops" not in {e.findtext("a:author/a:name", namespaces=ns) for e in feed.values()}

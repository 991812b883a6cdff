"""Fixtures on the real lab: a six-node Swarm, a real registry, real git repos. Nothing is mocked.
The lab is brought up by scripts/test (lab/swarm-lab up); these fixtures fail, never skip, without it."""

from __future__ import annotations

import atexit
import contextlib
import datetime
import fcntl
import functools
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bench.lab import remove_stack as remove_stack
from swarmops.adapters import age as age_secrets

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab" / "swarm-lab"
MANAGER_IP = "198.18.0.1"
MANAGER = os.environ.get("LAB_DOCKER_HOST", "unix:///run/swarm-lab/manager.sock")
REGISTRY = os.environ.get("LAB_REGISTRY", "198.18.0.2:5000")
BASE_IMAGE = f"{REGISTRY}/base/busybox:1"
# a server that stops at once on SIGTERM, so updates do not wait for the grace period
SERVE = """CMD ["sh", "-c", "httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait"]"""


@pytest.fixture(scope="session")
def lab() -> docker.APIClient:
    try:
        api = docker.APIClient(base_url=MANAGER, timeout=30)
        if api.info()["Swarm"]["LocalNodeState"] != "active":
            raise RuntimeError("the manager is not in a swarm")
    except Exception as e:
        pytest.fail(f"the swarm lab is not up ({e}); run `bash scripts/test`, or `lab/swarm-lab up`")
    subprocess.run(["bash", str(ROOT / "lab" / "base-images")], check=True,
                   env={**os.environ, "DOCKER_HOST": MANAGER, "LAB_REGISTRY": REGISTRY})
    return api


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:6]


class GitRepo:
    """A bare repo (the remote) and a work clone that commits and pushes."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        self._git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self._git("init", "-q", "-b", "main", str(self.work), cwd=root)

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        out = subprocess.run(["git", "-c", "user.name=Dev Eloper", "-c", "user.email=dev@example.org", *args],
                             cwd=cwd or self.work, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def write(self, files: Mapping[str, str | None]) -> None:
        for rel, text in files.items():
            path = self.work / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def commit(self, message: str, files: Mapping[str, str | None], author: tuple[str, str] | None = None) -> str:
        """`author`: (name, email) instead of the work clone's Dev Eloper."""
        self.write(files)
        self._git("add", "-A")
        who = ("-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}") if author else ()
        self._git(*who, "commit", "-q", "-m", message)
        self._git("push", "-q", str(self.bare), "HEAD:refs/heads/main")
        return self._git("rev-parse", "HEAD")

    def push(self, commit: str, branch: str) -> None:
        """`commit` made the head of `branch` on the remote, as a release or a promotion by hand does."""
        self._git("push", "-q", "--force", str(self.bare), f"{commit}:refs/heads/{branch}")

    def tag(self, commit: str, name: str) -> None:
        """A lightweight tag pushed to the remote (where swarmops reads it)."""
        self._git("push", "-q", str(self.bare), f"{commit}:refs/tags/{name}")


def web_app(text: str = "v1", replicas: int = 1, extra: str = "") -> dict[str, str | None]:
    """A one-service app built from web/, serving `text`."""
    return {
        "web/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\n{SERVE}\n",
        "web/index.html": text + "\n",
        "docs/USAGE.md": "# Usage\n",
        "stack.yml": f"""version: "3.8"
services:
  web:
    build: ./web
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      update_config:
        monitor: 1s
{extra}""",
    }


@dataclass
class Swarmops:
    """A config on disk and the real CLI run against the lab."""

    dir: Path
    run_id: str
    apps: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.dir / "swarmops.yml"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    def name(self, base: str) -> str:
        name = f"{base}-{self.run_id}"
        REMOVALS.wait(name)   # an earlier test's stack of that name is gone before this test makes it again
        return name

    def configured(self) -> set[str]:
        """Every stack this test configured: in `apps:` and in its apps.d (`swarmops new` writes there), each
        environment of an app included."""
        entries: list[Any] = list(self.apps)
        apps_dir = self.extra.get("apps_dir")
        for file in sorted(Path(apps_dir).glob("*.yml")) if apps_dir else []:
            with contextlib.suppress(OSError, YAMLError):   # JSON is YAML
                entries.append(YAML(typ="safe").load(file.read_text()))
        names: set[str] = set()
        for entry in entries:
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                envs = entry.get("environments") or {}
                names |= {str((e or {}).get("name") or f"{entry['name']}-{env}") for env, e in envs.items()} \
                    if envs else {str(entry["name"])}
        return names

    def add_app(self, name: str, repo: str, **keys: Any) -> str:
        self.apps.append({"name": name, "repo": repo, **keys})
        self.write()
        return name

    def write(self) -> None:
        # each test's daemons take their own deploy lock, so that one test's killed daemon never holds up
        # the next test (test_drills takes one lock with two daemons on purpose)
        config = {"registry": REGISTRY, "registry_insecure": True, "state_dir": str(self.state_dir),
                  "docker_host": MANAGER, "poll_interval": "2s", "settle": "2s", "deploy_timeout": "90s",
                  "lock": {"name": f"swarmops-lock-{self.dir.name[-40:]}-{self.run_id}"},
                  **self.extra, "apps": self.apps}
        self.config.write_text(json.dumps(config, indent=2))   # JSON is YAML

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "swarmops", "--config", str(self.config), *args],
                             capture_output=True, text=True, timeout=600)
        if check and res.returncode != 0:
            raise AssertionError(f"swarmops {' '.join(args)} exited {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


@pytest.fixture
def swarmops(lab: docker.APIClient, run_id: str, tmp_path: Path) -> Iterator[Swarmops]:
    s = Swarmops(dir=tmp_path, run_id=run_id)
    yield s
    REMOVALS.remove(lab, s.configured())


class Removals:
    """The stacks of finished tests, removed. Beside other tests (an xdist worker) the next test starts while
    Swarm drains the old tasks and their networks; a name asked for again (`Swarmops.name`) and the end of
    the session wait for them. Alone on the lab (the exclusive phase) each test waits for its own."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="remove")
        self._pending: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def remove(self, lab: docker.APIClient, names: set[str]) -> None:
        with self._lock:
            started = [self._pending.setdefault(n, self._pool.submit(remove_stack, lab, n)) for n in sorted(names)]
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            self.wait_all(started)

    def wait(self, name: str) -> None:
        with self._lock:
            pending = self._pending.pop(name, None)
        if pending is not None:
            pending.result()

    def wait_all(self, futures: list[Future[None]] | None = None) -> None:
        with self._lock:
            todo = list(self._pending.values()) if futures is None else futures
            if futures is None:
                self._pending.clear()
        for future in todo:
            future.result()


REMOVALS = Removals()


@pytest.fixture(scope="session", autouse=True)
def _removals_finished(lab: docker.APIClient, run_id: str) -> Iterator[None]:
    yield
    REMOVALS.wait_all()
    # a test that made a service outside the swarmops fixture and left it keeps loading the lab's CPU
    left = sorted(s["Spec"]["Name"] for s in lab.services() if f"-{run_id}" in s["Spec"]["Name"])
    if left:   # scripts/test prints these files
        out = ROOT / "test-output" / f"left-on-lab-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt"
        with contextlib.suppress(OSError):
            out.write_text("".join(f"{name}\n" for name in left))


@pytest.fixture
def repo_factory(tmp_path: Path) -> Any:
    counter = iter(range(1000))

    def make() -> GitRepo:
        root = tmp_path / f"repo{next(counter)}"
        root.mkdir()
        return GitRepo(root)

    return make


def wait_for(predicate: Any, seconds: float, what: str, log: Path | Callable[[], str] | None = None) -> None:
    """Polls predicate; on timeout the error carries the tail of a daemon's log (a file, or a function that
    reads it), so a CI failure says why."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    text = log() if callable(log) else (log.read_text(errors="replace") if log and log.exists() else "")
    tail = "\n".join(text.splitlines()[-40:])
    raise AssertionError(f"timed out waiting for {what}" + (f"\ndaemon log tail:\n{tail}" if tail else ""))


def services(api: docker.APIClient, app: str) -> dict[str, dict[str, Any]]:
    found = api.services(filters={"label": f"com.docker.stack.namespace={app}"})
    return {s["Spec"]["Name"].removeprefix(f"{app}_"): s for s in found}


def running_tasks(api: docker.APIClient, app: str, service: str) -> list[dict[str, Any]]:
    tasks = api.tasks(filters={"service": f"{app}_{service}", "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def node_labels(api: docker.APIClient, node_id: str) -> dict[str, str]:
    labels: dict[str, str] = api.inspect_node(node_id)["Spec"].get("Labels") or {}
    return labels


def stack_image(svc: dict[str, Any]) -> str:
    """The image as the render wrote it, by its tag (a reused image is written pinned: tag@digest)."""
    image: str = svc["Spec"]["Labels"]["com.docker.stack.image"]
    return image.partition("@")[0]


SECRET = b"webhook-s3cret"


@dataclass
class Daemon:
    url: str
    app: str
    repo: GitRepo
    log: Path
    swarmops: Swarmops
    tokens: dict[str, str]

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                token: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body if method == "POST" else None, method=method,
                                     headers={**(headers or {}), **({"Authorization": f"Bearer {token}"}
                                                                    if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def push(self, commit: str, branch: str = "main", delivery: str | None = None, secret: bytes = SECRET,
             size: int = 0) -> tuple[int, bytes]:
        body = json.dumps({"ref": f"refs/heads/{branch}", "after": commit, "padding": "x" * size,
                           "repository": {"clone_url": self.repo.url}}).encode()
        sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return self.request("POST", "/hooks/github", body, {
            "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery or f"d-{time.monotonic_ns()}",
            "X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"})

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.request("GET", "/metrics", token=self.tokens["read"])
        total = 0.0
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def commit_of(lab: docker.APIClient, app: str) -> str:
    web = services(lab, app).get("web")
    return str(web["Spec"]["Labels"].get("io.swarmops.commit", "")) if web else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon(lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "webhook.secret").write_bytes(SECRET)
    port = free_port()
    swarmops.extra.update(http={"listen": f"127.0.0.1:{port}"}, poll_interval="10m",
                          webhooks={"secret_file": str(tmp_path / "webhook.secret")})
    repo: GitRepo = repo_factory()
    first = repo.commit("first", web_app("v1"))
    app = swarmops.add_app(swarmops.name("hook"), repo.url)
    tokens = {scope: swarmops.run("token", "create", scope, "--scope", scope).stdout.strip().splitlines()[-1]
              for scope in ("read", "deploy")}
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    d = Daemon(f"http://127.0.0.1:{port}", app, repo, log, swarmops, tokens)
    try:
        wait_for(lambda: commit_of(lab, app) == first, 150, "the first deploy", log)
        wait_for(lambda: swarmops.json("history", app)[0]["result"] == "succeeded", 60, "the first deploy to end",
                 log)
        yield d
    finally:
        proc.terminate()
        proc.wait(timeout=90)
    text = log.read_text()
    for token in tokens.values():
        assert token not in text   # tokens are never logged


def served_app(text: str, port: int) -> dict[str, str | None]:
    """web_app with a host-mode published port, for the prober."""
    files = web_app(text)
    files["stack.yml"] = str(files["stack.yml"]).replace(
        "    stop_grace_period: 1s\n",
        f"    stop_grace_period: 1s\n    ports:\n      - {{target: 8080, published: {port}, mode: host}}\n")
    return files


def meshed_app(text: str, port: int, slow_build: bool = False) -> dict[str, str | None]:
    files = web_app(text)
    files["stack.yml"] = f"""version: "3.8"
services:
  web:
    build: ./web
    stop_grace_period: 1s
    ports:
      - {{target: 8080, published: {port}, mode: host}}
    deploy:
      replicas: 2
      placement: {{max_replicas_per_node: 1}}
      update_config: {{parallelism: 1, order: stop-first, monitor: 1s}}
"""
    if slow_build:   # a build that takes a few seconds, so that a drill can strike inside it; the nonce keeps
        # the engine's build cache (shared by every test on the lab) from making it instant
        files["web/Dockerfile"] = str(files["web/Dockerfile"]).replace(
            "COPY index.html /www/index.html\n",
            f"COPY index.html /www/index.html\nRUN sleep 3 && echo {uuid.uuid4().hex[:12]} >/dev/null\n")
    return files


class Prober:
    """Requests the app every 100 ms on the host-mode port of each node that runs one of its tasks, as a
    load balancer in front of them would; a probe fails when no task answers."""

    def __init__(self, lab: docker.APIClient, app: str, port: int) -> None:
        self.lab, self.app, self.port = lab, app, port
        self.ok = self.failed = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._addrs: tuple[float, list[str]] = (0.0, [])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        wait_for(lambda: self.ok > 0, 30, f"{self.app} to answer the prober")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _addresses(self) -> list[str]:
        """Every node address that ran one of the app's tasks since the prober started, the current ones
        first: a load balancer keeps its backends and health-checks them, whatever the manager's API says
        while it restarts (it may list no running task for a moment)."""
        fetched, addrs = self._addrs
        if time.monotonic() - fetched > 1.0 or not addrs:
            with contextlib.suppress(Exception):   # the manager's API may be away in a drill: keep the last list
                tasks = self.lab.tasks(filters={"service": f"{self.app}_web", "desired-state": "running"})
                current = [node_address(self.lab.inspect_node(t["NodeID"])) for t in tasks
                           if t["Status"]["State"] == "running"]
                addrs = current + [a for a in addrs if a not in current]
                self._addrs = (time.monotonic(), addrs)
        return addrs

    def _answers(self, addr: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{addr}:{self.port}/", timeout=1) as resp:
                resp.read()
            return True
        except OSError:
            return False

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            addrs = self._addresses()
            if any(self._answers(a) for a in addrs):
                self.ok += 1
            else:
                self.failed += 1
                self.failures.append(f"{time.strftime('%H:%M:%S')} no answer from {addrs}")


def node_address(node: dict[str, Any]) -> str:
    """A node's address. Swarm may report a promoted manager's Status.Addr as 0.0.0.0 (seen on the lab in
    the failover drill); its ManagerStatus.Addr (host:port) then holds the address it advertises."""
    addr = str(node["Status"].get("Addr", ""))
    manager = node.get("ManagerStatus") or {}
    if addr in ("", "0.0.0.0") and manager.get("Addr"):
        return str(manager["Addr"]).rsplit(":", 1)[0]
    return addr


PORTS = Path(tempfile.gettempdir()) / "swarmops-lab-ports"
NODE_PORTS = (30000, 32767)   # the policy's default range, and below the nodes' ephemeral ports (32768 on)


def free_node_port() -> int:
    """A host port for a published service port. One counter, under a lock, for every test process of a
    run: ports drawn at random collided (two tests' services on one port) or fell among the ports the
    kernel hands to outgoing connections (docker-proxy: address already in use)."""
    with open(PORTS, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read().strip()
        last = int(text) if text.isdigit() else NODE_PORTS[0] + int(uuid.uuid4().int % 1000)
        port = last + 1 if last < NODE_PORTS[1] else NODE_PORTS[0]
        f.seek(0)
        f.truncate()
        f.write(str(port))
    return port


def lab_images(*names: str) -> None:
    """Base images made locally (lab/base-images), e.g. "python", "postgres"; a lock makes parallel callers
    wait for the one that builds."""
    run_lab_script(ROOT / "lab" / "base-images", *names)


def run_lab_script(script: Path, *args: str) -> str:
    """A lab or build script against the lab's engine and registry; its output is the error when it fails."""
    res = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "DOCKER_HOST": MANAGER, "LAB_REGISTRY": REGISTRY})
    assert res.returncode == 0, f"{script.name} {' '.join(args)} exited {res.returncode}:\n{res.stdout[-2000:]}" \
                                f"\n{res.stderr[-3000:]}"
    return res.stdout


def ops_stacks(repo: GitRepo, state_dir: Path, names: list[str], secrets: dict[str, dict[str, bytes]],
               replace: dict[str, str] | None = None) -> None:
    """This project's stacks/<name> copied into the ops team's repo as they would set them up: their registry
    in the Dockerfiles, `replace` applied to stack files and Dockerfiles, and the secrets each stack names
    age-encrypted for the lab daemon's key (`swarmops keygen` first)."""
    public = age_secrets.parse_recipient((state_dir / age_secrets.PUB_FILE).read_text(), "lab key")
    edits = {"registry.local:5000": REGISTRY, **(replace or {})}
    for name in names:
        dest = repo.work / "stacks" / name
        shutil.copytree(ROOT / "stacks" / name, dest, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        for path in (dest / "stack.yml", dest / "Dockerfile"):
            if path.is_file():
                text = path.read_text()
                for old, new in edits.items():
                    text = text.replace(old, new)
                path.write_text(text)
        for secret, value in secrets.get(name, {}).items():
            (dest / "secrets").mkdir(exist_ok=True)
            (dest / "secrets" / f"{secret}.age").write_bytes(age_secrets.encrypt(public, value))


LAB_DOMAIN = "apps.example.go.id"


@dataclass(frozen=True)
class OfficeCert:
    """A test CA and the wildcard certificate it signed for *.<domain> (and <domain>), PEM, also as files: the
    office's certificate as the proxy stack takes it (`secrets`, for ops_stacks), and the CA a client that
    must trust it loads (an SSL context, Chromium)."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    cert_file: Path
    key_file: Path
    ca_file: Path

    @property
    def secrets(self) -> dict[str, bytes]:
        """The proxy stack's TLS secrets (stacks/proxy/stack.yml)."""
        return {"tls_cert": self.cert_pem, "tls_key": self.key_pem}


def make_tls(domain: str, directory: Path) -> OfficeCert:
    """A new CA and a leaf for *.<domain> signed by it, valid from an hour ago for 30 days (P-256 keys)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"swarmops test CA {uuid.uuid4().hex[:8]}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}"), x509.DNSName(domain)]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    tls = OfficeCert(cert_pem=leaf.public_bytes(pem), ca_pem=ca.public_bytes(pem),
                  key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                  cert_file=directory / "cert.pem", key_file=directory / "key.pem", ca_file=directory / "ca.pem")
    tls.cert_file.write_bytes(tls.cert_pem)
    tls.key_file.write_bytes(tls.key_pem)
    tls.key_file.chmod(0o600)
    tls.ca_file.write_bytes(tls.ca_pem)
    return tls


@functools.cache
def lab_tls() -> OfficeCert:
    """The office's certificate on the lab, made once per test process: *.apps.example.go.id from a test CA.
    `lab_tls().secrets` are the proxy stack's secrets for ops_stacks; `lab_tls().ca_file` is the CA to trust."""
    directory = Path(tempfile.mkdtemp(prefix="swarmops-lab-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return make_tls(LAB_DOMAIN, directory)

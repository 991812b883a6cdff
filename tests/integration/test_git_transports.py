"""GitSource against real transports on loopback: an OpenSSH sshd, `git http-backend` behind a
Basic-auth web server, `git daemon` (read in-process), a closed port and a server that never answers.
No mocks."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from swarmops.adapters.git import GitSource
from swarmops.config.models import Auth
from swarmops.errors import SourceError

TOKEN = "tok-4f9c2e7a81d3-never-leak"
STACK = b"services:\n  web:\n    image: nginx:1.27\n"


def _git(*args: str, cwd: Path | None = None) -> str:
    argv = ["git", "-c", "user.name=Test Author", "-c", "user.email=author@example.test", *args]
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port}: {log.read_text(errors='replace')}")


@dataclass(frozen=True)
class Origin:
    bare: Path
    commit: str


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """A bare repo (under a project root served over http too) with one commit on `main`."""
    root = tmp_path_factory.mktemp("origin")
    work, bare = root / "work", root / "repo.git"
    _git("init", "-q", "-b", "main", str(work))
    (work / "stack").mkdir()
    (work / "stack" / "compose.yml").write_bytes(STACK)
    (work / "README").write_text("hello\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "Add the web stack\n\nbody line", cwd=work)
    _git("init", "-q", "--bare", str(bare))
    _git("push", "-q", str(bare), "main:main", cwd=work)
    return Origin(bare, _git("rev-parse", "HEAD", cwd=work))


def _assert_reads_everything(src: GitSource, commit: str, tmp: Path) -> None:
    assert src.head() == commit
    src.ensure(commit)
    assert src.read(commit, "stack/compose.yml") == STACK
    out = src.export(commit, "stack", tmp / "export")
    assert sorted(p.name for p in out.iterdir()) == ["compose.yml"]
    assert (out / "compose.yml").read_bytes() == STACK
    info = src.info(commit)
    assert (info.sha, info.author, info.email) == (commit, "Test Author", "author@example.test")
    assert info.title == "Add the web stack"


# --- ssh -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sshd:
    port: int
    host_key_line: str   # "ssh-ed25519 AAAA..." of the server
    other_key_line: str  # a host key the server does NOT have
    client_key: Path
    dir: Path

    def known_hosts(self, key_line: str | None, tmp: Path) -> Path:
        path = tmp / "known_hosts"
        path.write_text(f"[127.0.0.1]:{self.port} {key_line}\n" if key_line else "")
        return path


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not Path("/usr/sbin/sshd").exists():
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    d = tmp_path_factory.mktemp("sshd")
    host_line = _keygen(d / "host_ed25519")
    other_line = _keygen(d / "other_ed25519")
    _keygen(d / "client_ed25519")
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\nStrictModes no\n"
        "UsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nLogLevel VERBOSE\n")
    log = d / "sshd.log"
    with log.open("wb") as logf:
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                                stdout=logf, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield Sshd(port, host_line, other_line, d / "client_ed25519", d)
    finally:
        proc.terminate()
        proc.wait(10)


def _ssh_source(sshd: Sshd, origin: Origin, tmp: Path, host_key: str | None, key: Path | None = None) -> GitSource:
    auth = Auth(ssh_key_file=key or sshd.client_key, known_hosts_file=sshd.known_hosts(host_key, tmp))
    url = f"ssh://root@127.0.0.1:{sshd.port}{origin.bare}"
    return GitSource(url, "main", tmp / "cache", auth, timeout=20)


def _logins(sshd: Sshd) -> int:
    return (sshd.dir / "sshd.log").read_text(errors="replace").count("Accepted publickey for root")


def test_ssh_with_key_and_pinned_host_key_reads_the_branch(sshd: Sshd, origin: Origin, tmp_path: Path) -> None:
    before = _logins(sshd)
    _assert_reads_everything(_ssh_source(sshd, origin, tmp_path, sshd.host_key_line), origin.commit, tmp_path)
    assert _logins(sshd) > before  # really went through this sshd


@pytest.mark.parametrize("case", ["mismatched_host_key", "unknown_host", "client_key_not_authorised"])
def test_ssh_refuses_without_both_pinned_host_key_and_authorised_key(
        sshd: Sshd, origin: Origin, tmp_path: Path, case: str) -> None:
    host_key = {"mismatched_host_key": sshd.other_key_line, "unknown_host": None}.get(case, sshd.host_key_line)
    key = sshd.dir / "other_ed25519" if case == "client_key_not_authorised" else None
    src = _ssh_source(sshd, origin, tmp_path, host_key, key)
    before, known_before = _logins(sshd), (tmp_path / "known_hosts").read_text()
    with pytest.raises(SourceError, match="ls-remote") as err:
        src.head()
    assert "no answer" not in str(err.value)  # refused at once, not killed at the deadline
    with pytest.raises(SourceError, match="fetch"):
        src.ensure(origin.commit)
    assert _logins(sshd) == before
    assert not list((tmp_path / "cache" / "objects").rglob("*.pack"))
    assert (tmp_path / "known_hosts").read_text() == known_before  # never auto-accepted


def test_ssh_host_key_refusal_names_its_cause(sshd: Sshd, origin: Origin, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        _ssh_source(sshd, origin, tmp_path, sshd.other_key_line).head()
    assert "Host key verification failed" in str(err.value)


# --- http(s) with a token ----------------------------------------------------------------------------

@dataclass
class HttpGit:
    port: int
    root: Path
    users: list[str] = field(default_factory=list)  # REMOTE_USER of every authorised request

    def url(self, name: str = "repo.git", userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{name}"


def _handler(server: HttpGit) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _cgi(self) -> None:
            user, _, password = base64.b64decode(
                self.headers.get("Authorization", "Basic ")[6:]).decode().partition(":")
            if password != TOKEN:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            server.users.append(user)
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                   "REQUEST_METHOD": self.command, "QUERY_STRING": query, "PATH_INFO": path,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
            head, _, payload = out.partition(sep)
            headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for k, v in headers:
                if k.lower() != "status":
                    self.send_header(k, v.strip())
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _cgi

    return Handler


@pytest.fixture(scope="module")
def http_git(origin: Origin) -> Iterator[HttpGit]:
    state = HttpGit(0, origin.bare.parent)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _token_file(tmp: Path, token: str) -> Path:
    path = tmp / "token"
    path.write_text(token + "\n")
    return path


def test_http_with_token_file_reads_the_branch_as_token_user(
        http_git: HttpGit, origin: Origin, tmp_path: Path) -> None:
    src = GitSource(http_git.url(), "main", tmp_path / "cache",
                    Auth(token_file=_token_file(tmp_path, TOKEN)), timeout=20)
    served = len(http_git.users)
    _assert_reads_everything(src, origin.commit, tmp_path)
    assert set(http_git.users[served:]) == {"x-access-token"}


def test_http_ensure_does_not_fetch_a_commit_already_cached(http_git: HttpGit, origin: Origin, tmp_path: Path) -> None:
    src = GitSource(http_git.url(), "main", tmp_path / "cache",
                    Auth(token_file=_token_file(tmp_path, TOKEN)), timeout=20)
    src.ensure(origin.commit)
    served = len(http_git.users)
    src.ensure(origin.commit)
    assert src.read(origin.commit, "README") == b"hello\n"
    assert len(http_git.users) == served


def test_http_without_token_fails_fast_without_prompting(http_git: HttpGit, tmp_path: Path) -> None:
    src = GitSource(http_git.url(), "main", tmp_path / "cache", None, timeout=20)
    with pytest.raises(SourceError, match="ls-remote") as err:
        src.head()
    assert "terminal prompts disabled" in str(err.value)


def test_http_token_stays_out_of_errors_cache_argv_and_env(
        http_git: HttpGit, origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = tmp_path / "bin"
    spy.mkdir()
    real_git = shutil.which("git")
    (spy / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{tmp_path}/argv\nenv >>{tmp_path}/env\n'
                             f'exec {real_git} "$@"\n')
    (spy / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy}:{os.environ['PATH']}")
    cache = tmp_path / "cache"
    src = GitSource(http_git.url(), "main", cache, Auth(token_file=_token_file(tmp_path, TOKEN)), timeout=20)
    src.ensure(origin.commit)
    src.export(origin.commit, "", tmp_path / "export")
    with pytest.raises(SourceError) as missing:
        GitSource(http_git.url(), "no-such-branch", cache, Auth(token_file=tmp_path / "token"),
                  timeout=20).ensure("0" * 40)
    (tmp_path / "wrong").mkdir()
    wrong = _token_file(tmp_path / "wrong", "wrong-" + TOKEN)
    with pytest.raises(SourceError) as refused:
        GitSource(http_git.url(), "main", tmp_path / "c2", Auth(token_file=wrong), timeout=20).head()
    argv, env = (tmp_path / "argv").read_text(), (tmp_path / "env").read_text()
    assert "fetch" in argv and "ls-remote" in argv
    assert TOKEN not in argv and TOKEN not in env
    for err in (missing, refused):
        assert TOKEN not in str(err.value)
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert any(p.name == "config" for p in cached)
    assert all(TOKEN.encode() not in p.read_bytes() for p in cached)


@pytest.mark.parametrize("where", ["closed_port", "auth_refused", "repo_missing"])
def test_credentials_in_url_are_redacted_from_errors(http_git: HttpGit, tmp_path: Path, where: str) -> None:
    if where == "closed_port":
        url, secret = f"http://user:secret@127.0.0.1:{_free_port()}/repo.git", "secret"
    elif where == "auth_refused":
        url, secret = http_git.url(userinfo="user:secret"), "secret"
    else:
        url, secret = http_git.url("missing.git", userinfo=f"x-access-token:{TOKEN}"), TOKEN
    src = GitSource(url, "main", tmp_path / "cache", None, timeout=20)
    for call in (src.head, lambda: src.ensure("1" * 40)):
        with pytest.raises(SourceError) as err:
            call()
        assert secret not in str(err.value)
        assert "***@127.0.0.1" in str(err.value)


# --- git:// read in-process ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def git_daemon(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`git daemon` on loopback serving the origin's directory, with more refs than the branch we ask for
    and an empty repo beside it."""
    work = tmp_path_factory.mktemp("refs")
    _git("clone", "-q", str(origin.bare), str(work))
    _git("commit", "-q", "--allow-empty", "-m", "other", cwd=work)
    _git("push", "-q", "origin", "HEAD:refs/heads/main-old", "HEAD:refs/tags/v1", cwd=work)
    _git("init", "-q", "--bare", str(origin.bare.parent / "empty.git"))
    port = _free_port()
    log = work / "daemon.log"
    with log.open("wb") as logf:
        proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                                 f"--port={port}", f"--base-path={origin.bare.parent}", str(origin.bare.parent)],
                                stdout=logf, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_git_protocol_head_matches_git_ls_remote_without_spawning_git(
        git_daemon: str, origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = _git("ls-remote", f"{git_daemon}/repo.git")
    assert "refs/heads/main-old" in listed and "refs/tags/v1" in listed
    monkeypatch.setenv("PATH", "/nonexistent")   # no git binary to fall back on
    src = GitSource(f"{git_daemon}/repo.git", "main", tmp_path / "cache", None, timeout=20)
    assert src.head() == origin.commit
    other = GitSource(f"{git_daemon}/repo.git", "main-old", tmp_path / "cache", None, timeout=20).head()
    assert f"{other}\trefs/heads/main-old" in listed


@pytest.mark.parametrize("case", ["missing_branch", "empty_repo", "missing_repo", "closed_port"])
def test_git_protocol_failures_are_source_errors_in_plain_words(git_daemon: str, tmp_path: Path, case: str) -> None:
    url = {"empty_repo": f"{git_daemon}/empty.git", "missing_repo": f"{git_daemon}/nope.git",
           "closed_port": f"git://127.0.0.1:{_free_port()}/repo.git"}.get(case, f"{git_daemon}/repo.git")
    src = GitSource(url, "nope" if case == "missing_branch" else "main", tmp_path / "cache", None, timeout=5)
    with pytest.raises(SourceError) as err:
        src.head()
    expected = {"missing_repo": "repository not exported", "closed_port": "refused"}.get(case, "not found at")
    assert expected in str(err.value)
    assert "no answer" not in str(err.value)   # refused at once, not at the deadline


# --- a server that accepts and never answers ---------------------------------------------------------

@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as s:  # the kernel completes the handshakes; nobody ever reads or writes
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["http", "ssh", "git"])
def test_a_server_that_never_answers_gives_source_error_at_the_deadline(
        silent_port: int, tmp_path: Path, scheme: str) -> None:
    (tmp_path / "kh").write_text("")
    url = f"ssh://root@127.0.0.1:{silent_port}/x.git" if scheme == "ssh" else f"{scheme}://127.0.0.1:{silent_port}/x.git"
    src = GitSource(url, "main", tmp_path / "cache", Auth(known_hosts_file=tmp_path / "kh"), timeout=2)
    with pytest.raises(SourceError) as err:
        src.head()
    if scheme != "ssh":  # no deadline of git's own here: the adapter's kill (or socket deadline) ends it
        assert "no answer within 2s" in str(err.value)
    with pytest.raises(SourceError):
        src.ensure("2" * 40)

"""Reading a branch head over the git:// protocol in-process.

A change check runs once per app per interval; spawning `git ls-remote` for each one was most of the
idle daemon's CPU (fork, exec, git's start-up: ~2 ms of CPU a check against ~0.5 ms here). git:// is
the one transport simple enough to speak directly (pkt-lines over TCP, no auth); ssh:// and http(s)://
still go through the git binary, with its credential handling."""

from __future__ import annotations

import contextlib
import socket
import time
from urllib.parse import urlsplit

from swarmops.errors import SourceError

DEFAULT_PORT = 9418
MAX_ADVERTISEMENT = 16 << 20   # a refs advertisement larger than this is not a repo we serve


def is_git_url(url: str) -> bool:
    return url.startswith("git://")


def pkt_line(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


class _Reader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buf, self.total = sock, deadline, b"", 0

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.total += len(chunk)
            if self.total > MAX_ADVERTISEMENT:
                raise ValueError("the refs advertisement is larger than 16 MiB")
            self.buf += chunk

    def packet(self) -> bytes | None:
        """The next pkt-line's payload; None for a flush packet."""
        self._fill(4)
        try:
            size = int(self.buf[:4], 16)
        except ValueError:
            raise ValueError(f"not a git server reply (starts {self.buf[:4]!r})") from None
        if size == 0:
            self.buf = self.buf[4:]
            return None
        if size < 4:
            raise ValueError(f"bad pkt-line length {size}")
        self._fill(size)
        payload, self.buf = self.buf[4:size], self.buf[size:]
        return payload


def advertised_refs(url: str, timeout: float) -> dict[str, str]:
    """ref name -> sha, as `git ls-remote` over git:// would list them (protocol v0)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORT
    deadline = time.monotonic() + timeout
    request = pkt_line(b"git-upload-pack %s\0host=%s\0" % (parts.path.encode(), parts.netloc.encode()))
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 15)) as sock:
            sock.sendall(request)
            refs = _read_advertisement(_Reader(sock, deadline))
            with contextlib.suppress(OSError):   # no wants: the server ends the session (if still there)
                sock.sendall(b"0000")
            return refs
    except TimeoutError:
        raise SourceError(f"git ls-remote of {url}: no answer within {timeout:g}s") from None
    except EOFError:
        raise SourceError(f"git ls-remote of {url} failed: the server closed the connection "
                          "(is the repository exported by git daemon?)") from None
    except (OSError, ValueError) as e:
        raise SourceError(f"git ls-remote of {url} failed: {e}") from e


def _read_advertisement(reader: _Reader) -> dict[str, str]:
    refs: dict[str, str] = {}
    while (payload := reader.packet()) is not None:
        if payload.startswith(b"ERR "):
            raise ValueError(payload[4:].decode(errors="replace").strip())
        line = payload.split(b"\0", 1)[0].rstrip(b"\n").decode(errors="replace")
        sha, _, ref = line.partition(" ")
        if len(sha) == 40 and ref and ref != "capabilities^{}":
            refs[ref] = sha
    return refs

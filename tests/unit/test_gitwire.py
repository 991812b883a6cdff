"""The git:// reader against servers that are not git daemons (a loopback socket, no engine)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from swarmops.adapters.gitwire import advertised_refs, pkt_line
from swarmops.errors import SourceError


@pytest.fixture
def answering() -> Iterator[tuple[int, list[bytes]]]:
    """A server that sends whatever the test puts in the list, then closes."""
    replies: list[bytes] = []
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"".join(replies))

    threading.Thread(target=serve, daemon=True).start()
    yield int(srv.getsockname()[1]), replies
    srv.close()


def test_refs_are_read_from_the_advertisement_and_capabilities_are_ignored(
        answering: tuple[int, list[bytes]]) -> None:
    port, replies = answering
    a, b = "a" * 40, "b" * 40
    replies += [pkt_line(f"{a} HEAD\0multi_ack side-band-64k\n".encode()), pkt_line(f"{a} refs/heads/main\n".encode()),
                pkt_line(f"{b} refs/tags/v1\n".encode()), b"0000"]
    assert advertised_refs(f"git://127.0.0.1:{port}/r.git", 5) == {"HEAD": a, "refs/heads/main": a,
                                                                  "refs/tags/v1": b}


def test_a_web_server_on_the_git_port_is_named_not_a_git_server(answering: tuple[int, list[bytes]]) -> None:
    port, replies = answering
    replies.append(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(SourceError, match="not a git server reply"):
        advertised_refs(f"git://127.0.0.1:{port}/r.git", 5)


def test_a_reply_cut_short_says_the_server_closed_the_connection(answering: tuple[int, list[bytes]]) -> None:
    port, replies = answering
    replies.append(pkt_line(b"a" * 40 + b" refs/heads/main\n")[:20])
    with pytest.raises(SourceError, match="closed the connection"):
        advertised_refs(f"git://127.0.0.1:{port}/r.git", 5)

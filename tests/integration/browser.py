"""Headless Chromium for the page tests (Debian's chromium, driven by Playwright's Python package with
executable_path), and pages served from another origin to attack a page's forms from."""

from __future__ import annotations

import select
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.integration.conftest import free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
# the machine has no outside network: Chromium's own background connections are switched off
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output"


@contextmanager
def chromium(*args: str) -> Iterator[Browser]:
    """`args`: more Chromium switches, e.g. --host-resolver-rules for names the lab has no DNS for."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*ARGS, *args])
        try:
            yield browser
        finally:
            browser.close()


def goto(page: Page, url: str, tries: int = 4) -> None:
    """page.goto, again (up to `tries` times, a second apart) when Chromium gave up at the network level:
    the lab's engines add and remove interfaces all the time (a task starts, a network is made), and
    Chromium aborts a navigation in flight when they do (ERR_NETWORK_CHANGED, its own error page replacing
    the navigation, or its reload of the same address interrupting it: seen on /logout in a fresh-clone
    CI). An answer of any HTTP status is not retried, and a fault that lasts still fails the test."""
    for attempt in range(tries):
        try:
            page.goto(url)
            # Chromium's own error page in place of the answer, without an exception, is the same fault
            # (a fresh-clone CI's sign-out page was one)
            if not page.url.startswith("chrome-error://") or attempt == tries - 1:
                return
            time.sleep(1)
            continue
        except PlaywrightError as e:
            network = ("net::ERR_" in str(e) or "chrome-error://" in str(e)
                       or f"is interrupted by another navigation to \"{url}\"" in str(e))
            if not network or attempt == tries - 1:
                raise
            time.sleep(1)


def submit_again_on_network_change(page: Page, url: str, selector: str, tries: int = 3) -> None:
    """Open `url` and click `selector`, a form whose sending twice does what sending it once does (a
    sign-out), and again when Chromium replaced the answer with its own error page because the lab's
    interfaces changed meanwhile (ERR_NETWORK_CHANGED: a fresh-clone CI failed the sign-out so). Any page
    the server answered with is kept, whatever it says."""
    for attempt in range(tries):
        goto(page, url)
        page.click(selector)
        page.wait_for_load_state()
        if not page.url.startswith("chrome-error://") or attempt == tries - 1:
            return
        time.sleep(1)


@contextmanager
def through_loopback(target: str, port: int) -> Iterator[str]:
    """A TCP forwarder from a free loopback port to `target`:`port`; yields its `127.0.0.1:PORT`, for a
    host-resolver rule `MAP NAME:port 127.0.0.1:PORT` (Chromium rewrites the port too; the page's address,
    Host header and TLS name stay the lab's). Chromium aborts what it has in flight to any address but
    loopback whenever an interface changes, and the lab's engines change them all the time
    (ERR_NETWORK_CHANGED, failing page tests in fresh-clone CIs): a browser mapped here only ever talks to
    loopback, and the forwarder, which never looks at interfaces, carries the bytes on."""

    class Pipe(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection((target, port), timeout=30) as upstream:
                ends = [self.request, upstream]
                while True:
                    ready, _, _ = select.select(ends, [], [], 60)
                    if not ready:
                        return
                    for end in ready:
                        data = end.recv(65536)
                        if not data:
                            return
                        (upstream if end is self.request else self.request).sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        request_queue_size = 64   # Chromium opens many connections at once

    server = Server(("127.0.0.1", 0), Pipe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def other_origin(root: Path, pages: dict[str, str]) -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1 serving `pages` (file name -> HTML) from `root`; yields its port."""
    for name, html in pages.items():
        (root / name).write_text(html)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), 10, "the other origin's server")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False

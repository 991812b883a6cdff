"""systemd's notify protocol without a dependency: READY, WATCHDOG, STATUS and STOPPING datagrams."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("swarmops.daemon")


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec (it passes WATCHDOG_USEC), at most 10 s."""
    try:
        return max(0.5, min(10.0, int(os.environ["WATCHDOG_USEC"]) / 2e6))
    except (KeyError, ValueError):
        return 10.0


def notify(state: str) -> None:
    """sd_notify without a dependency: one datagram to $NOTIFY_SOCKET when systemd gave one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    addr = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(state.encode())
        except OSError as e:
            log.warning("cannot notify systemd: %s", e)

"""uvicorn in a thread of the daemon process: the event loop serves HTTP while reconciles run in the
scheduler's threads, so neither waits for the other."""

from __future__ import annotations

import logging
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("swarmops.http")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:   # the daemon owns the signals
        return None


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                limit_concurrency=200, timeout_keep_alive=5, lifespan="off")
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    def start(self, wait: float = 10.0) -> None:
        self.thread.start()
        for _ in range(int(wait / 0.05)):
            if self.server.started:
                return
            if not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        raise RuntimeError("the HTTP server did not start (is the address in use?)")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

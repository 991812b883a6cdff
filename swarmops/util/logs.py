"""Logging for the CLI and the daemon: JSON lines when not on a terminal (journald, shippers)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from swarmops.util.redact import redact_url


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": redact_url(record.getMessage())}
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
        base = f"{record.levelname.lower():7} {redact_url(record.getMessage())}"
        text = f"{base} {extra}" if extra else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup(level: str = "INFO", json_lines: bool | None = None, to_stdout: bool = True) -> None:
    """The daemon logs to stdout (journald); other commands to stderr, so their output stays parseable."""
    stream = sys.stdout if to_stdout else sys.stderr
    handler = logging.StreamHandler(stream)
    use_json = (not stream.isatty()) if json_lines is None else json_lines
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel("WARNING")
    logging.getLogger("urllib3").setLevel("WARNING")
    logging.getLogger("paramiko").setLevel("WARNING")

"""A real PostgreSQL for Polise's storage tests: Debian's server binaries, a fresh cluster in a temporary
directory, on loopback, run as the postgres user (the server refuses root)."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Postgres:
    dir: Path
    port: int
    bin: Path

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=polise dbname=postgres"

    def _as_postgres(self, *argv: str) -> None:
        res = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {res.stderr}{res.stdout}{log[-2000:]}")

    def start(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                          "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}", "-w", "start")

    def stop(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")


def _server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:   # scripts/setup installs it; a bare `pytest` on a new machine gets it here
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, capture_output=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="polise-pg-", dir="/var/tmp"))   # pytest's tmp is root's alone
    shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    pg = Postgres(root, port, _server_bin())
    pg._as_postgres(str(pg.bin / "initdb"), "-D", str(root / "data"), "-U", "polise", "--auth=trust", "-E", "UTF8")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dsn(postgres: Postgres) -> Iterator[str]:
    """A database of its own for each test."""
    import psycopg

    name = f"t{time.monotonic_ns()}"
    with psycopg.connect(postgres.dsn, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield f"host=127.0.0.1 port={postgres.port} user=polise dbname={name}"

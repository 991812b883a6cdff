"""The deploy lock, held in the Swarm itself: a Swarm config object (`swarmops-lock` by default) whose labels
say who holds it and until when. Creating a config with a taken name fails in the Raft store, so exactly
one daemon holds the lock across every manager; the holder renews the lease, and a lease that was not
renewed in time may be taken over (its holder died with its node or was SIGKILLed)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import docker

from swarmops.domain.render import STACK_NAMESPACE
from swarmops.errors import EngineError, LockError

log = logging.getLogger("swarmops.lock")
HOLDER, SINCE, EXPIRES = "io.swarmops.lock.holder", "io.swarmops.lock.since", "io.swarmops.lock.expires"
ATTEMPTS = 3


@dataclass(frozen=True)
class Holder:
    holder: str
    since: float
    expires: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"{self.holder} (since {since}, lease until {time.strftime('%H:%M:%S UTC', time.gmtime(self.expires))})"


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SwarmLock:
    def __init__(self, api: docker.APIClient, ttl: float, name: str, holder: str | None = None) -> None:
        self.api, self.ttl, self.name = api, ttl, name
        self.holder = holder or this_process()
        self._id: str | None = None
        self._since = 0.0

    def try_acquire(self) -> Holder | None:
        """Take the lock if it is free or its lease ran out; otherwise return who holds it. Bounded: a lock
        that keeps changing under us is reported as held, one that is not swarmops' is an error."""
        for _ in range(ATTEMPTS):
            now = time.time()
            labels = {HOLDER: self.holder, SINCE: f"{now:.3f}", EXPIRES: f"{now + self.ttl:.3f}"}
            try:
                self._id = self._engine(
                    lambda labels=labels: self.api.create_config(self.name, b"swarmops deploy lock", labels)["ID"])
                self._since = now
                return None
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    raise EngineError(f"cannot take the deploy lock {self.name}: {e.explanation or e}") from e
            current = self.current()
            if current is None:
                continue
            if current[2]:
                raise LockError(f"the Swarm config {self.name!r} is not swarmops' deploy lock: stack "
                                f"{current[2]!r} made it; remove that stack's config, or set lock.name to "
                                "another name")
            if current[1].expires >= now:
                return current[1]
            log.warning("the deploy lock of %s ran out; taking it over", current[1].describe())
            with contextlib.suppress(docker.errors.APIError):   # another daemon removed it first: create decides
                self.api.remove_config(current[0])
        current = self.current()
        return current[1] if current else Holder("?", 0.0, time.time())

    def current(self) -> tuple[str, Holder, str] | None:
        """The lock config's id, its holder, and the stack that made it ('' for swarmops' own)."""
        found = self._engine(lambda: self.api.configs(filters={"name": self.name}))
        for cfg in found:
            if cfg["Spec"]["Name"] == self.name:
                labels = cfg["Spec"].get("Labels") or {}
                stack = labels.get(STACK_NAMESPACE) or ("?" if HOLDER not in labels else "")
                return cfg["ID"], Holder(labels.get(HOLDER, "?"), _float(labels.get(SINCE)),
                                         _float(labels.get(EXPIRES))), stack
        return None

    def renew(self) -> bool:
        """Extend the lease; False when the lock is no longer ours (it was taken over)."""
        current = self.current()
        if current is None or current[0] != self._id or current[1].holder != self.holder:
            return False
        cfg = self._engine(lambda: self.api.inspect_config(current[0]))
        spec = dict(cfg["Spec"])
        spec["Labels"] = {**(spec.get("Labels") or {}), EXPIRES: f"{time.time() + self.ttl:.3f}"}
        # docker-py has no update_config; the Engine API has (labels are the one mutable part of a config)
        url = self.api._url("/configs/{0}/update", current[0])
        try:
            resp = self._engine(lambda: self.api._post_json(url, data=spec,
                                                            params={"version": cfg["Version"]["Index"]}))
            self.api._raise_for_status(resp)
        except docker.errors.APIError:   # changed or removed under us: no longer ours
            return False
        return True

    def release(self) -> None:
        current = self.current()
        if current is not None and current[0] == self._id:
            try:
                self.api.remove_config(current[0])
            except docker.errors.APIError as e:
                log.warning("cannot release the deploy lock: %s", e.explanation or e)
        self._id = None

    def _engine(self, call: Any) -> Any:
        try:
            return call()
        except docker.errors.APIError:
            raise
        except (docker.errors.DockerException, OSError) as e:
            raise EngineError(f"cannot reach the Docker engine for the deploy lock: {e}") from e


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0

"""Deploy hooks as one-off Swarm jobs through the Engine API (the 20.10 CLI refuses job modes in a stack
file: ruling 33). The spec comes ready from the render; this adapter only names its secrets' and configs'
ids, creates it, waits for its one task to end, keeps the tail of its log, and removes it."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import docker
import requests

from swarmops.domain.hooks import LOG_TAIL, JobResult
from swarmops.domain.render import APP_LABEL, HOOK_LABEL
from swarmops.errors import DependencyError, EngineError, HookError, Interrupted

log = logging.getLogger("swarmops.jobs")
ENDED = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
MAX_LINE = 300   # characters of one log line kept


class SwarmJobs:
    POLL = 0.5   # seconds between two reads of the job's task

    def __init__(self, api: docker.APIClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.clock = clock

    def check(self, app: str, spec: Mapping[str, Any]) -> None:
        self._resolved(spec)

    def _resolved(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The spec with the ids of the secrets and configs it names (DependencyError for a missing one)."""
        resolved = copy.deepcopy(dict(spec))
        container = resolved["TaskTemplate"]["ContainerSpec"]
        for ref in container.get("Secrets") or []:
            ref["SecretID"] = self._id("secret", ref["SecretName"], self.api.secrets)
        for ref in container.get("Configs") or []:
            ref["ConfigID"] = self._id("config", ref["ConfigName"], self.api.configs)
        return resolved

    def run(self, app: str, spec: Mapping[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
        spec = self._resolved(spec)
        self._remove_leftovers(app, spec["Labels"].get(HOOK_LABEL, ""))
        started = self.clock()
        try:
            service_id = str(self.api.create_service(spec["TaskTemplate"], name=spec["Name"], labels=spec["Labels"],
                                                     mode=spec["Mode"])["ID"])
        except docker.errors.APIError as e:
            if e.is_client_error() and e.status_code != 409:   # the Engine refuses the spec: not a passing fault
                raise HookError(f"the Engine refused the job of hook {spec['Labels'].get(HOOK_LABEL)}: "
                                f"{e.explanation or e}", state="refused") from e
            raise EngineError(f"Docker engine: cannot create job {spec['Name']}: {e.explanation or e}") from e
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            raise EngineError(f"Docker engine: cannot create job {spec['Name']}: {e}") from e
        try:
            state, exit_code, message = self._wait(service_id, started + timeout, cancel)
            seconds = self.clock() - started
            return JobResult(state, exit_code, round(seconds, 3), self._log_tail(service_id), message)
        finally:
            self._remove(service_id)

    def _wait(self, service_id: str, deadline: float, cancel: threading.Event) -> tuple[str, int | None, str]:
        """(state, exit code, Docker's words) once the job's task ended, or `timeout` at the deadline."""
        last: dict[str, Any] = {}
        while True:
            tasks = self._engine("read the job's task", lambda: self.api.tasks(filters={"service": service_id}))
            if tasks:
                last = max(tasks, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")))
            status = last.get("Status") or {}
            words = str(status.get("Err") or status.get("Message") or "")
            if status.get("State") in ENDED:
                return str(status["State"]), (status.get("ContainerStatus") or {}).get("ExitCode"), words
            if self.clock() > deadline:
                return "timeout", None, f"task {status.get('State', 'not created')}: {words}".rstrip(": ")
            if cancel.wait(self.POLL):
                raise Interrupted("the daemon stopped while a hook was running; its job was removed")

    def _log_tail(self, service_id: str) -> tuple[str, ...]:
        try:
            chunks = self.api.service_logs(service_id, stdout=True, stderr=True, tail=LOG_TAIL, follow=False,
                                           is_tty=False)
            text = b"".join(chunks).decode("utf-8", "replace")
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            return (f"(the log could not be read: {getattr(e, 'explanation', None) or e})",)
        lines = ["".join(ch for ch in line if ch.isprintable() or ch == "\t")[:MAX_LINE] for line in text.splitlines()]
        return tuple(lines[-LOG_TAIL:])

    def _id(self, kind: str, name: str, lister: Callable[..., list[dict[str, Any]]]) -> str:
        found = self._engine(f"look up {kind} {name}", lambda: lister(filters={"name": name}))
        for obj in found:
            if obj["Spec"]["Name"] == name:
                return str(obj["ID"])
        raise DependencyError(f"the hook needs {kind} {name}, which does not exist in the Swarm; create it, or "
                              "remove it from the hook")

    def _remove_leftovers(self, app: str, hook: str) -> None:
        """A job a previous process left behind (it stopped while the hook ran)."""
        found = self._engine("list hook jobs", lambda: self.api.services(
            filters={"label": [f"{APP_LABEL}={app}", f"{HOOK_LABEL}={hook}"]}))
        for svc in found:
            log.warning("removing hook job %s left by an earlier run", svc["Spec"]["Name"])
            self._remove(svc["ID"])

    def _remove(self, service_id: str) -> None:
        try:
            self.api.remove_service(service_id)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            log.warning("cannot remove hook job %s (the next run of the hook removes it): %s", service_id, e)

    def _engine(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except docker.errors.APIError as e:
            raise EngineError(f"Docker engine: cannot {what}: {e.explanation or e}") from e
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            raise EngineError(f"Docker engine: cannot {what}: {e}") from e

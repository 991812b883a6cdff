"""One error tree. Every message is written for the operator: what, where, and what to do. Structured
facts travel in `fields` (file, key, app, commit, exit code ...) for the log and the API; the message is
what the CLI prints as one line. Translations from a library's error keep it as the cause (`from e`)."""

from __future__ import annotations

from typing import Any

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """A key path as the operator reads it: services.web.ports[0].published."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


class SwarmopsError(Exception):
    """Root of every error swarmops raises on purpose. The CLI prints it as one line."""

    exit_code = 1
    #: a fault of the infrastructure, not of the commit: retried with backoff, never marks the commit failed
    transient = False

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields: dict[str, Any] = fields

    @property
    def kind(self) -> str:
        return type(self).__name__


class ConfigError(SwarmopsError):
    """The swarmops config or an apps.d file is wrong."""

    exit_code = 2


class StackError(SwarmopsError):
    """An app's stack file cannot be loaded or rendered."""


class InterpolationError(StackError):
    """A value of the stack file cannot be interpolated; `path` is the key path of the value (empty when the
    error comes from substitute() alone)."""

    def __init__(self, path: KeyPath, message: str, variable: str | None = None) -> None:
        self.path = path
        self.variable = variable
        self.reason = message
        key = dotted(path)
        super().__init__(f"{key}: {message}" if path else message, key=key, variable=variable)


class PolicyError(SwarmopsError):
    """The rendered stack breaks the app's policy; nothing was built or deployed."""


class SourceError(SwarmopsError):
    """The git source could not be read (unreachable, missing branch, timeout)."""

    transient = True


class BuildError(SwarmopsError):
    """An image build failed; the message carries the build's own error."""


class RegistryError(SwarmopsError):
    """The registry refused or did not answer."""

    transient = True


class DeployError(SwarmopsError):
    """`docker stack deploy` failed or the services did not converge."""


class EngineError(DeployError):
    """The Docker engine did not answer or refused an API call."""

    transient = True


class DependencyError(DeployError):
    """The stack needs something another stack provides (an external network, secret or config) that
    does not exist yet: retried, since the stack that provides it may be deploying right now."""

    transient = True


class ConvergenceError(DeployError):
    """The services did not converge on the new spec."""


class HookError(DeployError):
    """A deploy hook (a Swarm job) failed, timed out or could not run. `fields`: hook, kind, exit_code,
    state, log_tail; the caller reads them, never the message."""


class BackupError(DeployError):
    """A snapshot, listing or restore job of the backup store failed. `fields`: action, state, exit_code,
    log_tail. A snapshot that fails stops the deploy before its migration runs."""


class Interrupted(DeployError):
    """The daemon is shutting down and the grace period is over."""


class ProcessTimeout(SwarmopsError):
    """A child process (git, the docker CLI) gave no answer in time."""

    transient = True

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g}s", seconds=seconds)
        self.seconds = seconds


class StateError(SwarmopsError):
    """The state store under state_dir cannot be read or written."""


class LockError(SwarmopsError):
    """The deploy lock's config in the Swarm is not swarmops' own (a stack made one of that name)."""

    exit_code = 2


class UnknownAppError(SwarmopsError):
    """An app named on the command line is not in the config."""

    exit_code = 2


class BusyError(SwarmopsError):
    """The app is being reconciled right now; the request can be repeated when that ends."""

    transient = True


class SecretError(SwarmopsError):
    """A secret cannot be encrypted or decrypted."""


class PromotionError(SwarmopsError):
    """A promotion between an app's environments cannot be made."""


class SignInError(SwarmopsError):
    """The status page's sign-in through the OpenID Connect provider did not complete; the page says why
    (never with the provider's codes or tokens)."""


class TokenError(SwarmopsError):
    """A token cannot be created, found or revoked."""


class BootstrapError(SwarmopsError):
    """A new app repo cannot be made."""


class WebhookError(SwarmopsError):
    """A delivery that cannot be used (bad signature, not a push, malformed)."""

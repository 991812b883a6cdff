"""One error tree. Every message is written for the operator: what, where, and what to do."""

from __future__ import annotations


class SwarmopsError(Exception):
    """Root of every error swarmops raises on purpose. The CLI prints it as one line."""

    exit_code = 1
    #: a fault of the infrastructure, not of the commit: retried with backoff, never marks the commit failed
    transient = False


class ConfigError(SwarmopsError):
    """The swarmops config or an apps.d file is wrong."""

    exit_code = 2


class StackError(SwarmopsError):
    """An app's stack file cannot be loaded or rendered."""


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

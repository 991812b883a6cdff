"""swarmops: a GitOps deployer for Docker Swarm."""

__version__ = "0.1.0"

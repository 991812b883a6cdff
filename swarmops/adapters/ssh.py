"""Facts about a node over SSH (paramiko): key auth only, host keys checked against the operator's
known_hosts, an unknown or changed key refused, every step with a timeout."""

from __future__ import annotations

import shlex
import time

import paramiko

from swarmops.config.models import NodeEntry, SshSettings
from swarmops.domain.nodecheck import NodeFacts

_SCRIPT = """
f='{{{{.ServerVersion}}}}|{{{{.Swarm.LocalNodeState}}}}|'; f="$f"'{{{{.Swarm.NodeID}}}}|{{{{.DockerRootDir}}}}'
docker info --format "$f" 2>/dev/null || echo '|||'
root=$(docker info --format '{{{{.DockerRootDir}}}}' 2>/dev/null)
df -Pk "${{root:-/}}" | awk 'NR==2{{print $4}}'
code=$(curl -s -o /dev/null -m 3 -w '%{{http_code}}' {registry_url} 2>/dev/null); echo "${{code:-000}}"
date +%s.%N
"""


def _connect(entry: NodeEntry, ssh: SshSettings) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(ssh.known_hosts_file))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(entry.address, port=entry.port or ssh.port, username=ssh.user,
                   key_filename=str(ssh.key_file) if ssh.key_file else None, timeout=ssh.timeout,
                   banner_timeout=ssh.timeout, auth_timeout=ssh.timeout, look_for_keys=False, allow_agent=False)
    return client


def gather(entry: NodeEntry, ssh: SshSettings, registry_url: str) -> NodeFacts:
    """One SSH session per node; any failure becomes the node's error in plain words."""
    try:
        client = _connect(entry, ssh)
    except paramiko.BadHostKeyException:
        return NodeFacts(entry.name, entry.address, error=f"host key of {entry.address} CHANGED: refused (check "
                                                          f"{ssh.known_hosts_file}; never auto-accepted)")
    except paramiko.SSHException as e:
        text = str(e)
        if "not found in known_hosts" in text:
            text = f"host key of {entry.address} unknown: add it to {ssh.known_hosts_file} (never auto-accepted)"
        return NodeFacts(entry.name, entry.address, error=f"ssh: {text}")
    except TimeoutError:
        return NodeFacts(entry.name, entry.address, error=f"no answer from {entry.address} within {ssh.timeout:g}s")
    except OSError as e:
        return NodeFacts(entry.name, entry.address, error=f"cannot connect to {entry.address}: {e.strerror or e}")
    try:
        return _facts(client, entry, ssh, registry_url)
    finally:
        client.close()


def _facts(client: paramiko.SSHClient, entry: NodeEntry, ssh: SshSettings, registry_url: str) -> NodeFacts:
    script = _SCRIPT.format(registry_url=shlex.quote(registry_url))
    start = time.time()
    try:
        _, stdout, _ = client.exec_command(script, timeout=ssh.timeout * 3)
        lines = stdout.read().decode(errors="replace").splitlines()
    except (paramiko.SSHException, TimeoutError) as e:
        return NodeFacts(entry.name, entry.address, error=f"commands on {entry.address} timed out or failed: {e}")
    end = time.time()
    lines += [""] * (4 - len(lines))
    version, state, node_id, root = [*lines[0].split("|"), "", "", "", ""][:4]
    try:
        skew: float | None = float(lines[3]) - (start + end) / 2
    except ValueError:
        skew = None
    return NodeFacts(entry.name, entry.address, docker_version=version.strip(), swarm_state=state.strip(),
                     node_id=node_id.strip(), docker_root=root.strip(),
                     free_bytes=int(lines[1]) * 1024 if lines[1].strip().isdigit() else None, clock_skew=skew,
                     registry_status=lines[2].strip()[:3])

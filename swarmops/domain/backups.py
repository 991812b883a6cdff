"""The jobs of the backup store on a volume of the db node, as Engine API specs (pure). A snapshot is
`pg_dump` (or `mariadb-dump`) gzipped into `<volume>/<app>/<id>.sql.gz`; a restore feeds it back in one
transaction; a listing prints the app's snapshots; a prune keeps the newest backups of one database. When a
scheduled backup is due is decided here too (`backup_due`). Each runs as a one-off Swarm job on the db node with the
lab's postgres or mariadb base image; the database password reaches it as the app's own Swarm secret,
read from its file inside the job: never in the spec, the environment or a command line."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from swarmops.domain.live import LiveStack
from swarmops.domain.migrations import Database, Snapshot
from swarmops.domain.render import APP_LABEL, HOOK_LABEL

Action = Literal["snapshot", "restore", "list", "prune"]
VolumeAction = Literal["volume-backup", "volume-restore", "volume-list", "volume-prune"]
SECRET_FILE = "swarmops-db-password"    # under /run/secrets in the job
MOUNT = "/backups"
# a migration's snapshot names its commit; a backup (scheduled, or `swarmops backup run`) names its database
BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-backup-[A-Za-z_][A-Za-z0-9_-]{0,62}$")
# a volume's archive in the S3 store names its volume (the stack file's key)
VOLUME_ID = re.compile(r"^\d{8}T\d{6}Z-volume-[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SNAPSHOT_ID = re.compile(rf"^\d{{8}}T\d{{6}}Z-[0-9a-f]{{1,40}}$|{BACKUP_ID.pattern}|{VOLUME_ID.pattern}")
NAME_LIMIT = 63   # characters of a Swarm service name
LISTED = 18   # snapshots a listing prints, newest first (a job's log keeps 20 lines)

# Debian's postgresql-15 keeps its binaries out of PATH (the base image sets none)
_PASSWORD = f'PATH="/usr/lib/postgresql/15/bin:$PATH"; pw="$(cat /run/secrets/{SECRET_FILE})"'
# The server is the one the app's stack names, maybe one of the app's own making: it may not ask the client
# for a local file (LOAD DATA LOCAL), and a restore replays what it said with the client's shell escapes
# and file commands off (--sandbox). The password, the app's own secret, goes in MYSQL_PWD, never into the
# option file: a newline in it would add options there (init-command, plugin-dir), a `#` would cut it short
_MY_CNF = 'printf "[client]\\nloose-local-infile=0\\n" > /tmp/my.cnf'
_DUMP = {
    "postgres": f'{_PASSWORD}; PGPASSWORD="$pw" pg_dump --clean --if-exists --no-owner --no-privileges '
                '-h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -f "$tmp" "$DB_NAME"',
    "mysql": f'{_PASSWORD}; {_MY_CNF}; MYSQL_PWD="$pw" '
             'mariadb-dump --defaults-extra-file=/tmp/my.cnf --single-transaction --add-drop-table --no-tablespaces '
             '-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_NAME" > "$tmp"',
}
_LOAD = {
    "postgres": f'{_PASSWORD}; gzip -dc "$f" | PGPASSWORD="$pw" psql -q -v ON_ERROR_STOP=1 --single-transaction '
                '-h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d "$DB_NAME"',
    "mysql": f'{_PASSWORD}; {_MY_CNF}; gzip -dc "$f" | MYSQL_PWD="$pw" '
             'mariadb --defaults-extra-file=/tmp/my.cnf --sandbox -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_NAME"',
}
_D = "[0-9]"
_SCRIPTS = {
    # dumped to a hidden file first: a dump cut short never takes the snapshot's name
    "snapshot": 'set -eu; umask 077; d="/backups/$APP"; mkdir -p "$d"; tmp="$d/.$ID.sql"; '
                'trap \'rm -f "$tmp" "$tmp.gz"\' EXIT; {dump}; gzip -f "$tmp"; mv "$tmp.gz" "$d/$ID.sql.gz"; '
                'echo "snapshot $ID: $(wc -c < "$d/$ID.sql.gz") bytes"',
    "restore": 'set -eu; f="/backups/$APP/$ID.sql.gz"; [ -f "$f" ] || { echo "no snapshot $ID of $APP in the '
               'store"; exit 2; }; gzip -t "$f"; {load}; echo "restored $ID"',
    # the newest $KEEP of this database's backups stay: the glob's fixed shape matches no migration snapshot
    # (<time>-<commit>) and no other database's backup (a name that ends like this one is longer)
    # the glob itself, newest first, regular files only: what the app's own jobs may have left in its
    # volume (a directory, a link, a name with a glob in it) is never listed, expanded or followed
    "prune": 'set -eu; cd "/backups/$APP" 2>/dev/null || exit 0; export LC_ALL=C; set --; '
             f'for f in {_D * 8}T{_D * 6}Z-backup-"$DB".sql.gz; do '
             '[ -f "$f" ] && [ ! -L "$f" ] && set -- "$f" "$@"; done; n=0; '
             'for f in "$@"; do n=$((n + 1)); '
             'if [ "$n" -gt "$KEEP" ]; then rm -f -- "$f"; echo "removed ${f%.sql.gz}"; fi; done; '
             'echo "kept $(( n < KEEP ? n : KEEP )) of $n backups of $DB"',
    "list": f'cd "/backups/$APP" 2>/dev/null || exit 0; ls -1 | grep "\\.sql\\.gz$" | sort -r | head -n {LISTED} | '
            'while read -r f; do echo "snapshot $(stat -c "%s %Y" "$f") ${f%.sql.gz}"; done',
}


def job_name(app: str, action: Action | VolumeAction) -> str:
    """`<app>_swarmops-<action>`; a long app name is cut and given a digest (Swarm names are at most 63)."""
    suffix = f"_swarmops-{action}"
    if len(app) + len(suffix) <= NAME_LIMIT:
        return app + suffix
    return f"{app[:NAME_LIMIT - len(suffix) - 9]}-{hashlib.sha256(app.encode()).hexdigest()[:8]}{suffix}"


def store_job(action: Action, app: str, image: str, volume: str, constraint: str, db: Database | None = None,
              snapshot: str = "", keep: int = 0) -> dict[str, Any]:
    """The ServiceSpec of one store job. `constraint`: the db node's placement (node.labels.role == db).
    A prune names its database and `keep` but gets no secret or network: it only removes files."""
    env = {"APP": app, "ID": snapshot}
    script = _SCRIPTS[action]
    if action == "prune" and db is not None:
        env |= {"DB": db.name, "KEEP": str(keep)}
        db = None
    container: dict[str, Any] = {"Image": image, "User": "0", "Command": ["sh", "-c"],
                                 "Mounts": [{"Type": "volume", "Source": volume, "Target": MOUNT,
                                             "ReadOnly": action == "list"}]}
    template: dict[str, Any] = {"RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
                                "Placement": {"Constraints": [constraint]}}
    if db is not None:
        env |= {"DB_HOST": db.host, "DB_PORT": str(db.port), "DB_USER": db.user, "DB_NAME": db.name}
        script = script.replace("{dump}", _DUMP[db.engine]).replace("{load}", _LOAD[db.engine])
        container["Secrets"] = [{"SecretName": db.secret, "File": {"Name": SECRET_FILE, "UID": "0", "GID": "0",
                                                                   "Mode": 0o400}}]
        template["Networks"] = [{"Target": n} for n in db.networks]
    container["Args"] = [script]
    container["Env"] = [f"{k}={v}" for k, v in sorted(env.items())]
    template["ContainerSpec"] = container
    labels = {APP_LABEL: app, HOOK_LABEL: f"swarmops-{action}"}
    return {"Name": job_name(app, action), "Labels": labels, "TaskTemplate": template,
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}}


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot as the store holds it."""

    id: str
    size: int          # bytes, gzipped
    modified: float    # when it was written (epoch seconds)


def parse_listing(lines: tuple[str, ...]) -> list[SnapshotFile]:
    """Each `snapshot SIZE MTIME ID` line of a listing job's log, in the order printed (newest first)."""
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "snapshot" and parts[1].isdigit() and parts[2].isdigit():
            found.append(SnapshotFile(parts[3], int(parts[1]), float(parts[2])))
    return found


@dataclass(frozen=True)
class BackupRun:
    """One backup of an app's databases, as recorded: `ok` only when every database was dumped and pruned."""

    app: str
    trigger: str                       # schedule, manual
    started: float                     # epoch seconds
    ok: bool
    message: str                       # what failed, or the snapshots taken and where
    snapshots: tuple[Snapshot, ...]
    error_kind: str = ""               # BackupError, EngineError ... when not ok
    missed: str = ""                   # the scheduled time it ran late for (missed_slot), ISO 8601; "" when on time


def backup_id(now: datetime, database: str) -> str:
    """Sortable by time like a migration's snapshot, and told apart from one: it names its database."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-backup-{database}"


def last_slot(now: datetime, schedule: str) -> datetime:
    """The latest time at or before `now` the daily `schedule` (HH:MM, UTC) names."""
    hour, minute = (int(part) for part in schedule.split(":"))
    slot = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def backup_due(now: datetime, schedule: str, last_run: datetime | None) -> bool:
    """Whether an app's backup runs now: its last run (any result, scheduled or by hand) is older than the
    schedule's latest time. A time missed while the daemon was down is so at its start, once: the run it
    makes then is newer than that time. An app never backed up is due at once."""
    return last_run is None or last_run < last_slot(now, schedule)


MISSED_AFTER = timedelta(minutes=10)   # later than this past its time, a scheduled run was missed, not just late


def missed_slot(now: datetime, schedule: str, last_run: datetime | None) -> datetime | None:
    """The scheduled time a due run comes too late for (more than MISSED_AFTER: the daemon was down, or the
    app's deploys held it off tick after tick), which the office is told of; None when the run is on time or
    not due. An app never backed up has missed nothing: its first run is at once."""
    if last_run is None or not backup_due(now, schedule, last_run):
        return None
    slot = last_slot(now, schedule)
    return slot if now - slot > MISSED_AFTER else None


S3_SECRET_FILE = "swarmops-s3"   # under /run/secrets in a volume job: {"access_key": ..., "secret_key": ...}
DATA = "/data"                   # where a volume job mounts the app's volume
# a volume job shares the node with the apps: a core and 512 MiB at most (its archive's entries are held)
JOB_LIMITS = {"NanoCPUs": 1_000_000_000, "MemoryBytes": 512 * 2**20}


@dataclass(frozen=True)
class S3Target:
    """An app's bucket in the S3 store, as a volume job reaches it."""

    endpoint: str
    network: str
    region: str
    bucket: str
    max_bytes: int = 20 * 2**30


def volume_archive_id(now: datetime, volume: str) -> str:
    """Sortable by time like a database's backup, and names its volume (the stack file's key)."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-volume-{volume}"


def volume_job(action: VolumeAction, app: str, image: str, program: str, target: S3Target, secret: str,
               constraint: str, source: str = "", archive: str = "", volume: str = "", keep: int = 0
               ) -> dict[str, Any]:
    """The ServiceSpec of one job of the S3 store: `program` (the Python of adapters/swarm/s3job.py) run by the
    base/python image, with the app's backup account as a Swarm secret and the store's network. A backup or a
    restore mounts the app's Swarm volume `source` at /data (read-only for a backup) on the node `constraint`
    names (the one its running task is on: a local volume lives there); a listing and a prune touch no volume
    and run on any node ("" constraint)."""
    env = {"ACTION": action.removeprefix("volume-"), "APP": app, "BUCKET": target.bucket, "S3_ENDPOINT":
           target.endpoint, "S3_REGION": target.region, "ID": archive, "VOLUME": volume, "KEEP": str(keep),
           "MAX_BYTES": str(target.max_bytes)}
    container: dict[str, Any] = {
        "Image": image, "User": "0", "Command": ["python3", "-c"], "Args": [program],
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Secrets": [{"SecretName": secret, "File": {"Name": S3_SECRET_FILE, "UID": "0", "GID": "0", "Mode": 0o400}}]}
    if source:
        container["Mounts"] = [{"Type": "volume", "Source": source, "Target": DATA,
                                "ReadOnly": action == "volume-backup", "VolumeOptions": {"NoCopy": True}}]
    template = {"ContainerSpec": container, "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
                "Resources": {"Limits": JOB_LIMITS},
                "Placement": {"Constraints": [constraint] if constraint else []},
                "Networks": [{"Target": target.network}]}
    labels = {APP_LABEL: app, HOOK_LABEL: f"swarmops-{action}"}
    return {"Name": job_name(app, action), "Labels": labels, "TaskTemplate": template,
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}}


def volume_nodes(live: LiveStack, source: str) -> set[str]:
    """The nodes a running task mounting the Swarm volume `source` is on: where that local volume lives."""
    services = {svc.id for svc in live.services.values() if svc.managed and not svc.job and any(
        m.get("Type") == "volume" and m.get("Source") == source
        for m in ((svc.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Mounts") or [])}
    return {t.node_id for t in live.tasks
            if t.service_id in services and t.node_id and t.desired == "running" and t.state == "running"}

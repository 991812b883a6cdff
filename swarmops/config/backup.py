"""The backups an apps.d entry asks for (issue 25): its databases and volumes, their schedule, and the
app's bucket of the S3 store volume archives go to."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from swarmops.config.fields import Strict, once

# a database a backup names, as its DB_NAME: letters, digits, '_' and '-' (it is part of a file name in the store)
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
SCHEDULE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


# a volume a backup names, as the stack file's key under volumes: (the Swarm volume is <app>_<key>)
VOLUME_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3StoreSettings(Strict):
    """The S3 store backups of volumes go to (MinIO on the minio node): a bucket per app, each reached with
    the app's own backup account (BackupS3), so that one app's job never holds another app's keys."""

    endpoint: str = Field(pattern=r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/?$")   # as a job reaches it
    network: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")        # the attachable overlay it is on
    region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    # the bytes of files one archive may hold: a volume beyond it fails its backup rather than fill the
    # disk of the node the job runs on (the archive is made in the job before it is sent)
    max_archive_bytes: int = Field(20 * 2**30, ge=2**20)


class BackupS3(Strict):
    """An app's bucket in the S3 store, and the files on the manager holding the keys of its backup account
    (one that may read, write and list that bucket only; not the app's own account, so that the app cannot
    delete its backups)."""

    bucket: str
    access_key_file: Path
    secret_key_file: Path

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        if not BUCKET.match(v) or ".." in v:
            raise ValueError(f"{v!r} is not an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'")
        return v


class BackupSettings(Strict):
    """Scheduled backups of an app's data (issue 25, item 3): each database a service of the deployed stack
    is wired to (DB_NAME), dumped daily at `schedule` (UTC) into the backup store, and each named volume,
    archived from the node its running task is on into the app's bucket of the S3 store; the newest `keep`
    scheduled backups of each are kept (snapshots taken before migrations are never removed)."""

    databases: list[str] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)
    schedule: str
    keep: int = Field(14, ge=1, le=400)
    s3: BackupS3 | None = None

    @field_validator("databases")
    @classmethod
    def _database_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not DATABASE_NAME.match(name):
                raise ValueError(f"{name!r} is not a database name swarmops backs up: letters, digits, '_' and '-', "
                                 "starting with a letter or '_', at most 63 characters (the DB_NAME of its service)")
        return once(v, "database")

    @field_validator("volumes")
    @classmethod
    def _volume_keys(cls, v: list[str]) -> list[str]:
        for name in v:
            if not VOLUME_KEY.match(name):
                raise ValueError(f"{name!r} is not a volume of a stack file: letters, digits, '_', '.' and '-', "
                                 "starting with a letter or digit, at most 63 characters (its key under volumes:)")
        return once(v, "volume")

    @field_validator("schedule")
    @classmethod
    def _time_of_day(cls, v: str) -> str:
        if not SCHEDULE.match(v):
            raise ValueError(f"{v!r}: write the time of the daily backup as HH:MM in UTC, like 02:00")
        return v

    @model_validator(mode="after")
    def _something_to_back_up(self) -> BackupSettings:
        if not self.databases and not self.volumes:
            raise ValueError("name what to back up: databases: [NAME, ...], volumes: [NAME, ...] or both")
        if self.volumes and self.s3 is None:
            raise ValueError("volumes are archived into the app's bucket of the S3 store: add s3: {bucket: NAME, "
                             "access_key_file: PATH, secret_key_file: PATH} (the app's backup account)")
        return self

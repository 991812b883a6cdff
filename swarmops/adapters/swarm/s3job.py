"""The program of a volume job of the S3 store. swarmops never imports it: its text runs as `python3 -c` in
the lab's base/python image (Debian's python3-boto3), with ACTION backup | restore | list | prune, the app's
volume at /data (backup, restore), the app's backup account in /run/secrets/swarmops-s3 and the store's
endpoint, bucket, archive id, volume and keep in the environment. It prints what it did in one line (a list:
`snapshot SIZE MTIME ID` lines, as the db store's listing does) and, on a fault, one line and exit code 1.

An archive is a gzipped tar of the volume's top level: links are kept as links and never followed; sockets,
devices and pipes are left out. A restore reads the whole archive and checks it before it touches the
volume (no device or pipe, no name or hard link outside /data or through a link the archive made), then
empties the volume and extracts (setuid and setgid bits cleared; tarfile's "tar" filter too where the
Python has it: Debian 12's has not).
Owners are kept as numbers: the app's image, not this one, knows their names."""

import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from typing import Any

import boto3  # type: ignore[import-not-found]
import botocore.exceptions  # type: ignore[import-not-found]

DATA = "/data"
LISTED = 18
ARCHIVE = re.compile(r"^(\d{8}T\d{6}Z-volume-[A-Za-z0-9][A-Za-z0-9_.-]{0,62})\.tar\.gz$")
env = os.environ


def client() -> Any:
    with open("/run/secrets/swarmops-s3") as f:
        keys = json.load(f)
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name=env["S3_REGION"],
                        aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"])


def archives(s3: Any, bucket: str) -> list[tuple[str, int, int]]:
    """The bucket's volume archives, newest first: (id, size, mtime)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents") or []:
            m = ARCHIVE.match(obj["Key"])
            if m:
                found.append((m[1], int(obj["Size"]), int(obj["LastModified"].timestamp())))
    return sorted(found, reverse=True)


def backup(s3: Any, bucket: str, archive: str) -> None:
    with tempfile.TemporaryFile() as tmp:
        with tarfile.open(fileobj=tmp, mode="w:gz") as tar:
            for entry in sorted(os.listdir(DATA)):   # devices and pipes left out: a restore refuses them
                tar.add(os.path.join(DATA, entry), arcname=entry, filter=lambda m: None if m.isdev() else m)
        size = tmp.tell()
        tmp.seek(0)
        s3.upload_fileobj(tmp, bucket, f"{archive}.tar.gz")
    print(f"archive {archive}: {size} bytes")


def outside(name: str) -> bool:
    norm = os.path.normpath(name)
    return os.path.isabs(name) or norm == ".." or norm.startswith("../")


def through(name: str, links: set[str]) -> bool:
    """Whether the name is, or goes through, a symbolic link the archive made before it."""
    parts = os.path.normpath(name).split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts) + 1))


def refused(members: list[tarfile.TarInfo]) -> str | None:
    """The first entry a restore refuses, decided from the archive alone (the volume is not looked at: what
    it holds now is about to go): a device or a pipe, a name or a hard link outside the volume, or through a
    link the archive itself made (a tar of a real directory never has one)."""
    links: set[str] = set()
    for m in members:
        if m.isdev() or outside(m.name) or through(m.name, links):
            return m.name
        if m.islnk() and (outside(m.linkname) or through(m.linkname, links)):
            return m.name
        if m.issym():
            links.add(os.path.normpath(m.name))
    return None


def empty(path: str) -> None:
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


def restore(s3: Any, bucket: str, archive: str) -> None:
    with tempfile.TemporaryFile() as tmp:
        try:
            s3.download_fileobj(bucket, f"{archive}.tar.gz", tmp)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                print(f"no archive {archive} of {env['APP']} in bucket {bucket}")
                sys.exit(2)
            raise
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r:gz") as tar:
            members = tar.getmembers()   # the whole archive is read: a broken one fails before the volume changes
            first = refused(members)
            if first is not None:
                print(f"archive {archive} holds an entry a restore refuses (a device, a pipe, a name or hard link "
                      f"outside the volume or through a link in it): {first!r}; nothing was restored")
                sys.exit(3)
            empty(DATA)
            for m in members:
                m.mode &= ~0o6000   # no setuid or setgid bit comes back
            # Debian 12's Python 3.11.2 has no extraction filters: the checks above are what keeps the entries
            # inside /data (its only links are the archive's own, and no entry goes through one); a Python
            # that has them adds the "tar" filter, and never its "data" default, which would drop the owners
            extra: dict[str, Any] = {"filter": tarfile.tar_filter} if hasattr(tarfile, "tar_filter") else {}
            tar.extractall(DATA, members=members, numeric_owner=True, **extra)
    print(f"restored {archive} into volume {env['VOLUME']}")


def prune(s3: Any, bucket: str, volume: str, keep: int) -> None:
    mine = [a for a in archives(s3, bucket) if a[0].endswith(f"Z-volume-{volume}")]
    for archive, _, _ in mine[keep:]:
        s3.delete_object(Bucket=bucket, Key=f"{archive}.tar.gz")
        print(f"removed {archive}")
    print(f"kept {min(len(mine), keep)} of {len(mine)} archives of volume {volume}")


def main() -> None:
    s3, bucket, action = client(), env["BUCKET"], env["ACTION"]
    if action == "backup":
        backup(s3, bucket, env["ID"])
    elif action == "restore":
        restore(s3, bucket, env["ID"])
    elif action == "prune":
        prune(s3, bucket, env["VOLUME"], int(env["KEEP"]))
    elif action == "list":
        for archive, size, mtime in archives(s3, bucket)[:LISTED]:
            print(f"snapshot {size} {mtime} {archive}")


if __name__ == "__main__":   # as `python3 -c` runs it
    try:
        main()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError, tarfile.TarError) as e:
        print(f"{env.get('ACTION')} of bucket {env.get('BUCKET')}: {type(e).__name__}: {str(e)[:300]}")
        sys.exit(1)

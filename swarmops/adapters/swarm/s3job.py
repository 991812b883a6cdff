"""The program of a volume job of the S3 store. swarmops never imports it: its text runs as `python3 -c` in
the lab's base/python image (Debian's python3-boto3), with ACTION backup | restore | list | prune, the app's
volume at /data (backup, restore), the app's backup account in /run/secrets/swarmops-s3 and the store's
endpoint, bucket, archive id, volume, keep and size limit in the environment. It prints what it did in one
line (a list: `snapshot SIZE MTIME ID` lines, as the db store's listing does) and, on a fault, one line and
a non-zero exit code.

The app keeps running while its volume is read or written, and may change it at any moment (swap a file for
a link to the secret, a directory for a link to /). So nothing here opens a path: every file and directory
is opened relative to its parent's descriptor with O_NOFOLLOW, and checked to be what was listed, so a link
is read as a link and never followed, and a write never lands outside /data. An archive holds directories,
regular files (a hard link is stored as a copy) and links; sockets, devices and pipes are left out. A
restore reads the whole archive and refuses it before the volume changes unless it is such an archive:
names without `.`, `..` or an empty part, each entry's directory made by the archive before it, no name
twice; then it empties the volume and creates each entry anew (O_EXCL: an entry the app made meanwhile
fails the restore instead of being written through). Owners are kept as numbers; setuid and setgid bits
are not restored."""

import errno
import json
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import time
import urllib.parse
from typing import Any, BinaryIO

import boto3  # type: ignore[import-not-found]
import botocore.exceptions  # type: ignore[import-not-found]

DATA = "/data"
LISTED = 18
ARCHIVE = re.compile(r"^(\d{8}T\d{6}Z-volume-([A-Za-z0-9][A-Za-z0-9_.-]{0,62}))\.tar\.gz$")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
env = os.environ


class Refused(Exception):
    """The volume or the archive is not one this job takes; its words are the operator's."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Budget:
    """The bytes and entries one archive may hold: a volume that fills the node's disk or the job's memory
    fails its backup instead."""

    def __init__(self) -> None:
        self.bytes = int(env.get("MAX_BYTES") or 20 * 2**30)
        self.entries = int(env.get("MAX_ENTRIES") or 200_000)

    def take(self, size: int) -> None:
        self.bytes -= size
        self.entries -= 1
        if self.bytes < 0 or self.entries < 0:
            raise Refused(4, f"volume {env.get('VOLUME') or ''} holds more than the store takes "
                             f"({env.get('MAX_BYTES') or 20 * 2**30} bytes or {env.get('MAX_ENTRIES') or 200_000} "
                             "entries); nothing was stored")


def await_endpoint(url: str, seconds: float = 60) -> None:
    """Wait until the store answers a connection: a job's task joins the store's overlay network on its node
    as it starts, and the store's name may not resolve there for the first moments."""
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(address, timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                return   # the client's own call then fails with the reason
            time.sleep(1)


def client() -> Any:
    await_endpoint(env["S3_ENDPOINT"])
    with open("/run/secrets/swarmops-s3") as f:
        keys = json.load(f)
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name=env["S3_REGION"],
                        aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"])


def archives(s3: Any, bucket: str) -> list[tuple[str, int, int, str]]:
    """The bucket's volume archives, newest first: (id, size, mtime, volume)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents") or []:
            m = ARCHIVE.match(obj["Key"])
            if m:
                found.append((m[1], int(obj["Size"]), int(obj["LastModified"].timestamp()), m[2]))
    return sorted(found, reverse=True)


def info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode, entry.uid, entry.gid = kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    entry.mtime = int(st.st_mtime)
    return entry


class Exactly:
    """`size` bytes of a file the app may be changing: cut short meanwhile, the rest is zeros."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) or b"\0" * n
        self.left -= len(data)
        return data


def same(fd: int, st: os.stat_result) -> bool:
    now = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def walk(tar: tarfile.TarFile, dfd: int, prefix: str, budget: Budget) -> None:
    """Every entry of the directory open as `dfd`, each opened relative to it and never through a link."""
    with os.scandir(dfd) as listing:
        names = sorted(e.name for e in listing)
    for name in names:
        path = prefix + name
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                entry = info(path, st, tarfile.SYMTYPE)
                entry.linkname = os.readlink(name, dir_fd=dfd)
                budget.take(0)
                tar.addfile(entry)
            elif stat.S_ISDIR(st.st_mode):
                fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
                try:
                    if same(fd, st):
                        budget.take(0)
                        tar.addfile(info(path, st, tarfile.DIRTYPE))
                        walk(tar, fd, path + "/", budget)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
                with os.fdopen(fd, "rb") as f:
                    if same(fd, st) and stat.S_ISREG(os.fstat(fd).st_mode):
                        size = os.fstat(fd).st_size
                        budget.take(size)
                        entry = info(path, st, tarfile.REGTYPE)
                        entry.size = size
                        tar.addfile(entry, Exactly(f, size))
        except (FileNotFoundError, NotADirectoryError):
            continue   # removed or replaced meanwhile
        except OSError as e:
            if e.errno != errno.ELOOP:   # a link put in its place meanwhile, never followed
                raise


def backup(s3: Any, bucket: str, archive: str) -> None:
    with tempfile.TemporaryFile() as tmp:
        root = os.open(DATA, DIR_FLAGS)
        try:
            with tarfile.open(fileobj=tmp, mode="w:gz") as tar:
                walk(tar, root, "", Budget())
        finally:
            os.close(root)
        size = tmp.tell()
        tmp.seek(0)
        s3.upload_fileobj(tmp, bucket, f"{archive}.tar.gz")
    print(f"archive {archive}: {size} bytes")


def refused(members: list[tarfile.TarInfo]) -> str | None:
    """The first entry that makes the archive one a restore refuses, from the archive alone (what the volume
    holds now is about to go), or None."""
    made: set[tuple[str, ...]] = {()}
    seen: set[tuple[str, ...]] = set()
    for m in members:
        parts = tuple(m.name.split("/"))
        if any(p in ("", ".", "..") for p in parts) or parts in seen or parts[:-1] not in made:
            return m.name
        if not (m.isreg() or m.isdir() or m.issym()):   # a hard link, a device, a pipe: never in a backup
            return m.name
        seen.add(parts)
        if m.isdir():
            made.add(parts)
    return None


def empty(path: str) -> None:
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)   # through directory descriptors: a link put in meanwhile is removed, not followed
        else:
            os.unlink(full)


def extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], root: int) -> None:
    """Each entry created anew in the directory the archive made for it, through descriptors only."""
    dirs: dict[tuple[str, ...], int] = {(): root}
    made: list[tuple[int, tarfile.TarInfo]] = []
    try:
        for m in members:
            parts = tuple(m.name.split("/"))
            parent, name = dirs[parts[:-1]], parts[-1]
            if m.isdir():
                os.mkdir(name, 0o700, dir_fd=parent)
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
                dirs[parts] = fd
                made.append((fd, m))
            elif m.isreg():
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
                with os.fdopen(fd, "wb") as out:
                    source = tar.extractfile(m)
                    if source is not None:
                        shutil.copyfileobj(source, out)
                    os.fchown(fd, m.uid, m.gid)
                    os.fchmod(fd, m.mode & 0o1777)
                    os.utime(fd, (m.mtime, m.mtime))
            else:
                os.symlink(m.linkname, name, dir_fd=parent)
                os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        for fd, m in reversed(made):   # a directory's own mode last: a read-only one still got its entries
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o1777)
            os.utime(fd, (m.mtime, m.mtime))
    except FileExistsError as e:
        raise Refused(5, f"the app wrote {e.filename!r} into volume {env.get('VOLUME')} during the restore, which "
                         "is left part done: scale the services that mount it to 0 and restore again") from e
    finally:
        for fd, _ in made:
            os.close(fd)


def restore(s3: Any, bucket: str, archive: str) -> None:
    with tempfile.TemporaryFile() as tmp:
        try:
            s3.download_fileobj(bucket, f"{archive}.tar.gz", tmp)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise Refused(2, f"no archive {archive} of {env['APP']} in bucket {bucket}") from e
            raise
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r:gz") as tar:
            members = tar.getmembers()   # the whole archive is read: a broken one fails before the volume changes
            budget = Budget()
            for m in members:
                budget.take(m.size)
            first = refused(members)
            if first is not None:
                raise Refused(3, f"archive {archive} holds an entry no backup makes (a hard link, a device, a pipe, "
                                 f"a name with . or .., one outside a directory it made): {first!r}; nothing was "
                                 "restored")
            empty(DATA)
            root = os.open(DATA, DIR_FLAGS)
            try:
                extract(tar, members, root)
            finally:
                os.close(root)
    print(f"restored {archive} into volume {env['VOLUME']}")


def prune(s3: Any, bucket: str, volume: str, keep: int) -> None:
    mine = [a for a in archives(s3, bucket) if a[3] == volume]
    for archive, _, _, _ in mine[keep:]:
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
        for archive, size, mtime, _ in archives(s3, bucket)[:LISTED]:
            print(f"snapshot {size} {mtime} {archive}")


if __name__ == "__main__":   # as `python3 -c` runs it
    try:
        main()
    except Refused as e:
        print(e)
        sys.exit(e.code)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError, tarfile.TarError) as e:
        print(f"{env.get('ACTION')} of bucket {env.get('BUCKET')}: {type(e).__name__}: {str(e)[:300]}")
        sys.exit(1)

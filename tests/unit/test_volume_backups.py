"""Backups of an app's named volumes into its bucket of the S3 store (issue 25, item 3): the apps.d entry and
the config's store, the job's spec (the volume's node, read-only, the app's own account), finding the node a
local volume is on, a run that archives and prunes each volume, and a restore routed to the volume, on fakes
that honour the VolumeStore port. The job's program itself runs on the lab (tests/integration/test_backups.py)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import sys
import tarfile
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarmops.adapters.swarm import backups as backups_adapter
from swarmops.adapters.swarm.backups import PROGRAM, S3VolumeStore
from swarmops.adapters.swarm.secrets import SwarmSecrets
from swarmops.config.loader import load_config
from swarmops.config.models import AppConfig, BackupS3, Config, S3StoreSettings
from swarmops.domain.backups import (
    SNAPSHOT_ID,
    VOLUME_ID,
    S3Target,
    SnapshotFile,
    volume_archive_id,
    volume_job,
    volume_nodes,
)
from swarmops.domain.hooks import JobResult
from swarmops.domain.live import LiveNode, LiveService, LiveStack, LiveTask
from swarmops.domain.render import APP_LABEL, STACK_NAMESPACE
from swarmops.errors import BackupError
from swarmops.ops import backups
from swarmops.reconcile.ports import NoJobs
from tests.fakes import HookWorld

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
NODES = {n.id: n for n in (LiveNode("n1", "app1", {"role": "app"}, "ready", "active"),
                           LiveNode("n2", "app2", {"role": "app"}, "ready", "active"))}


def bucket(tmp_path: Path, access: str = "backup-key", secret: str = "backup-secret") -> BackupS3:
    (tmp_path / "access").write_text(access + "\n")
    (tmp_path / "secret").write_text(secret + "\n")
    return BackupS3(bucket="backups-shop", access_key_file=tmp_path / "access", secret_key_file=tmp_path / "secret")


def service(short: str, source: str | None, sid: str = "") -> LiveService:
    mounts = [{"Type": "volume", "Source": source, "Target": "/srv"}] if source else []
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Mounts": mounts}}}
    return LiveService(id=sid or short, name=f"shop_{short}", short=short,
                       labels={STACK_NAMESPACE: "shop", APP_LABEL: "shop"}, image="x", version=1, replicas=1,
                       update_state=None, update_started=None, update_message="", task_image="x", force_update=0,
                       spec=spec)


def task(service_id: str, node: str, state: str = "running", desired: str = "running") -> LiveTask:
    return LiveTask(id=f"{service_id}-{node}-{state}", service_id=service_id, node_id=node, slot=1, desired=desired,
                    state=state, image="x", force_update=0, message=state, error="", exit_code=None, timestamp=None)


def live(*tasks: LiveTask, web: str | None = "shop_uploads") -> LiveStack:
    return LiveStack("shop", {"web": service("web", web), "cache": service("cache", None)}, list(tasks), NODES)


class FakeVolumeStore:
    """The S3 store: a bucket of archives per app; an archive copies the fake volume's files (`volumes`, by
    Swarm volume and node) and a restore puts them back on the node it is given."""

    def __init__(self) -> None:
        self.volumes: dict[tuple[str, str], dict[str, str]] = {}
        self.buckets: dict[str, dict[str, dict[str, str]]] = {}
        self.runs: list[tuple[str, str, str]] = []   # (action, bucket, node)
        self.fail: dict[str, JobResult] = {}

    def where(self, app: str, bucket: BackupS3, archive: str) -> str:
        return f"bucket {bucket.bucket} of the S3 store, {archive}.tar.gz"

    def backup(self, app: str, bucket: BackupS3, source: str, node: str, archive: str,
               cancel: threading.Event) -> JobResult:
        self.runs.append(("backup", bucket.bucket, node))
        if "backup" in self.fail:
            return self.fail["backup"]
        self.buckets.setdefault(bucket.bucket, {})[archive] = dict(self.volumes.get((source, node), {}))
        return JobResult("complete", 0, 1.0, (f"archive {archive}: 100 bytes",))

    def restore(self, app: str, bucket: BackupS3, source: str, node: str, archive: str, volume: str,
                cancel: threading.Event) -> JobResult:
        self.runs.append(("restore", bucket.bucket, node))
        kept = self.buckets.get(bucket.bucket, {})
        if archive not in kept:
            return JobResult("failed", 2, 0.1, (f"no archive {archive} of {app} in bucket {bucket.bucket}",))
        self.volumes[(source, node)] = dict(kept[archive])
        return JobResult("complete", 0, 1.0, (f"restored {archive}",))

    def prune(self, app: str, bucket: BackupS3, volume: str, keep: int, cancel: threading.Event) -> JobResult:
        mine = sorted((a for a in self.buckets.get(bucket.bucket, {}) if a.endswith(f"Z-volume-{volume}")),
                      reverse=True)
        for archive in mine[keep:]:
            del self.buckets[bucket.bucket][archive]
        return JobResult("complete", 0, 0.1, (f"kept {min(keep, len(mine))} of {len(mine)}",))

    def list(self, app: str, bucket: BackupS3, cancel: threading.Event) -> list[SnapshotFile]:
        return [SnapshotFile(a, 100, 1.0) for a in sorted(self.buckets.get(bucket.bucket, {}), reverse=True)]


def app_with(tmp_path: Path, keep: int = 2, volumes: tuple[str, ...] = ("uploads",)) -> AppConfig:
    return AppConfig.model_validate({"name": "shop", "repo": "x", "backup": {
        "volumes": list(volumes), "schedule": "02:00", "keep": keep, "s3": bucket(tmp_path).model_dump()}})


def clock() -> Any:
    t = [NOW]

    def now() -> datetime:
        t[0] += timedelta(minutes=1)
        return t[0]
    return now


# ---- the entries

def test_volumes_without_the_configs_s3_store_are_refused_naming_the_apps_file(tmp_path: Path) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    (apps_d / "shop.yml").write_text(
        "name: shop\nrepo: file:///srv/shop.git\nbackup: {volumes: [uploads], schedule: '02:00', s3: {bucket: "
        "backups-shop, access_key_file: /etc/k, secret_key_file: /etc/s}}\n")
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {tmp_path}/state\napps_dir: {apps_d}\n")
    [error] = [str(e) for e in load_config(config).app_errors]
    assert error.startswith(f"{apps_d / 'shop.yml'}: key 'backup.volumes'") and "add backup_s3:" in error, error
    config.write_text(config.read_text() + "backup_s3: {endpoint: 'http://minio:9000', network: minio}\n")
    assert load_config(config).app_errors == []


@pytest.mark.parametrize(("entry", "words"), [
    ({"volumes": ["../etc"], "schedule": "02:00"}, "not a volume of a stack file"),
    ({"volumes": ["a", "a"], "schedule": "02:00"}, "listed twice"),
    ({"volumes": ["a"], "schedule": "02:00", "s3": {"bucket": "Backups_Shop", "access_key_file": "/k",
                                                    "secret_key_file": "/s"}}, "not an S3 bucket name"),
], ids=["path", "twice", "bucket"])
def test_a_bad_volume_entry_is_refused(entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        AppConfig.model_validate({"name": "shop", "repo": "x", "backup": entry})


@pytest.mark.parametrize("endpoint", ["minio:9000", "http://minio:9000/path", "http://a b", "file:///etc"])
def test_the_s3_store_endpoint_is_a_scheme_host_and_port_only(endpoint: str) -> None:
    with pytest.raises(ValueError):
        S3StoreSettings.model_validate({"endpoint": endpoint, "network": "minio"})


def test_an_archive_id_sorts_by_time_names_its_volume_and_restore_takes_it() -> None:
    aid = volume_archive_id(NOW, "uploads")
    assert aid == "20260310T020000Z-volume-uploads" and VOLUME_ID.match(aid) and SNAPSHOT_ID.match(aid)
    assert not VOLUME_ID.match("20260310T020000Z-volume-../x")


# ---- the job (pure)

def test_a_volume_backup_job_mounts_the_volume_read_only_on_its_node_with_the_apps_own_account() -> None:
    target = S3Target("http://minio:9000", "minio", "us-east-1", "backups-shop")
    spec = volume_job("volume-backup", "shop", "reg/base/python:3.11", PROGRAM, target, "swarmops-s3-shop-ab",
                      "node.id == n2", source="shop_uploads", archive="20260310T020000Z-volume-uploads")
    template, container = spec["TaskTemplate"], spec["TaskTemplate"]["ContainerSpec"]
    assert container["Mounts"] == [{"Type": "volume", "Source": "shop_uploads", "Target": "/data", "ReadOnly": True,
                                    "VolumeOptions": {"NoCopy": True}}]
    assert template["Placement"]["Constraints"] == ["node.id == n2"]
    assert template["Networks"] == [{"Target": "minio"}]
    assert [s["SecretName"] for s in container["Secrets"]] == ["swarmops-s3-shop-ab"]
    assert container["Command"] == ["python3", "-c"] and container["Args"] == [PROGRAM]
    assert "ACTION=backup" in container["Env"] and "BUCKET=backups-shop" in container["Env"]
    assert spec["Labels"][APP_LABEL] == "shop" and STACK_NAMESPACE not in spec["Labels"]
    restore = volume_job("volume-restore", "shop", "i", PROGRAM, target, "s", "node.id == n2", source="shop_uploads")
    assert restore["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["ReadOnly"] is False


def test_a_listing_job_mounts_no_volume_and_may_run_on_any_node() -> None:
    target = S3Target("http://minio:9000", "minio", "us-east-1", "backups-shop")
    spec = volume_job("volume-list", "shop", "i", PROGRAM, target, "s", "")
    assert "Mounts" not in spec["TaskTemplate"]["ContainerSpec"]
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == []


def test_no_secret_value_is_in_a_jobs_spec(tmp_path: Path) -> None:
    class Secrets:
        def __init__(self) -> None:
            self.made: dict[str, bytes] = {}

        def ensure(self, app: str, name: str, data: bytes) -> bool:
            self.made[name] = data
            return True

    class Jobs:
        def __init__(self) -> None:
            self.specs: list[dict[str, Any]] = []

        def run(self, app: str, spec: dict[str, Any], timeout: float, cancel: threading.Event) -> JobResult:
            self.specs.append(spec)
            return JobResult("complete", 0, 1.0, ("snapshot 5 1 20260310T020000Z-volume-uploads",))

        def check(self, app: str, spec: dict[str, Any]) -> None: ...

    secrets, jobs = Secrets(), Jobs()
    store = S3VolumeStore(jobs, secrets, "reg:5000",   # type: ignore[arg-type]
                          S3StoreSettings.model_validate({"endpoint": "http://minio:9000", "network": "minio"}))
    found = store.list("shop", bucket(tmp_path, "AKIA-backup", "very-secret-value"), threading.Event())
    assert [f.id for f in found] == ["20260310T020000Z-volume-uploads"]
    [(name, data)] = secrets.made.items()
    assert name.startswith("swarmops-s3-shop-") and json.loads(data) == {"access_key": "AKIA-backup",
                                                                         "secret_key": "very-secret-value"}
    assert "very-secret-value" not in json.dumps(jobs.specs) and "AKIA-backup" not in json.dumps(jobs.specs)
    store.list("shop", bucket(tmp_path, "AKIA-backup", "rotated"), threading.Event())
    assert len(secrets.made) == 2   # new keys, a new secret: a running job keeps the one it has


def test_an_unreadable_key_file_fails_naming_the_file_and_what_to_put_there(tmp_path: Path) -> None:
    store = S3VolumeStore(NoJobs(), SwarmSecrets(object()), "reg:5000",
                          S3StoreSettings.model_validate({"endpoint": "http://minio:9000", "network": "minio"}))
    missing = BackupS3(bucket="backups-shop", access_key_file=tmp_path / "nope", secret_key_file=tmp_path / "nope")
    with pytest.raises(BackupError, match=r"cannot read backup.s3.access_key_file .*nope: No such file"):
        store.list("shop", missing, threading.Event())


# ---- which node the volume is on

def test_the_volume_is_on_the_node_of_the_running_task_that_mounts_it() -> None:
    stack = live(task("web", "n2"), task("web", "n1", state="shutdown", desired="shutdown"), task("cache", "n1"))
    assert volume_nodes(stack, "shop_uploads") == {"n2"}
    assert backups.volume_node(stack, "shop", "uploads") == ("shop_uploads", "n2")


def test_a_volume_no_task_mounts_or_mounted_on_two_nodes_cannot_be_backed_up() -> None:
    with pytest.raises(BackupError, match="no running task mounts volume uploads"):
        backups.volume_node(live(task("web", "n1", state="failed", desired="shutdown")), "shop", "uploads")
    with pytest.raises(BackupError, match="mounted by running tasks on app1, app2: a local volume is a different"):
        backups.volume_node(live(task("web", "n1"), task("web", "n2")), "shop", "uploads")


# ---- a run, and a restore

def world(tmp_path: Path, keep: int = 2) -> tuple[HookWorld, FakeVolumeStore, AppConfig, LiveStack]:
    w = HookWorld(tmp_path)
    app = app_with(tmp_path, keep)
    volumes = FakeVolumeStore()
    volumes.volumes[("shop_uploads", "n2")] = {"a.txt": "v1"}
    return w, volumes, app, live(task("web", "n2"))


def test_a_backup_archives_each_volume_from_its_node_and_keeps_the_newest_keep(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path, keep=2)
    now = clock()
    for _ in range(3):
        run = backups.run_backup(w.store, w.backups, lambda _a: stack, app, "manual", threading.Event(), now,
                                 volumes)
        assert run.ok, run.message
    assert "Z-volume-uploads (bucket backups-shop of the S3 store" in run.message
    assert sorted(volumes.buckets["backups-shop"]) == ["20260310T020400Z-volume-uploads",
                                                       "20260310T020600Z-volume-uploads"]
    assert {node for action, _, node in volumes.runs if action == "backup"} == {"n2"}
    last = w.store.last_backup("shop")
    assert last is not None and last.result == "succeeded"


def test_a_failed_archive_or_a_swarmops_without_an_s3_store_fails_the_run_saying_why(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path)
    volumes.fail["backup"] = JobResult("failed", 1, 1.0, ("volume-backup of bucket backups-shop: AccessDenied",))
    run = backups.run_backup(w.store, w.backups, lambda _a: stack, app, "manual", threading.Event(), clock(), volumes)
    assert not run.ok and "the backup of volume uploads failed (failed, exit code 1)" in run.message
    assert "AccessDenied" in run.message
    run = backups.run_backup(w.store, w.backups, lambda _a: stack, app, "manual", threading.Event(), clock(), None)
    assert not run.ok and "this swarmops has no S3 store (backup_s3 in its config)" in run.message


def test_a_volume_archive_restores_into_the_volume_on_its_node_and_resumes_the_app(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path)
    run = backups.run_backup(w.store, w.backups, lambda _a: stack, app, "manual", threading.Event(), clock(), volumes)
    [archive] = volumes.buckets["backups-shop"]
    volumes.volumes[("shop_uploads", "n2")] = {"a.txt": "overwritten by a bad release"}
    said = backups.restore(w.store, w.backups, app, archive, threading.Event(), volumes, lambda _a: stack)
    assert run.ok and volumes.volumes[("shop_uploads", "n2")] == {"a.txt": "v1"}
    assert said.startswith(f"shop: restored archive {archive} into volume uploads (shop_uploads)")
    assert not w.store.app_state("shop").paused


def test_a_failed_volume_restore_leaves_the_app_paused_and_says_so(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path)
    with pytest.raises(BackupError, match=r"no archive .* in bucket backups-shop; shop stays paused"):
        backups.restore(w.store, w.backups, app, "20260310T020000Z-volume-uploads", threading.Event(), volumes,
                        lambda _a: stack)
    assert w.store.app_state("shop").paused


def test_a_volume_archive_of_an_app_without_a_bucket_is_refused_before_anything_changes(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path)
    plain = app.model_copy(update={"backup": None})
    with pytest.raises(BackupError, match="names no bucket there"):
        backups.restore(w.store, w.backups, plain, "20260310T020000Z-volume-uploads", threading.Event(), volumes,
                        lambda _a: stack)
    assert not w.store.app_state("shop").paused and volumes.runs == []


def test_the_listing_shows_the_volume_archives_after_the_database_snapshots(tmp_path: Path) -> None:
    w, volumes, app, stack = world(tmp_path)
    backups.run_backup(w.store, w.backups, lambda _a: stack, app, "manual", threading.Event(), clock(), volumes)
    found = backups.list_snapshots(w.store, w.backups, app, threading.Event(), volumes)
    assert [f.file.id for f in found] == list(volumes.buckets["backups-shop"])


def test_the_config_names_apps_with_volumes_but_no_store_in_apps_too() -> None:
    with pytest.raises(ValueError, match=r"app shop: backup\.volumes go to the S3 store"):
        Config.model_validate({"registry": "reg:5000", "apps": [{
            "name": "shop", "repo": "x", "backup": {"volumes": ["u"], "schedule": "02:00", "s3": {
                "bucket": "backups-shop", "access_key_file": "/k", "secret_key_file": "/s"}}}]})


# ---- the job's program, against hostile archives (its S3 calls run on the lab)

@pytest.fixture
def program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """s3job.py as the job runs it, with /data here and a boto3 that must not be called."""
    fake_botocore = types.ModuleType("botocore")
    fake_exceptions = types.ModuleType("botocore.exceptions")
    fake_exceptions.BotoCoreError = type("BotoCoreError", (Exception,), {})  # type: ignore[attr-defined]
    fake_exceptions.ClientError = type("ClientError", (Exception,), {})  # type: ignore[attr-defined]
    for name, module in (("boto3", types.ModuleType("boto3")), ("botocore", fake_botocore),
                         ("botocore.exceptions", fake_exceptions)):
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("s3job", Path(backups_adapter.__file__).with_name("s3job.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(module, "DATA", str(data))
    return module


class Bucket:
    """One object kept in memory: what upload_fileobj stored, what download_fileobj gives back."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def upload_fileobj(self, f: Any, bucket: str, key: str) -> None:
        self.objects[key] = f.read()

    def download_fileobj(self, bucket: str, key: str, f: Any) -> None:
        f.write(self.objects[key])


def hostile(entries: list[tarfile.TarInfo]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info in entries:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return out.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


def test_a_backup_and_its_restore_keep_files_and_links_as_links_and_leave_pipes_out(program: Any) -> None:
    data = Path(program.DATA)
    (data / "d").mkdir()
    (data / "d" / "b.txt").write_text("inner")
    (data / "a.txt").write_text("first")
    os.link(data / "a.txt", data / "same.txt")   # a hard link is stored as a copy
    (data / "link").symlink_to("/etc/passwd")
    (data / "dirlink").symlink_to(data.parent)   # a link to a directory outside: its files are not read
    (data.parent / "outside.txt").write_text("not the app's")
    (data / "tool").write_text("#!/bin/sh\n")
    (data / "tool").chmod(0o4755)
    os.mkfifo(data / "pipe")
    s3 = Bucket()
    program.backup(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    with tarfile.open(fileobj=io.BytesIO(s3.objects["20260310T020000Z-volume-uploads.tar.gz"])) as tar:
        names = tar.getnames()
    assert names == ["a.txt", "d", "d/b.txt", "dirlink", "link", "same.txt", "tool"], names
    (data / "a.txt").write_text("changed")
    (data / "junk").write_text("junk")
    program.env = {"APP": "shop", "VOLUME": "uploads"}
    program.restore(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    assert sorted(p.name for p in data.iterdir()) == ["a.txt", "d", "dirlink", "link", "same.txt", "tool"]
    assert (data / "a.txt").read_text() == "first" and (data / "d" / "b.txt").read_text() == "inner"
    assert (data / "same.txt").read_text() == "first"
    assert os.readlink(data / "link") == "/etc/passwd"
    assert (data / "tool").stat().st_mode & 0o7777 == 0o755   # no setuid bit comes back


def test_a_volume_beyond_the_stores_limit_fails_its_backup_and_stores_nothing(program: Any) -> None:
    (Path(program.DATA) / "big").write_bytes(b"x" * 4096)
    program.env = {"MAX_BYTES": "1000", "VOLUME": "uploads"}
    s3 = Bucket()
    with pytest.raises(program.Refused, match="holds more than the store takes"):
        program.backup(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    assert s3.objects == {}


@pytest.mark.parametrize("entries", [
    [entry("../outside.txt")],
    [entry("/etc/cron.d/evil")],
    [entry("escape", tarfile.SYMTYPE, "/"), entry("escape/etc/evil")],      # a file through a link it made
    [entry("a", tarfile.SYMTYPE, "/tmp"), entry("a/../x")],                 # ... and through its ..
    [entry("d", tarfile.DIRTYPE), entry("d/./x")],
    [entry("nodir/x")],                                                    # before its directory
    [entry("twice"), entry("twice", tarfile.SYMTYPE, "/etc/passwd")],
    [entry("shadow", tarfile.LNKTYPE, "/etc/shadow")],                     # a hard link to a file outside
    [entry("up", tarfile.LNKTYPE, "fine.txt")],                            # any hard link: no backup makes one
    [entry("null", tarfile.CHRTYPE)],
    [entry("fifo", tarfile.FIFOTYPE)],
], ids=["dotdot", "absolute", "through-a-link", "through-a-links-dotdot", "dot", "before-its-directory", "twice",
        "hard-link-absolute", "hard-link", "device", "pipe"])
def test_a_hostile_archive_is_refused_and_the_volume_is_left_as_it_was(program: Any,
                                                                       entries: list[tarfile.TarInfo]) -> None:
    data = Path(program.DATA)
    (data / "keep.txt").write_text("still here")
    s3 = Bucket()
    s3.objects["20260310T020000Z-volume-uploads.tar.gz"] = hostile([entry("fine.txt"), *entries])
    program.env = {"APP": "shop", "VOLUME": "uploads"}
    with pytest.raises(program.Refused, match="holds an entry no backup makes") as refused:
        program.restore(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    assert refused.value.code == 3
    assert sorted(p.name for p in data.iterdir()) == ["keep.txt"]
    assert not (data.parent / "outside.txt").exists()


def test_a_link_the_running_app_puts_in_during_a_restore_is_never_written_through(
        program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(program.DATA)
    (data / "d").mkdir()
    (data / "d" / "b.txt").write_text("inner")
    s3 = Bucket()
    program.backup(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    outside = data.parent / "elsewhere"
    outside.mkdir()
    emptied = program.empty

    def and_the_app_writes(path: str) -> None:   # just after the volume is emptied, before the extraction
        emptied(path)
        (data / "d").symlink_to(outside)
    monkeypatch.setattr(program, "empty", and_the_app_writes)
    program.env = {"APP": "shop", "VOLUME": "uploads"}
    with pytest.raises(program.Refused, match="the app wrote 'd' into volume uploads during the restore") as stop:
        program.restore(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    assert stop.value.code == 5 and list(outside.iterdir()) == []


def test_a_file_swapped_for_a_link_to_the_secret_while_the_backup_runs_is_never_read_through(
        program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(program.DATA)
    secret = data.parent / "swarmops-s3"
    secret.write_text('{"access_key": "AKIA-backup", "secret_key": "very-secret-value"}')
    (data / "a.txt").write_text("first")
    (data / "swapped").symlink_to(secret)
    real_stat = os.stat

    def listed_as_a_file(name: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        # the app swapped a file for the link between the job's look at the name and its open
        return real_stat("a.txt" if name == "swapped" else name, *args, **kwargs)
    monkeypatch.setattr(program.os, "stat", listed_as_a_file)
    s3 = Bucket()
    program.backup(s3, "backups-shop", "20260310T020000Z-volume-uploads")
    monkeypatch.undo()
    stored = gzip.decompress(s3.objects["20260310T020000Z-volume-uploads.tar.gz"])
    assert b"very-secret-value" not in stored and b"first" in stored


def test_two_apps_backing_up_into_one_bucket_are_refused_the_second_naming_its_file(tmp_path: Path) -> None:
    apps_d = tmp_path / "apps.d"
    apps_d.mkdir()
    for app in ("blog", "shop"):
        (apps_d / f"{app}.yml").write_text(
            f"name: {app}\nrepo: file:///srv/{app}.git\nbackup: {{volumes: [uploads], schedule: '02:00', s3: {{bucket: "
            "backups-shop, access_key_file: /etc/k, secret_key_file: /etc/s}}\n")
    config = tmp_path / "swarmops.yml"
    config.write_text(f"registry: reg:5000\nstate_dir: {tmp_path}/state\napps_dir: {apps_d}\n"
                      "backup_s3: {endpoint: 'http://minio:9000', network: minio}\n")
    loaded = load_config(config)
    [error] = [str(e) for e in loaded.app_errors]
    assert error.startswith(f"{apps_d / 'shop.yml'}: key 'backup.s3.bucket': apps blog and shop both back up into "
                            "bucket backups-shop"), error
    assert [a.name for a in loaded.config.apps] == ["blog"]   # the first keeps its backups

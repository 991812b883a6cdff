"""Issue 25, item 3, on the lab: an app's named volume archived into its bucket of the S3 store (stacks/minio;
on the lab its image is SeaweedFS's S3 server, a stand-in for MinIO: lab/s3/minio), from the node its task
runs on, with the app's own backup account; `keep` bounds the archives; a restore brings back the files,
links as links, and removes what was written since; the listing shows the archives. Then the schedule: a
running daemon backs the app up when its time comes, and a daemon killed before the next time runs that
missed backup once when it starts again."""

from __future__ import annotations

import functools
import json
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker

from swarmops.adapters.store import StateStore
from tests.integration.conftest import BASE_IMAGE, GitRepo, Swarmops, lab_images, ops_stacks, wait_for
from tests.integration.test_template_data import in_container, secret_entries, service_log

# the app writes its files into the volume once: a file, one in a directory, a link out of the volume
# (kept as a link, never followed) and a pipe (left out: a restore refuses devices and pipes)
START = ("test -f /srv/a.txt || { echo first > /srv/a.txt; mkdir -p /srv/d; echo inner > /srv/d/b.txt; "
         "ln -s /etc/passwd /srv/link; mkfifo /srv/pipe; }; exec sleep 100000")


def app_files() -> dict[str, str | None]:
    return {"web/Dockerfile": f"FROM {BASE_IMAGE}\n", "stack.yml": f"""version: "3.8"
services:
  web:
    build: ./web
    command: ["sh", "-c", {json.dumps(START)}]
    stop_grace_period: 1s
    volumes: [uploads:/srv]
    deploy:
      replicas: 1
      resources: {{limits: {{cpus: "0.2", memory: 32M}}}}
volumes:
  uploads: {{}}
"""}


def volume_files(lab: docker.APIClient, app: str) -> str:
    return in_container(lab, app, ["sh", "-c", "cd /srv && for f in $(find . | sort); do "
                                   "if [ -L $f ]; then echo \"$f -> $(readlink $f)\"; elif [ -f $f ]; then "
                                   "echo \"$f: $(cat $f)\"; else echo \"$f\"; fi; done"])


def next_minute(margin: float) -> datetime:
    """The start of the first minute at least `margin` seconds from now (UTC): a daily schedule's HH:MM."""
    at = datetime.now(UTC) + timedelta(seconds=margin + 60)
    return at.replace(second=0, microsecond=0)


def scheduled_runs(swarmops: Swarmops, app: str) -> list[float]:
    store = StateStore(swarmops.state_dir / "state.db")
    try:
        return sorted(r.started for r in store.backups(app, 50) if r.trigger == "schedule" and r.result == "succeeded")
    finally:
        store.close()


def archives(swarmops: Swarmops, app: str) -> list[str]:
    return [s["id"] for s in swarmops.json("backup", "list", app) if s["kind"] == "volume"]


def test_a_volume_is_archived_into_the_apps_bucket_keep_bounds_the_archives_and_a_restore_brings_its_files_back(
        lab: docker.APIClient, swarmops: Swarmops, repo_factory: Any, tmp_path: Path) -> None:
    lab_images("python", "s3")
    rid = swarmops.run_id
    app, minio = swarmops.name("vol"), swarmops.name("s3")
    bucket, network = f"backups-{app}", f"minio-{rid}"
    # the app's backup account: the ops team gives the same keys to the S3 server and to swarmops' files
    keys = {"access": secrets.token_hex(12).encode(), "secret": secrets.token_urlsafe(24).encode()}
    for name, value in keys.items():
        (tmp_path / f"{name}.key").write_bytes(value)
    swarmops.extra["backup_s3"] = {"endpoint": "http://minio:9000", "network": network}
    swarmops.write()
    swarmops.run("keygen")
    account = f"{app}_backup"
    names = [f"{account}_s3_access_key", f"{account}_s3_secret_key"]
    listed, defined = secret_entries(names)
    (tmp_path / "ops").mkdir()
    ops = GitRepo(tmp_path / "ops")
    ops_stacks(ops, swarmops.state_dir, ["minio"], {"minio": {
        "minio_root_user": b"admin", "minio_root_password": b"s3-root-" + rid.encode(),
        names[0]: keys["access"], names[1]: keys["secret"]}}, replace={
        "name: minio\n": f"name: {network}\n",
        'S3_APP_ACCOUNTS: ""': f'S3_APP_ACCOUNTS: "{account}:{bucket}"',
        "secrets: [minio_root_user, minio_root_password]": f"secrets: [minio_root_user, minio_root_password, {listed}]",
        "    file: secrets/minio_root_password.age\n": "    file: secrets/minio_root_password.age\n" + defined})
    ops.commit("the S3 store, with the backup account of the app", {})
    swarmops.add_app(minio, ops.url, stack="stacks/minio/stack.yml", role="minio", policy={"profile": "privileged"},
                     deploy_timeout="120s")
    swarmops.run("sync", minio)
    wait_for(lambda: f"bucket {bucket} ready" in service_log(lab, f"{minio}_minio"), 90, f"bucket {bucket}",
             functools.partial(service_log, lab, f"{minio}_minio"))

    repo: GitRepo = repo_factory()
    repo.commit("v1: uploads", app_files())
    swarmops.add_app(app, repo.url, backup={
        "volumes": ["uploads"], "schedule": "02:00", "keep": 2,
        "s3": {"bucket": bucket, "access_key_file": str(tmp_path / "access.key"),
               "secret_key_file": str(tmp_path / "secret.key")}})
    swarmops.run("sync", app)
    wait_for(lambda: "./pipe" in volume_files(lab, app), 30, "the app's files in its volume")
    first = volume_files(lab, app)
    assert "./a.txt: first" in first and "./d/b.txt: inner" in first and "./link -> /etc/passwd" in first, first

    for _ in range(3):
        done = swarmops.run("backup", "run", app)
        assert f"bucket {bucket} of the S3 store" in done.stdout, done.stdout
        time.sleep(1)   # ids are to the second
    kept = archives(swarmops, app)
    assert len(kept) == 2 and kept == sorted(kept, reverse=True), kept   # keep: 2, the oldest gone

    in_container(lab, app, ["sh", "-c", "echo changed > /srv/a.txt; rm -r /srv/d; echo junk > /srv/junk.txt"])
    said = swarmops.run("backup", "restore", app, kept[0], "--yes").stdout
    assert f"restored archive {kept[0]} into volume uploads" in said, said
    back = volume_files(lab, app)
    assert "./a.txt: first" in back and "./d/b.txt: inner" in back and "./link -> /etc/passwd" in back, back
    assert "junk" not in back and "./pipe" not in back, back
    status = {s["app"]: s for s in swarmops.json("status")}[app]
    assert status["backup_result"] == "succeeded", status
    # no key reached a job's spec, a log or the history
    for text in (json.dumps(swarmops.json("history", app)), service_log(lab, f"{minio}_minio")):
        assert keys["secret"].decode() not in text

    # the schedule: a running daemon backs the app up when the time comes (it asks every 30 s)
    entry = next(a for a in swarmops.apps if a["name"] == app)
    first_time = next_minute(20)
    entry["backup"]["schedule"] = f"{first_time:%H:%M}"
    swarmops.write()
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen([sys.executable, "-m", "swarmops", "--config", str(swarmops.config), "daemon"],
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: [t for t in scheduled_runs(swarmops, app) if t >= first_time.timestamp()],
                 (first_time - datetime.now(UTC)).total_seconds() + 60, f"the backup at {first_time:%H:%M}", log)
        assert not [t for t in scheduled_runs(swarmops, app) if t < first_time.timestamp()]   # not before its time
    finally:
        daemon.send_signal(signal.SIGKILL)   # killed: no shutdown of its own
        daemon.wait(timeout=30)
    # the next time passes while no daemon runs: the one started after runs that backup once
    second_time = next_minute(5)
    entry["backup"]["schedule"] = f"{second_time:%H:%M}"
    swarmops.write()
    time.sleep(max(0.0, (second_time - datetime.now(UTC)).total_seconds() + 1))
    before = scheduled_runs(swarmops, app)
    swarmops.run("daemon", "--once")
    caught_up = [t for t in scheduled_runs(swarmops, app) if t not in before]
    assert len(caught_up) == 1 and caught_up[0] > second_time.timestamp(), (before, caught_up)
    swarmops.run("daemon", "--once")
    assert len(scheduled_runs(swarmops, app)) == len(before) + 1   # once: not again at the next start
    assert len(archives(swarmops, app)) == 2   # keep: 2 still

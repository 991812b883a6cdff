"""The git source of one app: cheap change detection, a cached clone under state_dir, fetch only
on change, checkout of an exact commit. The only module that knows git."""

from __future__ import annotations

import os
import re
import shlex
import tarfile
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from swarmops.adapters import gitwire
from swarmops.config.models import Auth
from swarmops.domain.commits import LOG_ARGS, LogEntry, parse_batch, parse_commit, parse_numstat
from swarmops.domain.refs import latest_tag
from swarmops.errors import ProcessTimeout, SourceError, StackError
from swarmops.util import process
from swarmops.util.redact import redact_url

ASKPASS = Path(__file__).with_name("askpass.sh")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    email: str
    date: datetime
    message: str

    @property
    def title(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


def git_env(auth: Auth | None, connect_timeout: float) -> dict[str, str]:
    """The environment git needs and nothing more: no global config, no prompts."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "HOME": "/nonexistent"}
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f"ConnectTimeout={max(1, int(connect_timeout))}"]
    if auth and auth.ssh_key_file:
        ssh += ["-i", str(auth.ssh_key_file), "-o", "IdentitiesOnly=yes"]
    if auth and auth.known_hosts_file:
        ssh += ["-o", f"UserKnownHostsFile={auth.known_hosts_file}"]
    env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    if auth and auth.token_file:
        env.update(GIT_ASKPASS=str(ASKPASS), SWARMOPS_TOKEN_FILE=str(auth.token_file),
                   SWARMOPS_TOKEN_USER=auth.token_user)
    return process.minimal_env(env)


_BOILERPLATE = ("could not read from remote repository", "please make sure you have the correct access rights",
                "and the repository exists")


def _cause(stderr: str) -> str:
    """git's own reason, without the fixed advice it prints after every remote failure."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(b in ln.lower() for b in _BOILERPLATE)]
    return redact_url("; ".join(useful[-3:]) or "; ".join(lines[-1:]) or "failed")


class GitSource:
    def __init__(self, url: str, branch: str, cache_dir: Path, auth: Auth | None, timeout: float,
                 net_slots: threading.Semaphore | None = None, tags: str | None = None) -> None:
        self.url = url
        self.branch = branch
        self.tags = tags   # a pattern: the source follows the highest matching tag, not the branch
        self.cache_dir = cache_dir
        self.timeout = timeout
        if auth and auth.token_file and not os.access(auth.token_file, os.R_OK):
            raise SourceError(f"token_file {auth.token_file} does not exist or is not readable by swarmops")
        self._env = git_env(auth, min(timeout, 15))
        self._slots = net_slots
        self._repo: git.Repo | None = None

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)

    def _git(self, *args: str, network: bool = False, cwd: Path | None = None) -> str:
        guard = self._slots if (network and self._slots is not None) else nullcontext()
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        with guard:
            try:
                res = process.run(["git", *args], self._env, self.timeout, cwd=cwd)
            except ProcessTimeout as e:
                raise SourceError(f"git {verb} of {self.shown_url}: {e}") from e
        if res.returncode != 0:
            raise SourceError(f"git {verb} of {self.shown_url} failed: {_cause(res.stderr)}")
        return res.stdout

    @property
    def follows(self) -> str:
        return f"tags {self.tags}" if self.tags else f"branch {self.branch!r}"

    def refs(self) -> dict[str, str]:
        """The remote's refs this source follows (its branch, or its tags), name -> sha, fetching nothing."""
        wanted = "refs/tags/" if self.tags else f"refs/heads/{self.branch}"
        if gitwire.is_git_url(self.url):
            with self._slots if self._slots is not None else nullcontext():
                refs = gitwire.advertised_refs(self.url, self.timeout)
        else:
            out = self._git("ls-remote", "--tags" if self.tags else "--heads", self.url,
                            *([] if self.tags else [wanted]), network=True)
            refs = {name: sha for sha, _, name in (line.partition("\t") for line in out.splitlines())}
        return {name: sha for name, sha in refs.items() if name.startswith(wanted)}

    def head(self) -> str:
        """The commit the source follows on the remote: its branch's, or its highest matching tag's."""
        refs = self.refs()
        if self.tags:
            found = latest_tag(refs, self.tags)
            if found is None:
                raise SourceError(f"no tag matching {self.tags} at {self.shown_url}")
            return found[1]
        ref = f"refs/heads/{self.branch}"
        if ref in refs:
            return refs[ref]
        raise SourceError(f"branch {self.branch!r} not found at {self.shown_url}")

    def push(self, commit: str, ref: str) -> None:
        """Make `commit`, which the cache holds, the head of branch `ref` (a fast-forward only), or of the new
        tag `ref` when it starts with refs/tags/ (never moving one that exists), with the same credentials as
        the fetches (SourceError with git's reason otherwise)."""
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise SourceError(f"{commit!r} is not a commit id")
        self.ensure(commit)
        target = ref if ref.startswith("refs/tags/") else f"refs/heads/{ref}"
        self._git("push", "-q", self.url, f"{commit}:{target}", network=True, cwd=self.cache_dir)

    def _has(self, commit: str) -> bool:
        """Whether the cache holds `commit` as a commit, asked of the source's own `git cat-file` (which
        finds what a fetch has added since it started: git looks at the packs again on a miss)."""
        if not (self.cache_dir / "HEAD").is_file():
            return False
        try:
            # the object's type asked of the cat-file: a commit (a tag resolves to its commit), not a tree
            found = self._commit(commit)
            return bool(found.repo.odb.info(found.binsha).type == b"commit")
        except (SourceError, ValueError, git.exc.GitError, git.exc.ODBError):
            return False

    def ensure(self, commit: str) -> None:
        """Make `commit` present in the bare cache, fetching the branch only when it is missing."""
        if self._has(commit):
            return
        if not (self.cache_dir / "HEAD").is_file():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "--bare", cwd=self.cache_dir)
        spec = f"refs/tags/{self.tags}" if self.tags else f"refs/heads/{self.branch}"
        self._git("fetch", "-q", "--no-tags", self.url, f"+{spec}:{spec}", network=True, cwd=self.cache_dir)
        if not self._has(commit):
            raise SourceError(f"commit {commit[:12]} is not on {self.follows} of {self.shown_url}")

    def export(self, commit: str, path: str, dest: Path) -> Path:
        """Write the tree at `path` of `commit` to `dest`: exactly what git holds, nothing else."""
        self.ensure(commit)
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest.with_name(dest.name + ".tar")
        treeish = f"{commit}:{path}" if path not in ("", ".") else commit
        self._git("archive", "--format=tar", "-o", str(archive), treeish, cwd=self.cache_dir)
        try:
            with tarfile.open(archive) as tar:
                _extract(tar, dest)
        except (tarfile.TarError, OSError) as e:
            raise SourceError(f"cannot unpack {path or 'the repo'} of {commit[:12]}: {e}") from e
        finally:
            archive.unlink(missing_ok=True)
        return dest

    def _commit(self, commit: str) -> git.Commit:
        # one Repo for this source's life (a source is made for one piece of work, in one thread): each Repo
        # starts its own `git cat-file` processes, and a first deploy asked for four or five of them; they
        # end with the source
        try:
            if self._repo is None:
                self._repo = git.Repo(self.cache_dir)
            return self._repo.commit(commit)
        except (git.exc.GitError, git.exc.ODBError, ValueError):   # a short or malformed sha: BadName
            raise SourceError(f"commit {commit[:12]} is not in the cache of {self.shown_url}; fetch it first") from None

    def info(self, commit: str) -> CommitInfo:
        c = self._commit(commit)
        message = c.message if isinstance(c.message, str) else c.message.decode("utf-8", "replace")
        return CommitInfo(sha=c.hexsha, author=str(c.author.name), email=str(c.author.email),
                          date=datetime.fromtimestamp(c.committed_date, UTC), message=message.strip())

    def object_id(self, commit: str, path: str) -> str:
        """Git object id of a tree or blob at `path` in `commit` ('' is the root tree)."""
        tree = self._commit(commit).tree
        try:
            return str(tree.hexsha if path in ("", ".") else (tree / path).hexsha)
        except KeyError:
            raise SourceError(f"{path!r} does not exist in commit {commit[:12]}") from None

    def log(self, commit: str, since: datetime | None = None, until: datetime | None = None, skip: int = 0,
            limit: int = 50) -> list[LogEntry]:
        """The history reachable from `commit`, newest first, with each commit's files and line counts;
        authors through the commit's .mailmap."""
        self.ensure(commit)
        args = [*LOG_ARGS, f"--skip={max(0, skip)}", f"--max-count={max(1, limit)}"]
        args += [f"--since={since.isoformat()}"] if since else []
        args += [f"--until={until.isoformat()}"] if until else []
        listing = parse_numstat(self._git(*args, commit, "--", cwd=self.cache_dir))
        objects = parse_batch(self._batch([sha for sha, _ in listing]))
        commits = {sha: parse_commit(objects.get(sha, b"")) for sha, _ in listing}
        idents = self._mailmap(commit, sorted({(c.author, c.email) for c in commits.values()}))
        return [LogEntry(sha, c.parents, *idents.get((c.author, c.email), (c.author, c.email)), c.date, c.message,
                         files) for (sha, files), c in ((item, commits[item[0]]) for item in listing)]

    def _batch(self, shas: list[str]) -> bytes:
        try:
            code, out, err = process.run_bytes(["git", "cat-file", "--batch"], self._env, self.timeout,
                                               "".join(f"{s}\n" for s in shas).encode(), cwd=self.cache_dir)
        except ProcessTimeout as e:
            raise SourceError(f"git cat-file in {self.cache_dir}: {e}") from e
        if code != 0:
            raise SourceError(f"git cat-file in {self.cache_dir} failed: {_cause(err)}")
        return out

    def _mailmap(self, commit: str, idents: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        """(name, email) -> as the commit's .mailmap maps them; none when the commit has no .mailmap."""
        # one output line per ident, split on \n alone: str.splitlines also ends a line at \x1c-\x1e, \x85 and
        # \u2028, which a name may hold, and would hand every later ident another one's name (text mode turns
        # \r into \n: such names, like those argv cannot carry, are left as they are)
        usable = [(n, e) for n, e in idents if not set("<>\n\r\0") & set(n + e)]
        if not usable or not self._exists(commit, ".mailmap"):
            return {}
        out = self._git("-c", f"mailmap.blob={commit}:.mailmap", "check-mailmap", "--",
                        *(f"{n} <{e}>" for n, e in usable), cwd=self.cache_dir)
        mapped = {}
        for ident, line in zip(usable, out.split("\n"), strict=False):
            name, _, email = line.rpartition(" <")
            mapped[ident] = (name, email.removesuffix(">"))
        return mapped

    def _exists(self, commit: str, path: str) -> bool:
        try:
            self._commit(commit).tree / path
        except KeyError:
            return False
        return True

    def read(self, commit: str, path: str, limit: int | None = None) -> bytes:
        """A file of the commit; one larger than `limit` is refused before it is read."""
        try:
            blob = self._commit(commit).tree / path
        except KeyError:
            raise SourceError(f"{path!r} does not exist in commit {commit[:12]} of {self.shown_url}") from None
        if blob.type != "blob":
            raise SourceError(f"{path!r} in commit {commit[:12]} is a directory, not a file")
        if blob.mode == SYMLINK_MODE:
            raise StackError(f"{path}: a symbolic link in the repo; commit the file itself")
        if limit is not None and blob.size > limit:
            raise StackError(f"{path}: {blob.size} bytes, more than the {limit} allowed; make it smaller")
        data: bytes = blob.data_stream.read()
        return data


SYMLINK_MODE = 0o120000


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack with the "data" filter (no absolute paths, nothing outside dest, no devices). Python 3.11.2,
    Debian bookworm's, predates extraction filters: there, the same checks are made here first."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        link = (target.parent / member.linkname).resolve() if member.issym() else root / member.linkname
        if (not target.is_relative_to(root) or member.isdev() or member.name.startswith("/")
                or ((member.issym() or member.islnk()) and not link.resolve().is_relative_to(root))):
            raise tarfile.TarError(f"{member.name!r} would be written outside the export, or is a device")
    tar.extractall(dest)   # members checked above


def remote_branch_head(url: str, branch: str, auth: Auth | None, timeout: float) -> str | None:
    """The branch's commit at `url`, or None when the branch does not exist (an empty remote)."""
    try:
        return GitSource(url, branch, Path("/nonexistent"), auth, timeout).head()
    except SourceError as e:
        if "not found at" in str(e):
            return None
        raise


def push_new_repo(work: Path, url: str, branch: str, message: str, author: str, auth: Auth | None,
                  timeout: float) -> str:
    """Commit everything in `work` as the first commit and push it to `branch` at `url`."""
    name, _, email = author.partition(" <")
    env = {**git_env(auth, min(timeout, 15)), "GIT_AUTHOR_NAME": name, "GIT_COMMITTER_NAME": name,
           "GIT_AUTHOR_EMAIL": email.rstrip(">"), "GIT_COMMITTER_EMAIL": email.rstrip(">")}
    for args in (["init", "-q", "-b", branch], ["add", "-A"], ["commit", "-q", "-m", message],
                 ["push", "-q", url, f"HEAD:refs/heads/{branch}"]):
        try:
            res = process.run(["git", *args], env, timeout, cwd=work)
        except ProcessTimeout as e:
            raise SourceError(f"git {args[0]} to {redact_url(url)}: {e}") from e
        if res.returncode != 0:
            raise SourceError(f"git {args[0]} to {redact_url(url)} failed: {_cause(res.stderr)}")
    return process.run(["git", "rev-parse", "HEAD"], env, timeout, cwd=work).stdout.strip()


def shallow_clone(url: str, ref: str | None, dest: Path, timeout: float) -> Path:
    """A shallow clone of `ref` (tag or branch) for reading files, e.g. a template's copier.yml."""
    args = ["clone", "-q", "--depth", "1", *(["--branch", ref] if ref else []), url, str(dest)]
    res = process.run(["git", *args], git_env(None, min(timeout, 15)), timeout)
    if res.returncode != 0:
        raise SourceError(f"git clone of {redact_url(url)} failed: {_cause(res.stderr)}")
    return dest

"""Problem and security reports: the rules a report must pass, the issue it becomes, and the queue that
files it at the forge (GitHub, or Gitea/Forgejo) and retries while the forge is down. A report is stored
before anything is sent, so a forge that is away loses nothing; one that cannot be filed for a reason retrying
will not fix (no repository known for the app) leaves the queue as `refused` and is logged for the ops team."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import httpx

from polise.i18n import N_, OFFICE_ZONE
from polise.store import Report, Store

log = logging.getLogger("polise.reports")
KINDS = ("problem", "security")
MAX_TITLE = 200
MAX_BODY = 10_000
PER_HOUR = 5                     # reports a user may file in an hour
FIRST_RETRY = 30.0               # seconds; doubled after each failure, up to an hour
LAST_RETRY = 3600.0


class ReportRefused(Exception):
    """A report that breaks a rule: the message (an i18n.Text) tells the user what to change."""


class TooManyReports(ReportRefused):
    """The hourly limit: answered 429, with the hour as Retry-After (the latest the user may have to wait)."""


@dataclass(frozen=True)
class ForgeSettings:
    kind: Literal["github", "gitea"]
    api_url: str                       # https://api.github.com, or https://git.example.go.id/api/v1
    token: str
    security_repo: str | None = None   # owner/name of a private repo; without it, a label on the app's repo
    security_label: str = "security"


def check(kind: str, title: str, body: str, filed_last_hour: int) -> None:
    if kind not in KINDS:
        raise ReportRefused(N_("Unknown kind of report %(kind)r: choose a problem or a security problem.", kind=kind))
    if not title.strip() or not body.strip():
        raise ReportRefused(N_("A report needs a title and a description."))
    if len(title) > MAX_TITLE:
        raise ReportRefused(N_("The title is %(length)d characters long: at most %(most)d.",
                               length=len(title), most=MAX_TITLE))
    if len(body) > MAX_BODY:
        raise ReportRefused(N_("The description is %(length)d characters long: at most %(most)d.",
                               length=len(body), most=MAX_BODY))
    if filed_last_hour >= PER_HOUR:
        raise TooManyReports(N_("You filed %(count)d reports in the last hour: wait a while (at most %(most)d an "
                               "hour).", count=filed_last_hour, most=PER_HOUR))


_REPO = re.compile(r"^(?:https?://[^/]+/|ssh://[^/]+/|[^@/]+@[^:/]+:)(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")
# why a report is not filed yet, in words its reporter reads on /me/reports; the first ones are retried
RETRIED = {"unreachable": N_("the issue tracker did not answer"),
           "access": N_("the issue tracker did not accept Polise's access key"),
           "fault": N_("the issue tracker had a fault")}
# reasons that retrying will not fix: the report leaves the queue and the ops team is told
PERMANENT = {"no_repo": N_("no issue tracker repository is known for this app"),
             "repo_not_found": N_("the app's repository does not exist on the issue tracker"),
             "invalid": N_("the issue tracker did not accept the report as it is")}
REASONS = {**RETRIED, **PERMANENT}


class NotFiled(Exception):
    """A report the filer could not file. `reason` is a key of REASONS (the pages translate it, the filer
    decides on it); the message is for the log."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def permanent(self) -> bool:
        return self.reason in PERMANENT


def reference(report: Report, zone: ZoneInfo) -> str:
    """The number a person quotes on the phone: LAP-2026-000123 (the year it was sent, in the office's zone)."""
    return f"LAP-{report.created.astimezone(zone).year}-{report.id:06d}"


def owner_repo(url: str) -> str | None:
    """`owner/name` of a repo URL (https, ssh:// or scp-like); None for one no forge serves (file://)."""
    found = _REPO.match(url.strip())
    return f"{found['owner']}/{found['name']}" if found else None


def issue_for(report: Report, forge: ForgeSettings) -> tuple[str, dict[str, Any]]:
    """The repo (owner/name) the issue goes to and the issue's JSON: the app entry's forge_repo, else the
    one its repo URL names; a security report goes to the private repo when the config names one."""
    security = report.kind == "security"
    app_repo = report.forge_repo or owner_repo(report.repo)
    repo = forge.security_repo if security and forge.security_repo else app_repo
    if repo is None:
        raise NotFiled(f"no forge repository for app {report.app}: its entry has no forge_repo and its repo "
                       f"{report.repo!r} names none", "no_repo")
    # the address only where the issue is private: the app's repo may be public (the privacy notice says so)
    private = security and bool(forge.security_repo)
    who = f"{report.user_name} <{report.user_email}>" if report.user_email and private else report.user_name
    body = (f"{report.body}\n\n---\n"
            f"Reported through Polise by {who} (`{report.user_sub}`)\n"
            f"App: `{report.app}`, deployed commit `{report.commit_sha or 'unknown'}`\n"
            f"Page: {report.page or '-'}\n")
    title = f"[{report.app}] {report.title}" if repo != app_repo else report.title
    issue: dict[str, Any] = {"title": title, "body": body}
    if security and not forge.security_repo and forge.kind == "github":
        issue["labels"] = [forge.security_label]
    return repo, issue


class Forge(Protocol):
    def create_issue(self, repo: str, issue: dict[str, Any]) -> tuple[str, int]: ...


def _reason_of(status: int) -> str:
    if status in (401, 403):
        return "access"
    if status in (404, 410):
        return "repo_not_found"
    return "invalid" if status == 422 else "fault"


class ForgeClient:
    def __init__(self, settings: ForgeSettings, timeout: float = 10.0) -> None:
        auth = f"Bearer {settings.token}" if settings.kind == "github" else f"token {settings.token}"
        self._http = httpx.Client(base_url=settings.api_url.rstrip("/"), timeout=timeout, trust_env=False,
                                  headers={"Authorization": auth, "Accept": "application/json"})

    def create_issue(self, repo: str, issue: dict[str, Any]) -> tuple[str, int]:
        try:
            resp = self._http.post(f"/repos/{repo}/issues", json=issue)
        except httpx.HTTPError as e:
            raise NotFiled(f"the forge did not answer: {type(e).__name__}", "unreachable") from None
        if resp.status_code != 201:
            raise NotFiled(f"the forge answered {resp.status_code} for {repo}", _reason_of(resp.status_code))
        found = resp.json()
        return str(found["html_url"]), int(found["number"])


def submit(store: Store, *, app: str, kind: str, user_sub: str, user_name: str, user_email: str, title: str,
           body: str, page: str, commit_sha: str, repo: str, forge_repo: str = "",
           now: datetime | None = None) -> int:
    """Check the rules and store the report (queued); the filer sends it."""
    now = now or datetime.now(UTC)
    check(kind, title, body, store.reports_since(user_sub, now - timedelta(hours=1)))
    return store.add_report(app=app, kind=kind, user_sub=user_sub, user_name=user_name, user_email=user_email,
                            title=title.strip(), body=body, page=page, commit_sha=commit_sha, repo=repo,
                            forge_repo=forge_repo)


class OpsWebhook:
    """The ops team's chat (POLISE_OPS_WEBHOOK_URL: an incoming webhook of Mattermost, Rocket.Chat, Slack or
    Matrix hookshot, which all read {"text": ...}). A chat that does not answer is logged, never raised: the
    report is already out of the queue and counted in /status.json."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout

    def __call__(self, text: str) -> None:
        try:
            httpx.post(self.url, json={"text": text}, timeout=self.timeout, trust_env=False).raise_for_status()
        except httpx.HTTPError as e:
            log.warning("the ops team's webhook did not take the message: %s", type(e).__name__)


def file_due(store: Store, forge: Forge, settings: ForgeSettings, now: datetime | None = None,
             zone: ZoneInfo | None = None, notify: Callable[[str], None] | None = None) -> int:
    """File every queued report that is due. A failure that retrying may fix is retried later with a longer
    wait; one it will not fix takes the report out of the queue, and the ops team is told (a WARNING line,
    and `notify`, the ops webhook, when one is set; /status.json counts them). Returns how many were filed."""
    now, zone = now or datetime.now(UTC), zone or ZoneInfo(OFFICE_ZONE)
    filed = 0
    for report in store.due(now):
        try:
            repo, issue = issue_for(report, settings)
            url, number = forge.create_issue(repo, issue)
        except NotFiled as e:
            if e.permanent:
                store.refused(report.id, e.reason, str(e))
                told = (f"Polise: report {reference(report, zone)} of app {report.app} cannot be filed and is not "
                        f"retried: {e}. File it by hand or fix the app entry (forge_repo).")
                log.warning("%s", told)
                if notify is not None:
                    notify(told)
                continue
            wait = min(LAST_RETRY, FIRST_RETRY * 2 ** report.attempts)
            store.retry_later(report.id, e.reason, str(e), now + timedelta(seconds=wait))
            log.warning("report %s of app %s not filed (%s); next try in %.0f s", reference(report, zone),
                        report.app, e, wait)
            continue
        store.filed(report.id, url, number)
        filed += 1
    return filed

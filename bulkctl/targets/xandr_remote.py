"""The Xandr Batch Segment Service's protocol steps (seed 003): log in, jobs, uploads, status.

Each file: ask for a job (`POST /batch-segment?member_id=N` → job id and upload URL), then
POST the file to the upload URL at once, since the URL expires 5 minutes after it is issued
(files are compressed before the job is asked for; an upload that fails after the URL expired
asks for a new job, once). `GET /batch-segment?member_id=N&job_id=J` tells the job's phase;
without `job_id` it lists the member's uploads, 100 a page from `start_element`.
Authentication: `POST /auth` → a token valid 2 hours, sent as `Authorization: <token>`; a
`NOAUTH` answer logs in again once and repeats the request. The upload URL carries its own
authorization, so the token is not sent there (it may be another host).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import orjson

from bulkctl.errors import ApiError, CredentialsError
from bulkctl.pack.parts import Part
from bulkctl.redact import redact_url
from bulkctl.send import answers
from bulkctl.send.answers import EXCERPT_CHARS, excerpt
from bulkctl.send.http import Reply, RequestSpec, is_loopback_host
from bulkctl.send.remote import RETRY_AFTER, Call, HistoryPage, RemoteStatus, SendResult

if TYPE_CHECKING:
    from bulkctl.settings import Secret

DEFAULT_MIN_INTERVAL = 60.0  # "do not exceed one upload per minute"
TOKEN_LIFETIME = 7200.0
TOKEN_MARGIN = 300.0  # log in again this long before the token's two hours are up
URL_LIFETIME = 300.0
PAGE_SIZE = 100
FINAL_PHASES = frozenset({"completed", "error"})
COUNT_FIELDS = (
    "num_valid",
    "num_invalid_format",
    "num_valid_user",
    "num_invalid_user",
    "num_invalid_segment",
    "num_invalid_timestamp",
    "num_unauth_segment",
    "num_past_expiration",
    "num_inactive_segment",
    "num_other_error",
)
# Every count but the valid ones says the API dropped something: a job that completed with
# any of them above 0 did not apply everything it was sent (exit 5).
REJECTION_FIELDS = tuple(name for name in COUNT_FIELDS if not name.startswith("num_valid"))


@dataclass(frozen=True)
class XandrLogin:
    """A Xandr API user name and password (the password never shown)."""

    username: str
    password: Secret


@dataclass(frozen=True, slots=True)
class _Job:
    job_id: str
    upload_url: str
    issued: float


@dataclass
class _Token:
    value: str = ""
    issued: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class XandrRemote:
    """Per file: a job, its upload; `status` and `history` read jobs back (a `JobsRemote`).

    No session: every uploaded file is processed, and nothing can withdraw it. The first
    request logs in (`_current_token`), and every request carries the token itself.
    """

    noun = "job"
    auth = None  # a token a request, not one header for all
    rate_limit_headers = RETRY_AFTER

    def __init__(
        self,
        endpoint: str,
        login: XandrLogin,
        member_id: int,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.member_id = member_id
        self.min_interval = min_interval
        self._login = login
        self._clock = clock
        self._token = _Token()

    def __repr__(self) -> str:
        return f"XandrRemote({self.endpoint!r}, member_id={self.member_id})"  # never secrets

    # -- steps ---------------------------------------------------------------------------

    def send(self, call: Call, part: Part) -> SendResult:
        job = self._new_job(call)
        try:
            self._upload(call, job, part)
        except ApiError:
            if self._clock() - job.issued <= URL_LIFETIME:
                raise
            job = self._new_job(call)  # the upload URL expired meanwhile: ask again, once
            self._upload(call, job, part)
        return SendResult(job.job_id)  # what it applied, the job's status tells later

    def job_options(self) -> dict[str, Any]:
        return {"member_id": self.member_id}

    def status(self, call: Call, remote_id: str) -> RemoteStatus:
        url = self._url("/batch-segment", member_id=self.member_id, job_id=remote_id)
        reply = self._authorized(call, f"status of job {remote_id}", "GET", url)
        job = _one_job(_response(reply, f"status of job {remote_id}"), remote_id)
        return _status(job, remote_id)

    def history(self, call: Call, start: int) -> HistoryPage:
        url = self._url(
            "/batch-segment",
            member_id=self.member_id,
            start_element=start,
            num_elements=PAGE_SIZE,
        )
        response = _response(self._authorized(call, "upload history", "GET", url), "upload history")
        raw = response.get("batch_segment_upload_job") or []
        jobs = raw if isinstance(raw, list) else [raw]
        statuses = tuple(_status(j, str(j.get("job_id", ""))) for j in jobs if isinstance(j, dict))
        count = response.get("count")
        total = count if isinstance(count, int) else None
        end = start + len(statuses)
        more = (bool(statuses) and end < total) if total is not None else len(statuses) == PAGE_SIZE
        return HistoryPage(statuses, total, end if more else None)

    # -- requests ------------------------------------------------------------------------

    def _url(self, path: str, **query: Any) -> str:
        return f"{self.endpoint}{path}?{urlencode(query)}"

    def _authenticate(self, call: Call) -> str:
        body = {
            "auth": {"username": self._login.username, "password": self._login.password.reveal()}
        }
        spec = RequestSpec(
            "authentication",
            "POST",
            f"{self.endpoint}/auth",
            headers=(("Content-Type", "application/json"),),
            content=orjson.dumps(body),
        )
        reply = call(spec)
        if reply.status_code in (401, 403) or _error_id(reply) in ("NOAUTH", "UNAUTH"):
            raise CredentialsError(
                f"Xandr refused the user name or password (HTTP {reply.status_code})",
                hint="check BULKCTL_XANDR_USERNAME and BULKCTL_XANDR_PASSWORD or the profile",
            )
        token = _response(reply, "authentication").get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(f"authentication: the answer has no token{excerpt(reply)}")
        self._token.value, self._token.issued = token, self._clock()
        return token

    def _current_token(self, call: Call) -> str:
        with self._token.lock:
            age = self._clock() - self._token.issued
            if not self._token.value or age > TOKEN_LIFETIME - TOKEN_MARGIN:
                return self._authenticate(call)
            return self._token.value

    def _authorized(
        self, call: Call, label: str, method: str, url: str, content: bytes = b""
    ) -> Reply:
        """A request with the token; on NOAUTH log in again once and repeat it."""

        def spec(token: str) -> RequestSpec:
            headers = [("Authorization", token)]
            if method == "POST":
                headers.append(("Content-Type", "application/json"))
            return RequestSpec(label, method, url, headers=tuple(headers), content=content)

        reply = call(spec(self._current_token(call)))
        if _error_id(reply) != "NOAUTH":
            return reply
        with self._token.lock:
            token = self._authenticate(call)
        reply = call(spec(token))
        if _error_id(reply) == "NOAUTH":
            raise CredentialsError(
                f"{label}: Xandr refused a fresh token too (NOAUTH)",
                hint="check that the user may use the Batch Segment Service for this member",
            )
        return reply

    def _new_job(self, call: Call) -> _Job:
        label = "request for an upload job"
        url = self._url("/batch-segment", member_id=self.member_id)
        response = _response(self._authorized(call, label, "POST", url), label)
        job = _one_job(response, "")
        job_id, upload_url = job.get("job_id"), job.get("upload_url")
        if not isinstance(job_id, str) or not job_id or not isinstance(upload_url, str):
            raise ApiError(f"{label}: the answer has no job_id and upload_url")
        _check_upload_url(upload_url)
        return _Job(job_id, upload_url, self._clock())

    def _upload(self, call: Call, job: _Job, part: Part) -> None:
        label = f"upload of file {part.number} (job {job.job_id})"
        spec = RequestSpec(
            label,
            "POST",
            job.upload_url,
            headers=(
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(part.bytes_compressed)),
            ),
            body_file=part.path,
        )
        reply = call(spec)
        if reply.status_code == 413:
            raise ApiError(
                f"file {part.number} was too large for Xandr (HTTP 413)",
                hint="lower --part-size",
                status_code=413,
            )
        if reply.body.strip():
            _response(reply, label)  # an answer with a body must say OK
        else:
            _raise_for_status(reply, label)


def _check_upload_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ApiError("the job's upload_url is not a URL")
    if parts.scheme != "https" and not (
        parts.scheme == "http" and is_loopback_host(parts.hostname)
    ):
        raise ApiError(f"the job's upload_url {redact_url(url)} is not https: not uploading there")


# -- answers ------------------------------------------------------------------------------------


def _document(reply: Reply) -> Mapping[str, Any]:
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return {}
    inner = data.get("response") if isinstance(data, dict) else None
    return inner if isinstance(inner, dict) else {}


def _error_id(reply: Reply) -> str | None:
    value = _document(reply).get("error_id")
    return value if isinstance(value, str) else None


def _raise_for_status(reply: Reply, label: str) -> None:
    answers.raise_for_status(
        reply,
        label,
        refused=f"{label}: Xandr refused the credentials",
        refused_hint="check the user's access to the member (--member-id)",
    )


def _response(reply: Reply, label: str) -> Mapping[str, Any]:
    """The `response` object of a 2xx answer whose status is OK; else the error it means."""
    _raise_for_status(reply, label)
    document = _document(reply)
    status = document.get("status")
    if status != "OK":
        error = document.get("error") or document.get("error_id") or "no status OK"
        raise ApiError(
            f"{label} failed: {str(error)[:EXCERPT_CHARS]}", status_code=reply.status_code
        )
    return document


def _one_job(response: Mapping[str, Any], remote_id: str) -> Mapping[str, Any]:
    """`batch_segment_upload_job`: an object, or (data-provider logins) a one-element array."""
    job = response.get("batch_segment_upload_job")
    if isinstance(job, list) and len(job) == 1:
        job = job[0]
    if not isinstance(job, dict):
        what = f"job {remote_id}" if remote_id else "the job"
        raise ApiError(f"the answer about {what} has no batch_segment_upload_job")
    return job


def _status(job: Mapping[str, Any], remote_id: str) -> RemoteStatus:
    phase = str(job.get("phase") or "unknown")
    percent = job.get("percent_complete")
    counts = {name: job[name] for name in COUNT_FIELDS if isinstance(job.get(name), int)}
    lines = job.get("error_log_lines")
    error = job.get("error_code")
    return RemoteStatus(
        remote_id=str(job.get("job_id") or remote_id),
        phase=phase,
        final=phase in FINAL_PHASES,
        failed=phase == "error",
        percent=float(percent) if isinstance(percent, int | float) else None,
        counts=counts,
        error=str(error) if error else None,
        error_lines=tuple(line for line in lines.splitlines() if line.strip())
        if isinstance(lines, str)
        else (),
        created=str(job["created_on"]) if job.get("created_on") else None,
        rejected={name: counts[name] for name in REJECTION_FIELDS if counts.get(name)},
    )

"""The Xandr Batch Segment Service (seed 003), emulated: auth, jobs, upload URLs, phases.

`POST /auth` gives a token (any user name and password unless `XandrConfig.login` is set),
sent back as `Authorization: <token>`; an unknown or expired one is answered 401 `NOAUTH`.
`POST /batch-segment?member_id=N` creates a job whose `upload_url` is on this same server and
expires after `url_lifetime`; `POST` the gzip file there (no token needed, as the URL carries
its own code). The file is parsed at once with the member's format (`xandr_files`), but the job
reveals it over polls: each `GET /batch-segment?member_id=N&job_id=J` moves it one phase on,
uploading → validating → processing → completed (or error), `polls_per_phase` polls a phase.
`GET /batch-segment?member_id=N` lists the jobs, 100 a page from `start_element`.

Faults for tests: `token_uses` makes every token stop working after that many requests (how a
test expires a token without waiting), `fail_jobs` ends every job in `error` with that code,
`known_segments` (`bulkctl sandbox --xandr-segments`) counts every other segment id in
`num_invalid_segment`, so a job completes with rejections,
and the server's `--status-for auth|batch-segment|batch-segment-status|segment-upload=429`
with `--retry-after` throttles.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bulkctl.sandbox.server import BodyError, BodyReader, Request, Response, Route, route
from bulkctl.sandbox.xandr_files import FileError, FileReport, JobTables, read_file
from bulkctl.targets.xandr_format import DEFAULT_FIELDS, DEFAULT_SEPARATORS, LineFormat

PHASES = ("starting", "uploading", "validating", "processing", "completed")
PERCENT = {"starting": 0, "uploading": 25, "validating": 50, "processing": 75, "completed": 100}
PAGE_LIMIT = 100
_BODY_LIMIT = 100_000


@dataclass(frozen=True)
class XandrConfig:
    """How the emulated service behaves; the defaults act like a freshly configured member."""

    login: tuple[str, str] | None = None  # (user name, password) required; None: any
    fields: tuple[str, ...] = DEFAULT_FIELDS
    separators: tuple[str, str, str] = DEFAULT_SEPARATORS
    data_provider: bool = False  # answer a job as a one-element array
    token_lifetime: float = 7200.0
    token_uses: int | None = None  # a token stops working after this many requests
    url_lifetime: float = 300.0
    polls_per_phase: int = 1
    fail_jobs: str | None = None  # every job ends in `error` with this error_code
    known_segments: frozenset[int] | None = None  # None: every segment id exists
    max_file_bytes: int = 500_000_000
    error_lines: int = 200


@dataclass
class _Token:
    issued: float
    uses: int = 0


@dataclass
class _Job:
    number: int
    job_id: str
    member_id: int
    code: str
    issued: float
    created_on: str
    phase: str = "starting"
    polls: int = 0
    uploaded: bool = False
    report: FileReport | None = None
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _answer(code: int, /, **response: Any) -> Response:
    return Response(code, {"response": response})


def _error(status: int, error_id: str, message: str) -> Response:
    return _answer(status, status="error", error_id=error_id, error=message)


class XandrEmulator:
    """Jobs of the Batch Segment Service, in memory, recorded in the warehouse file."""

    def __init__(
        self,
        warehouse: Path,
        config: XandrConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or XandrConfig()
        self._format = LineFormat(self.config.fields, self.config.separators)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._jobs: dict[str, _Job] = {}
        self._tables = JobTables(warehouse)

    def __repr__(self) -> str:
        return "XandrEmulator()"  # never the login

    def routes(self) -> Sequence[Route]:
        return [
            route("POST", r"/auth", "auth", self._auth),
            route("POST", r"/batch-segment", "batch-segment", self._create),
            route("GET", r"/batch-segment", "batch-segment-status", self._read),
            route("POST", r"/segment-upload/(?P<job>[^/]+)", "segment-upload", self._upload),
        ]

    def authorize(self, request: Request) -> Response | None:
        if request.endpoint in ("auth", "segment-upload"):
            return None
        token = request.headers.get("authorization", "").strip()
        now = self._clock()
        with self._lock:
            known = self._tokens.get(token)
            if known is not None:
                known.uses += 1
                limit = self.config.token_uses
                fresh = now - known.issued <= self.config.token_lifetime
                if fresh and (limit is None or known.uses <= limit):
                    return None
        return _error(401, "NOAUTH", "Authentication failed - not logged in")

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            for token in [t for t, v in self._tokens.items() if now - v.issued > 2 * 7200]:
                del self._tokens[token]

    def close(self) -> None:
        self._tables.close()

    # -- endpoints -------------------------------------------------------------------------

    def _auth(self, request: Request) -> Response:
        try:
            document = orjson.loads(request.body.read_all(_BODY_LIMIT))
        except (orjson.JSONDecodeError, BodyError):
            document = None
        auth = document.get("auth") if isinstance(document, dict) else None
        if not isinstance(auth, dict) or not auth.get("username") or not auth.get("password"):
            return _error(400, "SYNTAX", 'send {"auth": {"username": ..., "password": ...}}')
        wanted = self.config.login
        if wanted is not None:
            good_user = hmac.compare_digest(str(auth["username"]), wanted[0])
            good_password = hmac.compare_digest(str(auth["password"]), wanted[1])
            if not (good_user and good_password):
                return _error(401, "UNAUTH", "No match found for user/pass")
        token = f"hbapi:{secrets.token_hex(12)}"
        with self._lock:
            self._tokens[token] = _Token(self._clock())
        return _answer(200, status="OK", token=token)

    def _member(self, request: Request) -> int | Response:
        text = request.query.get("member_id", "")
        if not text.isdigit() or int(text) < 1:
            return _error(400, "SYNTAX", "member_id is required, a positive integer")
        return int(text)

    def _create(self, request: Request) -> Response:
        member = self._member(request)
        if isinstance(member, Response):
            return member
        host = request.headers.get("host", "127.0.0.1")
        with self._lock:
            number = len(self._jobs) + 1
            job = _Job(
                number,
                secrets.token_hex(10),
                member,
                secrets.token_urlsafe(12),
                self._clock(),
                _now(),
            )
            self._jobs[job.job_id] = job
        self._tables.record(job.job_id, member, job.created_on, job.phase)
        url = f"http://{host}/segment-upload/{job.job_id}?code={job.code}"
        return _answer(
            200, status="OK", batch_segment_upload_job=self._view(job) | {"upload_url": url}
        )

    def _read(self, request: Request) -> Response:
        member = self._member(request)
        if isinstance(member, Response):
            return member
        job_id = request.query.get("job_id")
        if job_id is not None:
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.member_id != member:
                    return _error(404, "NOT_FOUND", f"no job {job_id} for member {member}")
                ended = self._advance(job)
                view = self._view(job)
            if ended:
                self._record_end(job)
            shown: Any = [view] if self.config.data_provider else view
            return _answer(200, status="OK", batch_segment_upload_job=shown)
        return self._history(request, member)

    def _history(self, request: Request, member: int) -> Response:
        start_text = request.query.get("start_element", "0")
        size_text = request.query.get("num_elements", str(PAGE_LIMIT))
        if not start_text.isdigit() or not size_text.isdigit():
            return _error(400, "SYNTAX", "start_element and num_elements are integers")
        start, size = int(start_text), min(int(size_text), PAGE_LIMIT)
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.member_id == member]
            page = [self._view(j) for j in jobs[start : start + size]]
        return _answer(
            200,
            status="OK",
            count=len(jobs),
            start_element=start,
            num_elements=size,
            batch_segment_upload_job=page,
        )

    def _upload(self, request: Request) -> Response:
        job_id = request.params["job"]
        with self._lock:
            job = self._jobs.get(job_id)
        code = request.query.get("code", "")
        if job is None or not hmac.compare_digest(code, job.code):
            return _error(404, "NOT_FOUND", "no such upload URL")
        if self._clock() - job.issued > self.config.url_lifetime:
            return _error(400, "EXPIRED", "the upload URL expired: request a new job")
        if job.uploaded:
            return _error(400, "USED", "a file was already uploaded for this job")
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/octet-stream"
        ):
            return _error(400, "SYNTAX", "send the file as Content-Type: application/octet-stream")
        try:
            report: FileReport | None = read_file(
                _chunks(request.body),
                self._format,
                max_bytes=self.config.max_file_bytes,
                known_segments=self.config.known_segments,
                max_error_lines=self.config.error_lines,
            )
            error_code = self.config.fail_jobs
        except FileError as exc:
            report, error_code = None, exc.code
            _drain(request.body)
        with self._lock:
            job.uploaded = True
            job.report = report
            job.error_code = error_code
            job.phase = "uploading"
            view = self._view(job)
        return _answer(200, status="OK", batch_segment_upload_job=view)

    # -- jobs ------------------------------------------------------------------------------

    def _advance(self, job: _Job) -> bool:
        """One poll of a job after its upload; True when this poll made it final."""
        if not job.uploaded or job.phase in ("completed", "error"):
            return False
        job.polls += 1
        if job.polls % max(self.config.polls_per_phase, 1):
            return False
        following = PHASES[PHASES.index(job.phase) + 1]
        if job.error_code is not None and following in ("processing", "completed"):
            job.phase = "error"
            return True
        job.phase = following
        return following == "completed"

    def _record_end(self, job: _Job) -> None:
        report = job.report
        rows = report.rows if report is not None and job.phase == "completed" else []
        counts = report.counts if report is not None else {}
        self._tables.finish(job.job_id, job.phase, job.error_code, counts, rows)

    def _view(self, job: _Job) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": job.number,
            "job_id": job.job_id,
            "member_id": job.member_id,
            "phase": job.phase,
            "percent_complete": PERCENT.get(job.phase, 100),
            "created_on": job.created_on,
            "last_modified": _now(),
            "error_code": job.error_code if job.phase == "error" else None,
        }
        report = job.report
        if report is not None and job.phase in ("completed", "error"):
            view.update(report.counts)
            view["error_log_lines"] = "\n".join(report.error_lines) or None
        if job.phase == "error" and report is None:
            view["error_log_lines"] = f"the file could not be read ({job.error_code})"
        return view


def _chunks(body: BodyReader) -> Iterator[bytes]:
    while chunk := body.read(1 << 16):
        yield chunk


def _drain(body: BodyReader) -> None:
    try:
        while body.read(1 << 16):
            pass
    except BodyError:
        return

"""Segment Objects Bulk API: start → upload gzip parts → finish, plus keep-alive.

Only URLs, payloads and status codes live here, as pure pairs: `*_request` builds a
`RequestSpec`, `parse_*` interprets the `Reply` that ended its retries (a 2xx or a status
that must not be retried) and raises the bulkctl error that status means. No I/O, so each
step is testable without a server; `SegmentBulkRemote` strings them together for the runner
(`bulkctl.send.session`), and `SegmentBulkTarget` adds the record rules and limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import orjson

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.errors import ApiError, CredentialsError, UsageError
from bulkctl.pack.parts import Part
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions
from bulkctl.redact import redact_url
from bulkctl.send.http import Deadlines, Reply, RequestSpec
from bulkctl.settings import SEGMENT_BULK_HOSTS
from bulkctl.sizes import format_bytes
from bulkctl.targets.base import Call, ConnectSettings, Limits, NoStatus

if TYPE_CHECKING:
    import threading

    import httpx

    from bulkctl.read.sources import ReadOptions
    from bulkctl.send.events import SessionEvents, SessionResult
    from bulkctl.send.retry import RetryPolicy
    from bulkctl.settings import Secret

DEFAULT_ENDPOINT = "https://objects-bulk-api.segmentapis.com"
EXCERPT_CHARS = 200
MAX_PART_BYTES = 512_000_000  # the API's limit on one uncompressed file (seed 000)


def _url(endpoint: str, *segments: str) -> str:
    path = "/".join(quote(segment, safe="") for segment in segments)
    return f"{endpoint.rstrip('/')}/v0/{path}"


def start_request(endpoint: str) -> RequestSpec:
    """`POST /v0/start`: open a session."""
    return RequestSpec("start of a session", "POST", _url(endpoint, "start"))


def parse_start(reply: Reply) -> str:
    """The new session's `sync_id` from a 200/201 answer."""
    _raise_for_status(reply, "start of a session")
    return _field(reply, "sync_id", "start of a session")


def upload_request(endpoint: str, sync_id: str, part: Part) -> RequestSpec:
    """`POST /v0/upload/<sync_id>` with the part's gzip bytes verbatim."""
    return RequestSpec(
        f"upload of part {part.number}",
        "POST",
        _url(endpoint, "upload", sync_id),
        headers=(
            ("Content-Type", "binary/octet-stream"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", str(part.bytes_compressed)),
        ),
        body_file=part.path,
    )


def parse_upload(reply: Reply, part: Part) -> str:
    """The `part_id` from a 200/201 answer; a 413 names the part's sizes and the fix."""
    label = f"upload of part {part.number}"
    if reply.status_code == 413:
        raise ApiError(
            f"part {part.number} was too large for the API (HTTP 413): "
            f"{format_bytes(part.bytes_uncompressed)} uncompressed, "
            f"{format_bytes(part.bytes_compressed)} gzip",
            hint="lower --part-size, e.g. --part-size 64MB",
            status_code=413,
            attempts=part.attempts,
        )
    _raise_for_status(reply, label)
    return _field(reply, "part_id", label)


def finish_request(endpoint: str, sync_id: str, error: str = "") -> RequestSpec:
    """`POST /v0/finish/<sync_id>` with `{"error": ""}`, or a non-empty error to discard it."""
    return RequestSpec(
        f"finish of session {sync_id}",
        "POST",
        _url(endpoint, "finish", sync_id),
        headers=(("Content-Type", "application/json"),),
        content=orjson.dumps({"error": error}),
    )


def parse_finish(reply: Reply, sync_id: str) -> None:
    """Accept 200/202; anything else is an error."""
    _raise_for_status(reply, f"finish of session {sync_id}")


def keep_alive_request(endpoint: str, sync_id: str) -> RequestSpec:
    """`POST /v0/keep-alive/<sync_id>`: extend the session's life."""
    return RequestSpec(
        f"keep-alive of session {sync_id}", "POST", _url(endpoint, "keep-alive", sync_id)
    )


def parse_keep_alive(reply: Reply, sync_id: str) -> None:
    """Accept 200; anything else is an error."""
    _raise_for_status(reply, f"keep-alive of session {sync_id}")


def _raise_for_status(reply: Reply, label: str) -> None:
    status = reply.status_code
    if 200 <= status <= 299:
        return
    if status in (401, 403):
        raise CredentialsError(
            f"the write key was rejected (HTTP {status})",
            hint="check BULKCTL_WRITE_KEY, --write-key-file or the config profile",
        )
    if 300 <= status <= 399:
        location = reply.headers.get("location")
        where = redact_url(location) if location else "no Location given"
        raise ApiError(
            f"{label} was redirected (HTTP {status} to {where}); redirects are not followed",
            hint="pass the final URL with --endpoint",
            status_code=status,
        )
    raise ApiError(f"{label} failed: HTTP {status}{_excerpt(reply)}", status_code=status)


def _excerpt(reply: Reply) -> str:
    text = " ".join(reply.body.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return f": {text}"


def _field(reply: Reply, name: str, label: str) -> str:
    try:
        document = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        document = None
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(
            f"{label}: the answer (HTTP {reply.status_code}) has no {name}{_excerpt(reply)}",
            status_code=reply.status_code,
        )
    return value


class SegmentBulkRemote(NoStatus):
    """One Bulk API session: `open` starts it, `send` uploads a part, `close` finishes it."""

    noun = "session"
    atomic = True
    min_interval = 0.0

    def __init__(self, endpoint: str, write_key: Secret | None, keep_alive: float = 300.0) -> None:
        self.endpoint = endpoint
        self.basic_auth = write_key
        self.keep_alive_interval: float | None = keep_alive
        self.sync_id = ""
        self._rejoined = False

    def __repr__(self) -> str:
        return f"SegmentBulkRemote({self.endpoint!r}, sync_id={self.sync_id!r})"

    def rejoin(self, call: Call, sync_id: str) -> bool:
        """Take over a session a killed push left open (resume); False when it is gone.

        A keep-alive tells: 2xx means the session still exists and holds what was uploaded to
        it; 400 or 404 means the API no longer knows it (expired, finished or discarded).
        """
        self.sync_id = sync_id
        try:
            self.keep_alive(call)
        except ApiError as exc:
            if exc.status_code in (400, 404):
                self.sync_id = ""
                return False
            raise
        self._rejoined = True
        return True

    def open(self, call: Call) -> str:
        if self._rejoined:  # once: a fresh session after a failed one is a new session
            self._rejoined = False
            return self.sync_id
        # A retried start may leave an orphan session behind (an earlier attempt may have
        # opened one whose answer was lost). That is acceptable: it holds no parts, so
        # nothing can come of it, and the server lets it expire.
        self.sync_id = parse_start(call(start_request(self.endpoint)))
        return self.sync_id

    def send(self, call: Call, part: Part) -> str:
        # An attempt sent whole that got no answer is not retried here: it may land after the
        # lane's next part, so the runner ends this session and sends every part again in a
        # fresh one (`bulkctl.send.session`). Other failures are retried: a part applied twice ends
        # as if applied once, since the API merges objects by id.
        return parse_upload(call(upload_request(self.endpoint, self.sync_id, part)), part)

    def close(self, call: Call, error: str) -> None:
        parse_finish(call(finish_request(self.endpoint, self.sync_id, error)), self.sync_id)

    def keep_alive(self, call: Call) -> None:
        parse_keep_alive(call(keep_alive_request(self.endpoint, self.sync_id)), self.sync_id)


class SegmentBulkTarget:
    """`segment-bulk`: Segment's object rules, 512 MB gzip parts in lanes, one session."""

    name: ClassVar[str] = "segment-bulk"
    options: ClassVar[frozenset[str]] = frozenset()
    remote_jobs: ClassVar[bool] = False
    hosts: ClassVar[dict[str, str]] = SEGMENT_BULK_HOSTS
    credentials: ClassVar[str] = "write_key"
    limits = Limits(max_part_bytes=MAX_PART_BYTES)
    unique_lines = False
    object_hints = True
    object_rules = SEGMENT_RULES  # records are shaped one by one by these: the chunked path
    wait_timeout = 3600.0

    def __init__(self, **options: Any) -> None:
        del options  # none: the registry refuses any that is given

    def prepare_read(self, read: ReadOptions) -> ReadOptions:
        return read

    def records(
        self, items: Iterable[RawItem], shape: ShapeOptions
    ) -> Iterator[Record | Rejection]:
        from bulkctl.check.validate import shape_each

        return shape_each(items, shape)

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]:
        return SEGMENT_RULES.check(record)

    def remote(self, connect: ConnectSettings) -> SegmentBulkRemote:
        from bulkctl.settings import resolve_endpoint, resolve_write_key

        endpoint = resolve_endpoint(
            connect.endpoint, connect.region, connect.profile, self.hosts, connect.console
        )
        if connect.sandbox is not None:
            key = connect.sandbox.write_key
        else:
            key = resolve_write_key(connect.key_file, connect.profile, connect.console)
        return SegmentBulkRemote(endpoint, key, connect.keep_alive)


def run_bulk_session(
    client: httpx.Client,
    parts: Iterable[Part],
    *,
    endpoint: str | None = None,
    concurrency: int = 4,
    keep_alive_interval: float = 300.0,
    policy: RetryPolicy | None = None,
    events: SessionEvents | None = None,
    cancel: threading.Event | None = None,
    deadlines: Deadlines = Deadlines(),
    allow_insecure_http: bool = False,
    max_queued_parts: int | None = None,
    abort_grace: float = 5.0,
) -> SessionResult:
    """Upload `parts` in one Segment Bulk session and finish it (`run_session` for segment-bulk).

    The client carries the write key (`bulkctl.send.http.build_client`).
    """
    from bulkctl.send.http import check_endpoint
    from bulkctl.send.session import MAX_CONCURRENCY, run_session

    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(
            f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}"
        )
    if keep_alive_interval <= 0:
        raise UsageError("--keep-alive must be a positive number of seconds")
    url = endpoint if endpoint is not None else DEFAULT_ENDPOINT
    check_endpoint(url, allow_insecure_http=allow_insecure_http)
    return run_session(
        client,
        SegmentBulkRemote(url, None, keep_alive_interval),
        parts,
        concurrency=concurrency,
        policy=policy,
        events=events,
        cancel=cancel,
        deadlines=deadlines,
        max_queued_parts=max_queued_parts,
        abort_grace=abort_grace,
    )

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
from bulkctl.errors import ApiError
from bulkctl.pack.parts import Part
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions
from bulkctl.send import answers
from bulkctl.send.http import Auth, Reply, RequestSpec
from bulkctl.send.remote import RETRY_AFTER, Call, Limits, SendResult
from bulkctl.settings import SettingSpec
from bulkctl.sizes import format_bytes
from bulkctl.targets.base import ConnectSettings

if TYPE_CHECKING:
    from bulkctl.read.options import ReadOptions
    from bulkctl.settings import Secret

SEGMENT_BULK_HOSTS = {
    "us": "https://objects-bulk-api.segmentapis.com",
    "eu": "https://objects-bulk-api.euw1.segmentapis.com",
}
WRITE_KEY = SettingSpec(
    "write_key",
    "write key",
    "BULKCTL_WRITE_KEY",
    file_flag="--write-key-file",
    hint="pass --write-key-file PATH, set BULKCTL_WRITE_KEY, or add write_key_file to a "
    "[profiles.NAME] table of the config file",
)  # Segment's: the Bulk API and the Objects API take the same write key
KEY_REFUSED = "the write key was rejected"
KEY_HINT = "check BULKCTL_WRITE_KEY, --write-key-file or the config profile"
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
    return answers.string_field(reply, "sync_id", "start of a session")


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
    return answers.string_field(reply, "part_id", label)


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
    answers.raise_for_status(reply, label, refused=KEY_REFUSED, refused_hint=KEY_HINT)


def write_key_auth(key: Secret) -> Auth:
    """Segment's authentication: Basic, the write key as user name and an empty password."""
    return Auth(key, "basic_user", what=WRITE_KEY.label)


class SegmentBulkRemote:
    """One Bulk API session: `open` starts it, `send` uploads a part, `close` finishes it."""

    noun = "session"
    atomic = True
    min_interval = 0.0
    rate_limit_headers = RETRY_AFTER

    def __init__(self, endpoint: str, write_key: Secret | None, keep_alive: float = 300.0) -> None:
        self.endpoint = endpoint
        self.auth = None if write_key is None else write_key_auth(write_key)
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

    def send(self, call: Call, part: Part) -> SendResult:
        # An attempt sent whole that got no answer is not retried here: it may land after the
        # lane's next part, so the runner ends this session and sends every part again in a
        # fresh one (`bulkctl.send.session`). Other failures are retried: a part applied twice ends
        # as if applied once, since the API merges objects by id.
        part_id = parse_upload(call(upload_request(self.endpoint, self.sync_id, part)), part)
        return SendResult(part_id)  # applied at the session's finish, all of it or nothing

    def close(self, call: Call, error: str) -> None:
        parse_finish(call(finish_request(self.endpoint, self.sync_id, error)), self.sync_id)

    def keep_alive(self, call: Call) -> None:
        parse_keep_alive(call(keep_alive_request(self.endpoint, self.sync_id)), self.sync_id)

    def job_options(self) -> dict[str, Any]:
        return {}


class SegmentBulkTarget:
    """`segment-bulk`: Segment's object rules, 512 MB gzip parts in lanes, one session."""

    name: ClassVar[str] = "segment-bulk"
    options: ClassVar[frozenset[str]] = frozenset()
    remote_jobs: ClassVar[bool] = False
    hosts: ClassVar[dict[str, str]] = SEGMENT_BULK_HOSTS
    settings: ClassVar[tuple[SettingSpec, ...]] = (WRITE_KEY,)
    limits = Limits(max_part_bytes=MAX_PART_BYTES)
    default_concurrency = 4
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
        endpoint = connect.endpoint_for(self.hosts)
        return SegmentBulkRemote(endpoint, connect.secret(WRITE_KEY), connect.keep_alive)

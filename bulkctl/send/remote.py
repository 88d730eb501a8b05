"""The protocol between the runner (`bulkctl.send.session`) and one API's remote.

Capabilities are split, so no remote carries stubs for steps its API does not have:

* every `Remote` `send`s one part and returns a `SendResult` (the id the API gave, the records
  it applied, per-item errors), and declares how it authenticates (`auth`) and how its API
  says "wait" (`rate_limit_headers`);
* a `SessionRemote` also opens, closes and keeps alive a session, and says whether the
  session is `atomic` (nothing is applied before a successful close: Segment Bulk);
* a `JobsRemote` also reads the state of its API's background jobs (`status`, `history`).

A remote never touches the network itself: every step receives `call`, provided by the runner,
which owns the HTTP client, retries, deadlines, the limit on requests in flight, progress
events and cancellation. So a target module holds only URLs, payloads and status codes, and
each step can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bulkctl.pack.batches import Batch, BatchRules
from bulkctl.pack.parts import MIN_PART_SIZE, Part
from bulkctl.send.retry import RETRY_AFTER as RETRY_AFTER  # where rate_limit_headers start

if TYPE_CHECKING:
    from bulkctl.send.http import Auth, Reply, RequestSpec

Call = Callable[["RequestSpec"], "Reply"]  # (httpx is imported only by what sends)
"""Make one request (with the runner's retries) and return the answer that ended them."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How records are cut into parts (files or request bodies) for one API.

    `max_part_bytes` is the most uncompressed bytes of a part (and the default and largest
    `--part-size`); `max_file_bytes` bounds the file as sent, after compression, when the API
    limits that instead. `sequential` sends one part at a time in input order (no lanes);
    otherwise records go to lanes by (collection, id) and lanes upload in parallel.

    For request-based APIs (no session: every accepted request is applied on its own), `batch`
    says how each spooled part is cut into request bodies built in memory
    (`bulkctl.pack.batches.BatchRules`: objects a request, one collection, repeated ids merged);
    `max_parts` is the most parts one run may send (1: a whole replacement, e.g. PackageX
    overwrite); `lane_waits_for_remote_final` holds a lane's next part until the remote job of
    its previous part is final (Brevo processes).
    """

    max_part_bytes: int
    max_part_records: int | None = None
    max_file_bytes: int | None = None
    gzip: bool = True
    one_collection_per_part: bool = False
    sequential: bool = False
    file_suffix: str = ".ndjson.gz"
    batch: BatchRules | None = None
    max_parts: int | None = None
    lane_waits_for_remote_final: bool = False

    @property
    def min_part_bytes(self) -> int:
        """The smallest `--part-size`: any allowed object fits in one spooled part."""
        return MIN_PART_SIZE


@dataclass(frozen=True, slots=True)
class ItemError:
    """The API's refusal of one record of a part (0-based index within the part)."""

    index: int
    message: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the API answered to one part.

    `remote_id`: the id it gave (a part id, a job id, a process id; None if it gives none).
    `applied`: records it applied, when it says (None: all of them, once accepted).
    `errors`: the records it refused, each with its message.
    """

    remote_id: str | None
    applied: int | None = None
    errors: tuple[ItemError, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """One remote job as its API describes it, in words every target shares."""

    remote_id: str
    phase: str
    final: bool = False
    failed: bool = False
    percent: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    error_lines: tuple[str, ...] = ()
    created: str | None = None
    # The counts that mean the API left something out (Xandr's num_invalid_*), when not 0.
    rejected: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "remote_id": self.remote_id,
            "phase": self.phase,
            "final": self.final,
            "failed": self.failed,
            "percent": self.percent,
            "counts": dict(self.counts),
            "error": self.error,
            "error_lines": list(self.error_lines),
            "created": self.created,
            "rejected": dict(self.rejected),
        }


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a remote upload history and where the next one starts (None: the last)."""

    jobs: tuple[RemoteStatus, ...]
    total: int | None = None
    next_start: int | None = None


@runtime_checkable
class Remote(Protocol):
    """The steps every API has, bound to an endpoint and credentials: send one part."""

    endpoint: str
    noun: str  # how messages name what send (or open) creates: "session", "job", "request"
    min_interval: float  # seconds between the end of one send and the start of the next
    auth: Auth | None  # sent on every request (None: the remote authenticates per request)
    rate_limit_headers: tuple[str, ...]  # headers whose seconds say when to try again

    def send(self, call: Call, part: Part) -> SendResult:
        """Send one part; what the API answered."""
        ...

    def job_options(self) -> dict[str, Any]:
        """Settings (never secrets) the job store keeps, so `status` can build it again."""
        ...


@runtime_checkable
class SessionRemote(Remote, Protocol):
    """A remote whose parts go into a session: opened first, closed last, kept alive.

    `atomic`: everything sent becomes visible only at `close(call, "")`, and `close` with an
    error discards it all (Segment Bulk).
    """

    atomic: bool
    keep_alive_interval: float | None  # None: no keep-alive

    def open(self, call: Call) -> str:
        """Before the first part: start a session; its id."""
        ...

    def close(self, call: Call, error: str) -> None:
        """After the last part ("" on success) or after a failure (the error text)."""
        ...

    def keep_alive(self, call: Call) -> None:
        """Keep an open session alive (called every `keep_alive_interval` seconds)."""
        ...


@runtime_checkable
class JobsRemote(Remote, Protocol):
    """A remote whose API processes what it accepted later, as jobs with a status."""

    def status(self, call: Call, remote_id: str) -> RemoteStatus:
        """The state of one remote job."""
        ...

    def history(self, call: Call, start: int) -> HistoryPage:
        """One page of recent remote jobs, from `start`."""
        ...


@dataclass(frozen=True, slots=True)
class RepeatNote:
    """What a request-based remote makes of ids repeating in the input: a warning (always
    shown) and a detail (shown with -v)."""

    warning: str | None = None
    detail: str | None = None


@runtime_checkable
class BatchRemote(Remote, Protocol):
    """A remote without a session whose parts go as many small requests, each applied on its
    own as soon as it is accepted (Segment Objects `/v1/set`).

    The runner cuts each part into `Batch`es by `batching` (`bulkctl.pack.batches`), sends them
    one after another (so a lane has one request in flight) with `send_batch`, and records each
    acknowledged batch, so `resume` sends only the rest. `send(call, part)` sends a whole part
    the same way, for callers that need no acknowledgements.
    """

    batching: BatchRules

    def send_batch(self, call: Call, batch: Batch) -> SendResult:
        """Send one request body; what the API answered."""
        ...

    def note_repeats(self, repeats: bool | None) -> RepeatNote:
        """Before the first request: whether some id occurs more than once in the input
        (None: not known). The remote adapts (e.g. Segment's `Synchronous: true`)."""
        ...


def is_atomic(remote: Remote) -> bool:
    """True when nothing sent is applied before the session closes without error."""
    return isinstance(remote, SessionRemote) and remote.atomic


def auth_key(remote: Remote) -> str | None:
    """The secret that identifies the caller to the API, for keying shared in-flight slots."""
    return remote.auth.secret.reveal() if remote.auth is not None else None

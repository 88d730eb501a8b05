"""What every target declares: its records, its limits, and its protocol steps.

A target is one API. The pipeline asks it four things and nothing else:

* how to read and shape input (`prepare_read`, `records`) and the rules of one record (`check`,
  which also encodes the record's line once, so packing reuses the bytes);
* its `Limits`: bytes and records a part may hold, gzip or not, one collection a part or not,
  lanes by id in parallel or strictly one part after another, and the pause between sends;
* its credentials and endpoint, resolved through `bulkctl.settings` (the only module that
  reads the environment and the config file), giving a `Remote`;
* the `Remote`'s protocol steps: `open`, `send` (one part), `close`, optional `keep_alive`,
  and `status` / `history` for APIs with remote jobs.

A `Remote` never touches the network itself: every method receives `call`, provided by the
runner (`bulkctl.send.session`), which owns the HTTP client, retries, deadlines, the limit on
requests in flight, progress events and cancellation. So a target module holds only URLs,
payloads and status codes, and each step can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bulkctl.pack.parts import Part
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions

if TYPE_CHECKING:
    from pathlib import Path

    from bulkctl.console import Console
    from bulkctl.read.sources import ReadOptions
    from bulkctl.send.http import Reply, RequestSpec
    from bulkctl.settings import Profile, SandboxCredentials, Secret

Call = Callable[["RequestSpec"], "Reply"]  # (httpx is imported only by what sends)
"""Make one request (with the runner's retries) and return the answer that ended them."""

Shaped = Record | Rejection


@dataclass(frozen=True, slots=True)
class Limits:
    """How records are cut into parts for one API.

    `max_part_bytes` is the most uncompressed bytes of a part (and the default and largest
    `--part-size`); `max_file_bytes` bounds the file as sent, after compression, when the API
    limits that instead. `sequential` sends one part at a time in input order (no lanes);
    otherwise records go to lanes by (collection, id) and lanes upload in parallel.
    """

    max_part_bytes: int
    max_part_records: int | None = None
    max_file_bytes: int | None = None
    gzip: bool = True
    one_collection_per_part: bool = False
    sequential: bool = False
    file_suffix: str = ".ndjson.gz"


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


class Remote(Protocol):
    """The protocol steps of one API, bound to an endpoint and credentials.

    `atomic`: everything sent becomes visible only at `close(call, "")`, and `close` with an
    error discards it all (Segment Bulk). A remote that is not atomic applies each part as it
    is sent, so an interrupted run leaves the parts already sent in place (Xandr).
    """

    endpoint: str
    noun: str  # how messages name what open/send create: "session", "job"
    atomic: bool
    keep_alive_interval: float | None  # None: no keep-alive
    min_interval: float  # seconds between the starts of two sends
    has_status: bool
    basic_auth: Secret | None  # sent as the Basic auth user name on every request

    def open(self, call: Call) -> str | None:
        """Before the first part: start a session (its id) or log in (None)."""
        ...

    def send(self, call: Call, part: Part) -> str:
        """Send one part; the id the API gave it (a part id, a job id)."""
        ...

    def close(self, call: Call, error: str) -> None:
        """After the last part ("" on success) or after a failure (the error text)."""
        ...

    def keep_alive(self, call: Call) -> None:
        """Keep an open session alive (called every `keep_alive_interval` seconds)."""
        ...

    def status(self, call: Call, remote_id: str) -> RemoteStatus:
        """The state of one remote job (only when `has_status`)."""
        ...

    def history(self, call: Call, start: int) -> HistoryPage:
        """One page of recent remote jobs, from `start` (only when `has_status`)."""
        ...

    def job_options(self) -> dict[str, Any]:
        """Settings (never secrets) the job store keeps, so `status` can build it again."""
        ...


@dataclass(frozen=True)
class ConnectSettings:
    """What a target needs to build its `Remote`; the CLI fills in the flags as given."""

    profile: Profile
    console: Console
    endpoint: str | None = None  # --endpoint; else env, profile, the target's public host
    region: str | None = None
    key_file: Path | None = None
    keep_alive: float = 300.0
    sandbox: SandboxCredentials | None = None  # the embedded sandbox's throwaway credentials


class Target(Protocol):
    """One API: its rules, limits and protocol. Built by `bulkctl.targets.get_target`."""

    name: ClassVar[str]
    options: ClassVar[frozenset[str]]  # names of the target-specific options it accepts
    remote_jobs: ClassVar[bool]  # the API processes uploads later, as jobs with a status
    hosts: ClassVar[dict[str, str]]  # region -> public host, the first the default ("" if none)
    credentials: ClassVar[str]  # "write_key" or "xandr_login": what `bulkctl config` shows
    limits: Limits
    unique_lines: bool  # a line repeated within one run is an error
    object_hints: bool  # naming hints for objects (snake_case properties, plural collections)
    wait_timeout: float  # default seconds for --wait (the API's processing time)

    def prepare_read(self, read: ReadOptions) -> ReadOptions:
        """The reading options this target wants (e.g. no number inference on CSV)."""
        ...

    def records(self, items: Iterable[RawItem], shape: ShapeOptions) -> Iterator[Shaped]:
        """Shape parsed items into records, or rejections carrying their own place."""
        ...

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]:
        """The record's problems and, when it has none, its encoded line."""
        ...

    def remote(self, connect: ConnectSettings) -> Remote:
        """Resolve endpoint and credentials (through `bulkctl.settings`) into a `Remote`."""
        ...


class NoStatus:
    """For remotes without remote jobs: `status` and `history` say so."""

    has_status = False
    noun = "session"

    def status(self, call: Call, remote_id: str) -> RemoteStatus:
        from bulkctl.errors import UsageError

        raise UsageError(f"this API has no status endpoint for {remote_id}")

    def history(self, call: Call, start: int) -> HistoryPage:
        from bulkctl.errors import UsageError

        raise UsageError("this API has no upload history")

    def job_options(self) -> dict[str, Any]:
        return {}


def check_options(name: str, accepted: frozenset[str], given: Mapping[str, Any]) -> None:
    """A UsageError for a target-specific option the target does not take."""
    from bulkctl.errors import UsageError

    for option, value in given.items():
        if value is not None and option not in accepted:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} does not apply to --target {name}")

"""`xandr-bss`: the Xandr Batch Segment Service (seed 003).

Records are users and their segments: NDJSON `{"uid", "segments": [{"id", "expiration", ...}]}`
or rows `uid,seg_id[,expiration,value,timestamp]`, adjacent rows of one uid joined into one
line; a line holds at most 1800 segments, so a longer one is split. Lines are written in the
member's legacy format (`bulkctl.targets.xandr_format`) in Latin-1 and gzip files of at most
0.5 GB; several files are several jobs, sent one after another at least `min_interval` apart.

The protocol (log in, a job and an upload a file, status, history) is `xandr_remote`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from bulkctl.errors import UsageError
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions, rejected
from bulkctl.send.remote import Limits
from bulkctl.settings import SettingSpec
from bulkctl.targets.base import ConnectSettings
from bulkctl.targets.xandr_format import MAX_SEGMENTS, LineFormat, Segment, segment_of, uid_of
from bulkctl.targets.xandr_remote import DEFAULT_MIN_INTERVAL, XandrLogin, XandrRemote

if TYPE_CHECKING:
    from bulkctl.read.options import ReadOptions

__all__ = ["XandrRemote", "XandrTarget"]

DEFAULT_ENDPOINT = "https://api.appnexus.com"
MAX_FILE_BYTES = 500_000_000  # "Your segment file should not be larger than 0.5GB."
MAX_RAW_BYTES = 50_000_000_000  # uncompressed: only the gzip file's size is limited
COLLECTION = "users"
_LOGIN_HINT = (
    "set BULKCTL_XANDR_USERNAME and BULKCTL_XANDR_PASSWORD, or add xandr_username and "
    "xandr_password_file to a [profiles.NAME] table of the config file"
)
USERNAME = SettingSpec(
    "xandr_username", "Xandr user name", "BULKCTL_XANDR_USERNAME", "login", hint=_LOGIN_HINT
)
PASSWORD = SettingSpec(
    "xandr_password", "Xandr password", "BULKCTL_XANDR_PASSWORD", hint=_LOGIN_HINT
)


def _positive_integer(text: str) -> str:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a positive integer")
    return str(int(text))


MEMBER_ID = SettingSpec(
    "xandr_member_id",
    "Xandr member id",
    "BULKCTL_XANDR_MEMBER_ID",
    "value",
    flag="--member-id",
    hint="pass --member-id N or set BULKCTL_XANDR_MEMBER_ID",
    check=_positive_integer,
)


# -- records ------------------------------------------------------------------------------------


class _Joined:
    """Adjacent valid rows of one uid, becoming one line."""

    def __init__(self, uid: str, first: RawItem) -> None:
        self.uid = uid
        self.first = first
        self.segments: list[Segment] = []
        self.rows: list[Any] = []
        self.lines: list[int] = []

    def add(self, segment: Segment, item: RawItem) -> None:
        self.segments.append(segment)
        self.rows.append(item.data)
        self.lines.append(item.line)

    def record(self) -> Record:
        first = self.first
        raw = {"uid": self.uid, "lines": self.lines, "rows": self.rows}
        properties = {"segments": self.segments}
        return Record(
            self.uid,
            COLLECTION,
            properties,
            first.source,
            first.line,
            first.index,
            len(self.rows),
            raw,
        )


class XandrTarget:
    """Users and segments in the member's line format, one job a gzip file, polled to the end."""

    name: ClassVar[str] = "xandr-bss"
    options: ClassVar[frozenset[str]] = frozenset(
        {"member_id", "seg_fields", "separators", "min_interval"}
    )
    remote_jobs: ClassVar[bool] = True
    hosts: ClassVar[dict[str, str]] = {"": DEFAULT_ENDPOINT}
    settings: ClassVar[tuple[SettingSpec, ...]] = (USERNAME, PASSWORD, MEMBER_ID)
    limits = Limits(
        max_part_bytes=MAX_RAW_BYTES,
        max_file_bytes=MAX_FILE_BYTES,
        sequential=True,
        file_suffix=".txt.gz",
    )
    default_concurrency = 4  # sequential: one file at a time whatever it is
    unique_lines = True  # Xandr counts a duplicate line as an invalid format
    object_hints = False
    wait_timeout = 86_400.0  # "Per Xandr SLA, allow up to 24 hours for the file to process."

    def __init__(
        self,
        member_id: int | None = None,
        seg_fields: str | None = None,
        separators: str | None = None,
        min_interval: float | None = None,
    ) -> None:
        self.format = LineFormat.parse(seg_fields, separators)
        if member_id is not None and member_id < 1:
            raise UsageError(f"--member-id {member_id}: give a positive integer")
        if min_interval is not None and min_interval < 0:
            raise UsageError(f"--min-interval {min_interval:g}: give 0 or more seconds")
        self.member_id = member_id
        self.min_interval = DEFAULT_MIN_INTERVAL if min_interval is None else min_interval

    def prepare_read(self, read: ReadOptions) -> ReadOptions:
        # CSV cells stay text (a uid or a segment code is never turned into a number); the
        # integer fields are read from text here.
        return replace(read, infer=False, id_field="uid")

    def records(
        self, items: Iterable[RawItem], shape: ShapeOptions
    ) -> Iterator[Record | Rejection]:
        """Users as they are; rows joined while adjacent rows have the same uid (and file)."""
        fmt = self.format
        pending: _Joined | None = None
        for item in items:
            data = item.data
            if item.error is not None or not isinstance(data, dict):
                yield rejected(item, _unreadable(item))
                continue
            if "segments" in data:
                if pending is not None:
                    yield pending.record()
                    pending = None
                yield from self._user(item, data)
                continue
            uid, problems = uid_of(data, fmt)
            segment, more = segment_of(data, fmt, "", row=True)
            if problems or more or uid is None or segment is None:
                yield rejected(item, problems + more)
                continue
            if pending is not None and (pending.uid != uid or pending.first.source != item.source):
                yield pending.record()
                pending = None
            if pending is None:
                pending = _Joined(uid, item)
            pending.add(segment, item)
            if len(pending.segments) == MAX_SEGMENTS:
                yield pending.record()
                pending = None
        if pending is not None:
            yield pending.record()

    def _user(self, item: RawItem, data: dict[str, Any]) -> Iterator[Record | Rejection]:
        """One NDJSON user: every segment checked; more than 1800 make several lines."""
        fmt = self.format
        uid, problems = uid_of(data, fmt)
        for key in data:
            if key not in ("uid", "segments"):
                problems.append(
                    Problem(
                        key,
                        "record.unknown_field",
                        f"unknown field {key!r}: a user has uid and segments",
                    )
                )
        raw_segments = data["segments"]
        segments: list[Segment] = []
        if not isinstance(raw_segments, list) or not raw_segments:
            problems.append(
                Problem("segments", "segments.type", "segments must be a non-empty list")
            )
            raw_segments = []
        for number, raw in enumerate(raw_segments):
            where = f"segments[{number}]."
            if not isinstance(raw, dict):
                problems.append(Problem(where[:-1], "segment.type", "a segment is an object"))
                continue
            segment, more = segment_of(raw, fmt, where, row=False)
            problems.extend(more)
            if segment is not None:
                segments.append(segment)
        if problems or uid is None:
            yield rejected(item, problems)
            return
        for start in range(0, len(segments), MAX_SEGMENTS):
            chunk = segments[start : start + MAX_SEGMENTS]
            yield Record(
                uid,
                COLLECTION,
                {"segments": chunk},
                item.source,
                item.line,
                item.index,
                1 if start == 0 else 0,
                data,
            )

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]:
        """Encode one line in Latin-1. Field values were checked by `records`."""
        segments = record.properties.get("segments")
        if not isinstance(segments, list) or not segments:
            return [Problem("segments", "segments.type", "a line needs a segment")], None
        if len(segments) > MAX_SEGMENTS:
            return [
                Problem(
                    "segments",
                    "segments.too_many",
                    f"{len(segments):,} segments; a line may hold {MAX_SEGMENTS}",
                )
            ], None
        uid, problems = uid_of({"uid": record.id}, self.format)
        if uid is None:
            return problems, None
        text = self.format.encode(uid, segments)
        try:
            return [], text.encode("latin-1")
        except UnicodeEncodeError as exc:
            bad = text[exc.start]
            return [Problem(None, "text.latin1", f"{bad!r} is not a Latin-1 character")], None

    def remote(self, connect: ConnectSettings) -> XandrRemote:
        endpoint = connect.endpoint_for(self.hosts)
        if connect.key_file is not None:
            raise UsageError("--write-key-file does not apply to xandr-bss (it logs in)")
        login = XandrLogin(str(connect.value(USERNAME)), connect.secret(PASSWORD))
        member_id = connect.value(MEMBER_ID, self.member_id)
        if member_id is None and connect.sandbox is not None:
            member_id = "1"  # any member will do in the sandbox
        if member_id is None:
            raise UsageError(f"no {MEMBER_ID.label}", hint=MEMBER_ID.hint)
        return XandrRemote(endpoint, login, int(member_id), min_interval=self.min_interval)


def _unreadable(item: RawItem) -> list[Problem]:
    if item.error is not None:
        return [Problem(item.error_field, item.error_rule, item.error)]
    kind = type(item.data).__name__ if item.data is not None else "null"
    return [
        Problem(
            None,
            "record.type",
            f"a record is an object (a user with segments, or a uid,seg_id row), not {kind}",
        )
    ]

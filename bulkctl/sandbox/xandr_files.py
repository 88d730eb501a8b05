"""What the Xandr emulator does with an uploaded segment file: read it as Xandr would.

The gzip file is inflated as it is read, decoded as Latin-1 and parsed line by line with the
member's format (`bulkctl.targets.xandr_format`), the same code the client encodes with. The
counts follow the vendor's field descriptions: `num_valid` counts user/segment combinations,
`num_invalid_format` lines that cannot be parsed (a repeated line too), `num_valid_user` /
`num_invalid_user` unique lines by whether the uid is a Xandr user id (a positive 64-bit
integer), `num_invalid_segment` distinct segments the member does not have. Valid rows go to
the warehouse table `_xandr_segments`, jobs to `_xandr_jobs`, so `bulkctl sandbox query` shows
them.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkctl.targets.xandr_format import LineFormat, Segment
from bulkctl.targets.xandr_remote import COUNT_FIELDS

JOBS_TABLE = "_xandr_jobs"
SEGMENTS_TABLE = "_xandr_segments"
UID_MAX = 2**64 - 1
_CHUNK = 1 << 16
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {JOBS_TABLE} (
    job_id TEXT PRIMARY KEY,
    member_id INTEGER NOT NULL,
    created TEXT NOT NULL,
    phase TEXT NOT NULL,
    error_code TEXT,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS {SEGMENTS_TABLE} (
    job_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    uid TEXT NOT NULL,
    seg_id INTEGER,
    seg_code TEXT,
    expiration INTEGER,
    value INTEGER,
    timestamp INTEGER
);
"""


class FileError(Exception):
    """The file cannot be read at all (not gzip, truncated, too large): the job ends in error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FileReport:
    """What processing found in one file."""

    counts: dict[str, int] = field(default_factory=dict)
    error_lines: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # (line, uid, fields...)


def read_file(
    chunks: Iterator[bytes],
    fmt: LineFormat,
    *,
    max_bytes: int,
    known_segments: frozenset[int] | None = None,
    max_error_lines: int = 200,
) -> FileReport:
    """Inflate, decode and check every line of an uploaded gzip file."""
    report = FileReport(counts=dict.fromkeys(COUNT_FIELDS, 0))
    seen_lines: set[str] = set()
    bad_segments: set[object] = set()
    counts = report.counts

    def note(number: int, message: str) -> None:
        if len(report.error_lines) < max_error_lines:
            report.error_lines.append(f"Line {number}: {message}")

    def error(number: int, message: str) -> None:
        counts["num_invalid_format"] += 1
        note(number, message)

    for number, text in enumerate(_lines(chunks, max_bytes), start=1):
        if not text.strip():
            continue
        if text in seen_lines:
            error(number, "duplicate line")
            continue
        seen_lines.add(text)
        decoded = fmt.decode(text)
        if isinstance(decoded, str):
            error(number, decoded)
            continue
        uid, segments = decoded
        if not (uid.isdigit() and 0 < int(uid) <= UID_MAX):
            counts["num_invalid_user"] += 1
            note(number, f"invalid user id {uid[:40]!r}")
            continue
        counts["num_valid_user"] += 1
        for segment in segments:
            ident = segment[fmt.fields.index("SEG_ID")] if "SEG_ID" in fmt.fields else None
            if known_segments is not None and ident not in known_segments:
                if ident not in bad_segments:
                    note(number, f"segment {ident} does not exist for this member")
                bad_segments.add(ident)
                continue
            counts["num_valid"] += 1
            report.rows.append((number, uid, *_columns(fmt, segment)))
    counts["num_invalid_segment"] = len(bad_segments)
    return report


def _columns(fmt: LineFormat, segment: Segment) -> tuple[Any, ...]:
    values = dict(zip(fmt.fields, segment, strict=True))
    return tuple(
        values.get(name) for name in ("SEG_ID", "SEG_CODE", "EXPIRATION", "VALUE", "TIMESTAMP")
    )


def _lines(chunks: Iterator[bytes], max_bytes: int) -> Iterator[str]:
    inflater = zlib.decompressobj(wbits=31)
    pending = b""
    size = 0
    fed = False
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise FileError("FILE_TOO_LARGE", f"the file is over {max_bytes:,} bytes")
        data = chunk
        while data:
            try:
                out = inflater.decompress(data)
            except zlib.error as exc:
                raise FileError("INVALID_FILE", f"the file is not gzip: {exc}") from None
            fed = True
            if inflater.eof:
                data = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                fed = False
            else:
                data = b""
            pending += out
            *whole, pending = pending.split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r").decode("latin-1")
    if fed or size == 0:
        raise FileError("INVALID_FILE", "the file is empty or its gzip stream is truncated")
    if pending:
        yield pending.decode("latin-1")


class JobTables:
    """The emulator's writes to the warehouse file (a connection of its own, WAL mode)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)

    def record(self, job_id: str, member_id: int, created: str, phase: str) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT OR REPLACE INTO {JOBS_TABLE} (job_id, member_id, created, phase) "
                "VALUES (?, ?, ?, ?)",
                (job_id, member_id, created, phase),
            )

    def finish(
        self,
        job_id: str,
        phase: str,
        error_code: str | None,
        counts: dict[str, int],
        rows: list[tuple[Any, ...]],
    ) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    f"UPDATE {JOBS_TABLE} SET phase = ?, error_code = ?, counts = ? "
                    "WHERE job_id = ?",
                    (phase, error_code, orjson.dumps(counts).decode(), job_id),
                )
                self._conn.executemany(
                    f"INSERT INTO {SEGMENTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(job_id, *row) for row in rows],
                )
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

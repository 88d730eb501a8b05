"""CSV/TSV in chunks: cut where a row likely starts, checked by whoever parses the chunk.

The main process reads the header itself (`bulkctl.read.csv_rows`), then cuts the rest at the first
newline past `CHUNK_BYTES` where the quotes counted from the chunk's start are balanced (a
row can span lines inside quotes). Quote counting is a guess that a stray quote in an unquoted
field can fool, so the worker that parses a chunk says whether its last row was complete
(`Tail.bad_end`); if not, the main process parses that row's lines again joined to
the next chunk (`rejoin`), so rows are exactly the rows one pass would read.

The chunks are checked by the worker processes (`bulkctl.fast.csv_chunk`); the columns'
types were decided before, by a first pass over the same chunks (`bulkctl.read.csv_typing`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bulkctl.read import chunks
from bulkctl.read.csv_rows import CsvSettings, _check_header, _csv_error, _decoded_lines
from bulkctl.read.json_array import SLACK

_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class CsvTask:
    """Rows of one CSV source after its header, starting at `first_line` (absolute)."""

    source: str
    first_line: int
    data: bytes
    header: tuple[str, ...]
    settings: CsvSettings
    last: bool  # the source ends with this chunk: an open quote is an error, not a cut


@dataclass(frozen=True, slots=True)
class ErrorTask:
    """An error the reader met (a line over the limit), raised when the run reaches it."""

    message: str


def csv_tasks(
    readline: Callable[[int], bytes],
    read: Callable[[int], bytes],
    name: str,
    settings: CsvSettings,
) -> Iterator[CsvTask | ErrorTask]:
    """The header here, then the rest of the source as chunks of whole lines."""
    header, line = _header(readline, name, settings)
    if header is None:
        return
    chunk_bytes = max(1, chunks.CHUNK_BYTES // 4)  # parsed CSV rows take more memory
    cap = settings.limit + SLACK
    buf = bytearray()
    eof = False
    while True:
        cut = _cut(buf, chunk_bytes, cap, eof)
        if cut is None:
            start = buf.rfind(b"\n") + 1
            if len(buf) - start > cap:  # refuse before holding it whole, as read.csv_rows does
                if start:
                    yield CsvTask(name, line, bytes(buf[:start]), header, settings, False)
                    line += buf.count(b"\n", 0, start)
                kind = "TSV" if settings.delimiter == "\t" else "CSV"
                yield ErrorTask(
                    f"{name}:{line}: the line is longer than {cap:,} bytes; a record may be "
                    f"at most {settings.limit:,} bytes: check that the file really is {kind}"
                )
                return
            more = read(_READ)
            if more:
                buf += more
            else:
                eof = True
            continue
        with memoryview(buf) as view:
            data = bytes(view[:cut])  # one copy (a bytearray slice would be another)
        del buf[:cut]
        last = eof and not buf
        if data:
            yield CsvTask(name, line, data, header, settings, last)
            line += data.count(b"\n")
        if last:
            return


def _cut(buf: bytearray, chunk_bytes: int, cap: int, eof: bool) -> int | None:
    """Where the next chunk ends (after a newline), or None to read more first.

    The first newline at or after `chunk_bytes - 1` where the quotes counted from the chunk's
    start are balanced, looking no further than `cap` bytes past the first candidate (else
    that candidate): a decision on the bytes alone, whatever the reads delivered.
    """
    newline = buf.find(b"\n", chunk_bytes - 1)
    if newline < 0:
        return len(buf) if eof else None
    first = newline
    quotes = buf.count(b'"', 0, newline)
    while quotes % 2:  # inside a quoted field, probably: try the next line ending
        after = buf.find(b"\n", newline + 1)
        if after < 0:
            if eof:
                return len(buf)
            return first + 1 if len(buf) - first > cap else None
        if after - first > cap:  # no balanced line ending near: let the parser decide
            return first + 1
        quotes += buf.count(b'"', newline, after)
        newline = after
    return newline + 1


def _header(
    readline: Callable[[int], bytes], name: str, settings: CsvSettings
) -> tuple[tuple[str, ...] | None, int]:
    """The header row (checked) and the number of the line after it; (None, _) if no rows."""
    old_limit = csv.field_size_limit(settings.limit)
    try:
        lines = _decoded_lines(readline, name, settings)
        reader = csv.reader(lines, delimiter=settings.delimiter, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                row: list[str] = next(reader)
            except StopIteration:
                return None, 0
            except csv.Error as exc:
                raise _csv_error(name, start, reader.line_num, exc, settings) from None
            if row:
                _check_header(row, name, start, settings)
                return tuple(row), reader.line_num + 1
    finally:
        csv.field_size_limit(old_limit)


class Tail(Protocol):
    """Where the unfinished last row of a chunk starts (what its parser says of it)."""

    bad_end: bool  # the chunk ended inside a row
    tail_line: int  # ... the line that row starts on
    tail_offset: int  # ... and where in the chunk


def rejoin(task: CsvTask, tail: Tail, following: CsvTask) -> CsvTask:
    """The unfinished last row of `task` (tail.bad_end) joined to the chunk after it."""
    return CsvTask(
        task.source,
        tail.tail_line,
        task.data[tail.tail_offset :] + following.data,
        task.header,
        task.settings,
        following.last,
    )


__all__ = ["CsvTask", "ErrorTask", "Tail", "csv_tasks", "rejoin"]

"""CSV/TSV in chunks: cut where a row likely starts, checked by whoever parses the chunk.

The main process reads the header itself (`bulkctl.read.csv_rows`), then cuts the rest at the first
newline past `CHUNK_BYTES` where the quotes counted from the chunk's start are balanced (a
row can span lines inside quotes). Quote counting is a guess that a stray quote in an unquoted
field can fool, so the worker that parses a chunk says whether its last row was complete
(`ChunkResult.bad_end`); if not, the main process parses that row's lines again joined to
the next chunk (`rejoin`), so rows are exactly the rows one pass would read.

When every row of a chunk is one line of the header's width (`csvlines.single_rows`), its
rows are checked and written a column at a time (`csvcolumns.Block`); the rows a block leaves
to the rules, and every row of any other chunk, go through csvread's own conversion and the
target's rules one at a time. The columns' types were decided before, by a first pass over
the same chunks (`bulkctl.read.csv_typing`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from bulkctl.errors import InputError
from bulkctl.fast.csv_columns import Block, Facts
from bulkctl.fast.csv_lines import longest_line, names_size, no_controls, single_rows
from bulkctl.read import chunks
from bulkctl.read.csv_rows import (
    CsvSettings,
    _check_header,
    _converters,
    _csv_error,
    _decoded_lines,
    _record,
    row_width_error,
)
from bulkctl.read.json_array import SLACK, preview
from bulkctl.records import RawItem

if TYPE_CHECKING:
    from bulkctl.fast.lines import ChunkResult, ChunkState, WorkContext

_READ = 1 << 20
_COLUMNS = 4096  # rows converted together, a column at a time


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
            if len(buf) - start > cap:  # refuse before holding it whole, as csvread does
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


def rejoin(task: CsvTask, result: ChunkResult, following: CsvTask) -> CsvTask:
    """The unfinished last row of `task` (result.bad_end) joined to the chunk after it."""
    return CsvTask(
        task.source,
        result.tail_line,
        task.data[result.tail_offset :] + following.data,
        task.header,
        task.settings,
        following.last,
    )


# -- the worker side ----------------------------------------------------------------------


def csv_chunk(ctx: WorkContext, task: CsvTask) -> ChunkResult:
    """Every row of a chunk, as `csvread._rows` would read them; an open quote at the end of a
    chunk that is not the source's last is noted (`bad_end`), not an error."""
    from bulkctl.fast.csv_native import native_csv_chunk
    from bulkctl.fast.lines import ChunkState, no_gc

    taken = native_csv_chunk(ctx, task)
    if taken is not None:
        return taken
    state = ChunkState(ctx)
    settings = task.settings
    codec = codecs.lookup(settings.encoding).name
    encoding = "utf-8" if codec in ("utf-8", "utf-8-sig") else settings.encoding
    cap = settings.limit + SLACK
    lines: Iterator[str]
    text = ""
    try:
        text = task.data.decode(encoding)
        if len(task.data) > cap and max(map(len, task.data.split(b"\n"))) > cap:
            raise ValueError("a line over the limit")
    except (UnicodeDecodeError, ValueError):
        # Exactly as csvread reads it: line by line, stopping at the bad line.
        reader = io.BytesIO(task.data).readline
        lines = _decoded_lines(reader, task.source, settings, task.first_line)
        text = ""
    else:
        lines = iter(())  # _parse reads `text`
    old_limit = csv.field_size_limit(settings.limit)
    try:
        with no_gc():
            # What the chunk's bytes rule out (`single` is found by _parse).
            facts = Facts(False, ctx.pack and no_controls(task.data, codec))
            _parse(ctx, task, state, lines, text, facts)
    finally:
        csv.field_size_limit(old_limit)
    return state.finish()


def _parse(
    ctx: WorkContext,
    task: CsvTask,
    state: ChunkState,
    lines: Iterator[str],
    text: str,
    facts: Facts,
) -> None:
    """The rows; when every row is one line of the right width, parsed in one go."""
    settings = task.settings
    header = list(task.header)
    converters = _converters(header, settings)
    typed = any(kind != "str" for kind in settings.types.values())
    width = len(header)
    if text:
        longest = longest_line(task.data, ctx.rules, task.header)
        rows = single_rows(text, settings.delimiter, longest < settings.limit) or []
        if rows and set(map(len, rows)) == {width}:
            single = facts._replace(single=True)
            first = task.first_line
            for at in range(0, len(rows), _COLUMNS):
                some = rows[at : at + _COLUMNS]
                starts = range(first + at, first + at + len(some))
                _flush(ctx, task, state, some, starts, converters, typed, longest, single)
                if state.stop:
                    return
            return
        lines = iter(io.StringIO(text))
    reader = csv.reader(lines, delimiter=settings.delimiter, strict=True)
    offset = task.first_line - 1
    numbers: list[int] = []
    rows = []
    while not state.stop:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except (csv.Error, InputError) as exc:
            _flush(ctx, task, state, rows, numbers, converters, typed, None, facts)
            _stop(task, state, exc, start + offset, reader.line_num + offset, start - 1, text)
            return
        if not row:
            continue
        if len(row) != width:
            _flush(ctx, task, state, rows, numbers, converters, typed, None, facts)
            rows, numbers = [], []
            state.records += 1
            error = row_width_error(len(row), width, settings.delimiter)
            item = RawItem(task.source, start + offset, None, None, error, None)
            item.text = preview(settings.delimiter.join(row).encode())
            state.slow(item)
            continue
        rows.append(row)
        numbers.append(start + offset)
        if len(rows) == _COLUMNS:
            _flush(ctx, task, state, rows, numbers, converters, typed, None, facts)
            rows, numbers = [], []
    _flush(ctx, task, state, rows, numbers, converters, typed, None, facts)


def _stop(
    task: CsvTask,
    state: ChunkState,
    exc: csv.Error | InputError,
    start: int,
    line: int,
    lines_before: int,
    text: str,
) -> None:
    """An error ends the run here; an open quote at a chunk's end only means a bad cut."""
    if isinstance(exc, InputError):
        state.error = str(exc)
        return
    if not task.last and "unexpected end of data" in str(exc) and text:
        state.bad_end = True
        state.tail_line = start
        state.tail_offset = _byte_offset(task.data, lines_before)
        return
    state.error = str(_csv_error(task.source, start, line, exc, task.settings))


def _byte_offset(data: bytes, lines: int) -> int:
    """Where line `lines` (0-based) of `data` starts."""
    at = 0
    for _ in range(lines):
        at = data.index(b"\n", at) + 1
    return at


def _flush(
    ctx: WorkContext,
    task: CsvTask,
    state: ChunkState,
    rows: list[list[str]],
    starts: Sequence[int],
    converters: list[Any],
    typed: bool,
    longest: int | None,
    facts: Facts,
) -> None:
    """Well-formed rows: accepted a column at a time when plainly valid (`csvcolumns.Block`);
    the rows it leaves out, or every row of a block it refuses, through csvread's conversion
    and the rules."""
    if not rows:
        return
    settings = task.settings
    header = task.header
    block = None
    if not typed:
        if longest is None:
            longest = max(map(len, chain.from_iterable(rows)))
        block = Block.of(ctx, state, header, settings, rows, longest, facts)
    if block is None:
        for at in range(len(rows)):
            _exact(task, state, rows[at], starts[at], converters)
            if state.stop:
                return
        return
    at = 0
    for index in block.exact:
        block.take(state, at, index)
        _exact(task, state, rows[index], starts[index], converters)
        if state.stop:
            return
        at = index + 1
    block.take(state, at, len(rows))


def _exact(
    task: CsvTask, state: ChunkState, row: list[str], start: int, converters: list[Any]
) -> None:
    """One row as `csvread` reads it, then the fast check or the target's own rules."""
    header = task.header
    state.records += 1
    item = _record(row, list(header), converters, task.source, start, task.settings)
    size = sum(map(len, row)) + names_size(header)
    if item.error is not None or not state.fast(item.data, size):
        state.slow(item)


__all__ = ["CsvTask", "ErrorTask", "csv_chunk", "csv_tasks", "rejoin"]

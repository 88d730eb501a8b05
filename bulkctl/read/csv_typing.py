"""The first pass over a CSV: each column's type, from every value, before any row is converted.

The chunks are those of the second pass (`read.csv_chunks.csv_tasks`), typed where those are
checked (in the worker processes: `fast.dispatch.process` runs `type_task`), and
merged here in input order (`decide_types`). A chunk's flags come from the C `csv_kinds`
when every row is plain (one line, no carriage return), else from the csv module's rows and
`read.csv_types.column_flags`; the tests compare the two. Rows the second pass refuses whatever
their cells (a row of the wrong width) count for nothing; an error that ends the reading (a
bad byte, an unclosed quote) ends the pass there too, so types come from the rows read.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bulkctl.errors import InputError
from bulkctl.native import native
from bulkctl.read.csv_chunks import CsvTask, ErrorTask, rejoin
from bulkctl.read.csv_rows import CsvSettings, _decoded_lines
from bulkctl.read.csv_types import ALL, column_flags, decide, inferred_columns, merge
from bulkctl.read.json_array import SLACK

_ROWS = 4096  # rows typed together, a column at a time


@dataclass(frozen=True, slots=True)
class TypeTask:
    """A chunk of the first pass: its columns' flags, nothing else."""

    task: CsvTask


@dataclass(frozen=True, slots=True)
class SpanTask:
    """Bytes start..end of a plain regular file, read by the worker itself: the flags of the
    lines that start in the span (`type_span`), so the main process neither reads nor ships
    the data. Only the C pass takes spans; anything it cannot take sends the whole source
    through the exact pass (`TypeTask`s)."""

    path: str
    device: int
    inode: int
    start: int
    end: int
    first: bool  # start is where the rows begin (after the header)
    delimiter: str
    width: int
    limit: int


@dataclass(slots=True)
class TypeResult:
    """What the first pass found in one chunk (what crosses the pipe from a worker)."""

    columns: bytes = b""  # one byte of flags a column (`read.csv_types`); b"": not taken
    error: str | None = None  # an error that ends the reading (and the pass) there
    bad_end: bool = False  # the chunk ended inside a row (see `read.csv_chunks.rejoin`)
    tail_line: int = 0  # ... the line that row starts on
    tail_offset: int = 0  # ... and where in the chunk


Pass = TypeTask | ErrorTask | SpanTask
SPAN_BYTES = 8 << 20
Run = Callable[[Iterable[Pass]], Iterator[tuple[Any, Any]]]  # (task, its TypeResult)


def run_here(tasks: Iterable[Pass]) -> Iterator[tuple[Any, TypeResult]]:
    """The first pass in this process (small inputs, and readers without workers)."""
    for task in tasks:
        yield task, type_task(task)


def type_task(task: Pass) -> TypeResult:
    """One task of the first pass, in whichever process runs it."""
    if isinstance(task, ErrorTask):
        return TypeResult(error=task.message)
    if isinstance(task, SpanTask):
        return type_span(task)
    return type_chunk(task.task)


def span_tasks(
    path: str, device: int, inode: int, start: int, size: int, settings: CsvSettings, width: int
) -> list[SpanTask]:
    """The rows of a file from byte `start` (after its header) as spans for the workers."""
    return [
        SpanTask(path, device, inode, at, min(at + SPAN_BYTES, size), at == start,
                 settings.delimiter, width, settings.limit)
        for at in range(start, size, SPAN_BYTES)
    ]  # fmt: skip


def decide_spans(
    tasks: list[SpanTask], header: tuple[str, ...], settings: CsvSettings, run: Run
) -> dict[str, str] | None:
    """Each inferred column's type from spans, or None if the C pass could not take one
    (then the exact pass decides)."""
    flags: bytes | None = None
    taken = True
    for _, result in run(tasks):  # drained: the pool stays in step
        if not result.columns:
            taken = False
        elif taken:
            flags = merge(flags, result.columns)
    if not taken:
        return None
    inferred = inferred_columns(header, settings.id_field, settings.types, settings.infer)
    return decide(header, flags, inferred)


def type_span(task: SpanTask) -> TypeResult:
    """The flags of the lines starting in the span (b"": not taken by the C pass).

    Why a span needs no row-aligned cut: C takes only lines whose quotes all close on the
    line, so were a span to start inside a quoted field, that field would not close before
    the span ends: a field longer than a span, which the second pass refuses anyway."""
    module = native()
    gave_up = TypeResult()
    if module is None:
        return gave_up
    before = 0 if task.first else 1  # the byte before the span: is a line starting there?
    want = task.end - task.start + before + task.limit + SLACK + 1
    try:
        fd = os.open(task.path, os.O_RDONLY)
    except OSError:
        return gave_up
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (task.device, task.inode):
            return gave_up
        data = os.pread(fd, want, task.start - before)
    except OSError:
        return gave_up
    finally:
        os.close(fd)
    size = task.end - task.start + before
    if len(data) < size:
        return gave_up  # the file shrank
    first = 0 if task.first else data.find(b"\n") + 1
    if first == 0 and not task.first:
        first = size  # no line starts in the span
    if first >= size:
        return TypeResult(columns=bytes([ALL] * task.width))
    newline = data.find(b"\n", size - 1)
    if newline < 0:
        if len(data) == want:
            return gave_up  # a line too long: the second pass says so
        newline = len(data) - 1
    columns = module.csv_kinds(
        data[first : newline + 1], ord(task.delimiter), task.width, task.limit
    )
    return gave_up if columns is None else TypeResult(columns=columns)


def decide_types(
    tasks: Iterable[CsvTask | ErrorTask], run: Run = run_here
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The header and each inferred column's type, from every chunk of one source."""
    wrapped = (TypeTask(t) if isinstance(t, CsvTask) else t for t in tasks)
    header: tuple[str, ...] = ()
    flags: bytes | None = None
    inferred: list[bool] = []
    stopped = False
    unfinished: tuple[CsvTask, TypeResult] | None = None
    for task, result in run(wrapped):  # drained whatever happens: the pool stays in step
        if stopped:
            continue
        if isinstance(task, ErrorTask):  # (whichever process ran it, and what it gave)
            stopped = True  # the second pass stops here too
            continue
        if isinstance(task, TypeTask):
            chunk = task.task
            if not header:
                header = chunk.header
                settings = chunk.settings
                inferred = inferred_columns(
                    header, settings.id_field, settings.types, settings.infer
                )
            if unfinished is not None:
                before, cut = unfinished
                unfinished = None
                chunk = rejoin(before, cut, chunk)
                result = type_chunk(chunk)
            if result.bad_end:
                unfinished = chunk, result
        if result.columns:
            flags = merge(flags, result.columns)
        if result.error is not None:
            stopped = True  # the second pass stops here too
    return header, decide(header, flags, inferred)


def type_chunk(task: CsvTask) -> TypeResult:
    """The flags of every column over the chunk's rows (`read.csv_types`); `bad_end` as the
    second pass (`fast.csv_chunk`) would say it."""
    settings = task.settings
    width = len(task.header)
    codec = codecs.lookup(settings.encoding).name
    utf8 = codec in ("utf-8", "utf-8-sig")
    module = native()
    delimiter = settings.delimiter
    if module is not None and utf8 and delimiter.isascii() and delimiter not in '"\r\n':
        columns = module.csv_kinds(task.data, ord(delimiter), width, settings.limit)
        if columns is not None:
            return TypeResult(columns=columns)
    result = TypeResult(columns=bytes([ALL] * width))
    reader = io.BytesIO(task.data).readline
    lines = _decoded_lines(reader, task.source, settings, task.first_line)
    old_limit = csv.field_size_limit(settings.limit)
    rows: list[list[str]] = []
    try:
        parsed = csv.reader(lines, delimiter=delimiter, strict=True)
        while True:
            start = parsed.line_num + 1
            try:
                row = next(parsed)
            except StopIteration:
                break
            except csv.Error as exc:
                if not task.last and "unexpected end of data" in str(exc):
                    result.bad_end = True
                    result.tail_line = task.first_line + start - 1
                    result.tail_offset = _offset(task.data, start - 1)
                else:
                    result.error = str(exc)
                break
            if len(row) == width:
                rows.append(row)
                if len(rows) == _ROWS:
                    result.columns = merge(result.columns, _flags(rows))
                    rows = []
    except InputError as exc:  # a bad byte, a line over the limit: the reading ends there
        result.error = str(exc)
    finally:
        csv.field_size_limit(old_limit)
    if rows:
        result.columns = merge(result.columns, _flags(rows))
    return result


def _flags(rows: list[list[str]]) -> bytes:
    return bytes(column_flags(column) for column in zip(*rows, strict=True))


def _offset(data: bytes, lines: int) -> int:
    """Where line `lines` (0-based) of `data` starts."""
    at = 0
    for _ in range(lines):
        at = data.index(b"\n", at) + 1
    return at

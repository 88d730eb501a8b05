"""The first pass over a CSV: each column's type, from every value, before any row is converted.

The chunks are those of the second pass (`csvchunks.csv_tasks`), typed where those are
checked (in the worker processes: `fastpath.process` runs `type_chunk` for a `TypeTask`), and
merged here in input order (`decide_types`). A chunk's flags come from the C `csv_kinds`
when every row is plain (one line, no carriage return), else from the csv module's rows and
`csvtypes.column_flags`; the tests compare the two. Rows the second pass refuses whatever
their cells (a row of the wrong width) count for nothing; an error that ends the reading (a
bad byte, an unclosed quote) ends the pass there too, so types come from the rows read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bulkctl.chunkstate import ChunkResult
from bulkctl.csvchunks import CsvTask, ErrorTask, rejoin
from bulkctl.csvread import _decoded_lines
from bulkctl.csvtypes import ALL, column_flags, decide, inferred_columns, merge
from bulkctl.errors import InputError
from bulkctl.native import native

_ROWS = 4096  # rows typed together, a column at a time


@dataclass(frozen=True, slots=True)
class TypeTask:
    """A chunk of the first pass: its columns' flags, nothing else."""

    task: CsvTask


Pass = TypeTask | ErrorTask
Run = Callable[[Iterable[Pass]], Iterator[tuple[Any, ChunkResult]]]  # (task, its result)


def run_here(tasks: Iterable[Pass]) -> Iterator[tuple[Any, ChunkResult]]:
    """The first pass in this process (small inputs, and readers without workers)."""
    for task in tasks:
        yield task, type_task(task)


def type_task(task: Pass) -> ChunkResult:
    """One task of the first pass, in whichever process runs it."""
    if isinstance(task, ErrorTask):
        return ChunkResult(error=task.message)
    return type_chunk(task.task)


def decide_types(
    tasks: Iterable[CsvTask | ErrorTask], run: Run = run_here
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The header and each inferred column's type, from every chunk of one source."""
    wrapped = (TypeTask(t) if isinstance(t, CsvTask) else t for t in tasks)
    header: tuple[str, ...] = ()
    flags: bytes | None = None
    inferred: list[bool] = []
    stopped = False
    unfinished: tuple[CsvTask, ChunkResult] | None = None
    for task, result in run(wrapped):  # drained whatever happens: the pool stays in step
        if stopped:
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


def type_chunk(task: CsvTask) -> ChunkResult:
    """The flags of every column over the chunk's rows (`csvtypes`); `bad_end` as csv_chunk."""
    settings = task.settings
    width = len(task.header)
    codec = codecs.lookup(settings.encoding).name
    utf8 = codec in ("utf-8", "utf-8-sig")
    module = native()
    delimiter = settings.delimiter
    if module is not None and utf8 and delimiter.isascii() and delimiter not in '"\r\n':
        columns = module.csv_kinds(task.data, ord(delimiter), width, settings.limit)
        if columns is not None:
            return ChunkResult(columns=columns)
    result = ChunkResult(columns=bytes([ALL] * width))
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

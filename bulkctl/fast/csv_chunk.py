"""The worker side of CSV/TSV chunks: every row of a chunk checked, and packed when it can be.

The chunks are cut by `bulkctl.read.csv_chunks`. When every row of a chunk is one line of the
header's width (`csv_lines.single_rows`), its rows are checked and written a column at a time
(`csv_columns.Block`), or by C (`csv_native`); the rows a block leaves to the rules, and every
row of any other chunk, go through `read.csv_rows`' own conversion and the target's rules one
at a time. An open quote at the end of a chunk that is not its source's last is noted
(`ChunkResult.bad_end`), and the main process parses that row again joined to the next chunk.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from bulkctl.errors import InputError
from bulkctl.fast.csv_columns import Block, Facts
from bulkctl.fast.csv_lines import longest_line, names_size, no_controls, single_rows
from bulkctl.fast.csv_native import native_csv_chunk
from bulkctl.fast.state import ChunkResult, ChunkState, WorkContext, no_gc
from bulkctl.read.csv_chunks import CsvTask
from bulkctl.read.csv_rows import _converters, _csv_error, _decoded_lines, _record, row_width_error
from bulkctl.read.json_array import SLACK, preview
from bulkctl.records import RawItem

_COLUMNS = 4096  # rows converted together, a column at a time


def csv_chunk(ctx: WorkContext, task: CsvTask) -> ChunkResult:
    """Every row of a chunk, as `read.csv_rows` would read them; an open quote at the end of a
    chunk that is not the source's last is noted (`bad_end`), not an error."""
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
        # Exactly as read.csv_rows reads it: line by line, stopping at the bad line.
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
    """Well-formed rows: accepted a column at a time when plainly valid (`fast.csv_columns.Block`);
    the rows it leaves out, or every row of a block it refuses, through `read.csv_rows`' conversion
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
    """One row as `read.csv_rows` reads it, then the fast check or the target's own rules."""
    header = task.header
    state.records += 1
    item = _record(row, list(header), converters, task.source, start, task.settings)
    size = sum(map(len, row)) + names_size(header)
    if item.error is not None or not state.fast(item.data, size):
        state.slow(item)


__all__ = ["csv_chunk"]

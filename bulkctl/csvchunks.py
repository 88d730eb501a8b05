"""CSV/TSV in chunks: cut where a row likely starts, checked by whoever parses the chunk.

The main process reads the header itself (`bulkctl.csvread`), then cuts the rest at the first
newline past `CHUNK_BYTES` where the quotes counted from the chunk's start are balanced (a
row can span lines inside quotes). Quote counting is a guess that a stray quote in an unquoted
field can fool, so the worker that parses a chunk says whether its last row was complete
(`ChunkResult.bad_end`); if not, the main process parses that row's lines again joined to
the next chunk (`rejoin`), so rows are exactly the rows one pass would read.

Rows are converted a column at a time (`infer_column`): a column with no cell that looks like
a number stays text after one regex search; an all-integer column converts with `map(int)`
and is checked by turning the numbers back into the same text. Any other cell goes through
`csvread._infer`, the one definition of inference.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, count, repeat
from operator import add, eq, itemgetter
from typing import TYPE_CHECKING, Any

from bulkctl import chunks
from bulkctl.batchcheck import take
from bulkctl.csvread import (
    INT64_MAX,
    INT64_MIN,
    CsvSettings,
    _check_header,
    _converters,
    _csv_error,
    _decoded_lines,
    _infer,
    _record,
)
from bulkctl.errors import InputError
from bulkctl.jsonsplit import SLACK, preview
from bulkctl.records import RawItem

if TYPE_CHECKING:
    from bulkctl.fastpath import ChunkResult, ChunkState, WorkContext

_READ = 1 << 20
_NUMBER_LINE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$", re.MULTILINE)
_ROWS = 64  # rows checked together (see bulkctl.batchcheck)
_COLUMNS = 1024  # rows converted together, a column at a time
_CANONICAL = ("id", "collection", "properties")
_FIRST = itemgetter(0)
_STARTS = frozenset("-0123456789")
_BEYOND = 2.0**63  # a float this large is an integer beyond 64 bits to the rules


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
        data = bytes(buf[:cut])
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
    from bulkctl.fastpath import ChunkState, no_gc

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
        lines = iter(io.StringIO(text))
    old_limit = csv.field_size_limit(settings.limit)
    try:
        with no_gc():
            _parse(ctx, task, state, lines, text)
    finally:
        csv.field_size_limit(old_limit)
    return state.finish()


def _parse(
    ctx: WorkContext, task: CsvTask, state: ChunkState, lines: Iterator[str], text: str
) -> None:
    """The rows; when every row is one line of the right width, parsed in one go."""
    settings = task.settings
    header = list(task.header)
    converters = _converters(header, settings)
    typed = any(kind != "str" for kind in settings.types.values())
    width = len(header)
    if text:
        reader = csv.reader(io.StringIO(text), delimiter=settings.delimiter, strict=True)
        try:
            rows = list(reader)
        except csv.Error:
            rows = []
        if rows and reader.line_num == len(rows) and set(map(len, rows)) == {width}:
            first = task.first_line
            longest = max(map(len, text.split("\n")))  # no cell is longer than its line
            for at in range(0, len(rows), _COLUMNS):
                some = rows[at : at + _COLUMNS]
                starts = range(first + at, first + at + len(some))
                _flush(ctx, task, state, some, starts, converters, typed, longest)
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
            _flush(ctx, task, state, rows, numbers, converters, typed, None)
            _stop(task, state, exc, start + offset, reader.line_num + offset, start - 1, text)
            return
        if not row:
            continue
        if len(row) != width:
            _flush(ctx, task, state, rows, numbers, converters, typed, None)
            rows, numbers = [], []
            state.records += 1
            error = f"row has {len(row)} cells; the header has {width}"
            item = RawItem(task.source, start + offset, None, None, error, None)
            item.text = preview(settings.delimiter.join(row).encode())
            state.slow(item)
            continue
        rows.append(row)
        numbers.append(start + offset)
        if len(rows) == _COLUMNS:
            _flush(ctx, task, state, rows, numbers, converters, typed, None)
            rows, numbers = [], []
    _flush(ctx, task, state, rows, numbers, converters, typed, None)


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
) -> None:
    """Well-formed rows: converted a column at a time and accepted a batch at a time when
    plainly valid; other batches row by row through csvread's conversion and the rules."""
    if not rows:
        return
    settings = task.settings
    header = task.header
    plain = None if typed else _Columns.of(ctx, header, settings, rows, longest)
    for at in range(0, len(rows), _ROWS):
        end = min(at + _ROWS, len(rows))
        if plain is not None and plain.take(state, at, end):
            continue
        for row, start in zip(rows[at:end], starts[at:end], strict=True):
            state.records += 1
            item = _record(row, list(header), converters, task.source, start, settings)
            size = sum(map(len, row)) + _names_size(header)
            if item.error is not None or not state.fast(item.data, size):
                state.slow(item)
            if state.stop:
                return


def _names_size(header: tuple[str, ...]) -> int:
    return sum(map(len, header)) + 8 * len(header)


class _Columns:
    """Rows converted a column at a time; batches of them accepted without a dict a row
    unless lines are to be encoded (or hint names checked)."""

    def __init__(
        self,
        ids: Sequence[str],
        collections: Sequence[str],
        names: list[str],
        values: list[Sequence[Any]],
        raw: list[tuple[str, ...]],
        odd: set[int],
    ) -> None:
        self.ids = ids
        self.collections = collections
        self.names = names
        self.values = values
        self.raw = raw
        self.odd = odd  # rows with a value the rules may refuse (a float beyond 2^63)
        self.filled = [name for name, column in zip(names, raw, strict=True) if any(column)]

    @classmethod
    def of(
        cls,
        ctx: WorkContext,
        header: tuple[str, ...],
        settings: CsvSettings,
        rows: list[list[str]],
        longest: int | None,
    ) -> _Columns | None:
        """The rows as columns, or None when some bound or shape rules the fast way out."""
        id_field = settings.id_field
        columns = list(zip(*rows, strict=True))
        if longest is None:
            longest = max(map(len, chain.from_iterable(rows)))
        rules = ctx.rules
        # What the rules measure stays far from its limit: a value, the whole line.
        if longest * 6 + 2 >= rules.max_value_bytes:
            return None
        if 6 * (len(header) * longest + _names_size(header)) + 256 >= rules.max_line_bytes:
            return None
        if id_field not in header:
            return None
        ids = columns[header.index(id_field)]
        if "" in ids:
            return None
        collections: Sequence[str]
        if "collection" in header:
            collections = columns[header.index("collection")]
            if "" in collections:
                return None
        elif ctx.shape.collection is None:
            return None
        else:
            collections = [ctx.shape.collection] * len(rows)
        kept = [name != id_field and name != "collection" for name in header]
        names = list(compress(header, kept))
        raw = list(compress(columns, kept))
        odd: set[int] = set()
        values = [infer_column(column, odd) for column in raw] if settings.infer else raw
        return cls(ids, collections, names, list(values), raw, odd)

    def take(self, state: ChunkState, start: int, end: int) -> bool:
        """Accept rows start..end when they are plainly valid; False leaves them untouched."""
        if not self.odd.isdisjoint(range(start, end)):
            return False
        ids = self.ids[start:end]
        collections = self.collections[start:end]
        if max(map(len, ids)) > state.max_id:
            return False
        named = set(collections)
        if not named <= state.good.keys() and not all(map(state.collection_ok, named)):
            return False
        hints = state.ctx.hints
        if not state.ctx.pack and (not hints or self._no_new_names(state, named)):
            state.records += end - start
            state.valid += end - start
            per = state.per_collection
            for collection, number in Counter(collections).items():
                per[collection] = per.get(collection, 0) + number
            if hints:
                state.keys.extend(map(hash, zip(collections, ids, strict=True)))
            return True
        cells = map(zip, repeat(self.names), zip(*(v[start:end] for v in self.values), strict=True))
        props = list(
            map(dict, map(compress, cells, zip(*(r[start:end] for r in self.raw), strict=True)))
        )
        records = list(
            map(dict, map(zip, repeat(_CANONICAL), zip(ids, collections, props, strict=True)))
        )
        take(state, records, list(ids), list(collections), props)
        state.records += end - start
        return True

    def _no_new_names(self, state: ChunkState, named: set[str]) -> bool:
        """No row can show a property name its collection has not shown yet."""
        if len(named) != 1:
            return False
        (collection,) = named
        seen = state.names.get(collection)
        return seen is not None and seen.issuperset(self.filled)


def infer_column(cells: tuple[str, ...], odd: set[int]) -> Sequence[Any]:
    """`csvread._infer` of every non-empty cell of a column (empty cells stay ""); rows
    with a float the rules may refuse (beyond 2^63) are added to `odd`."""
    filled = list(filter(None, cells))
    if not filled:
        return cells
    firsts = "".join(map(_FIRST, filled))
    if firsts.isalpha() or _STARTS.isdisjoint(firsts):
        return cells  # no cell starts like a number
    if "-0" not in filled:  # int("-0") is 0 but its text is not "-0": left to _infer
        try:
            numbers = list(map(int, filled))
        except ValueError:
            pass
        else:
            # int() also takes "+1", " 1", "01", "1_0": only cells that are the number's own
            # text are numbers to csvread (no leading zeros), and only in 64 bits.
            same = list(map(eq, map(str, numbers), filled))
            chosen = list(compress(numbers, same))
            if chosen and (min(chosen) < INT64_MIN or max(chosen) > INT64_MAX):
                return _each(cells, odd)
            if all(same) and len(filled) == len(cells):
                return numbers
            out: list[Any] = list(cells)
            where = compress(compress(range(len(cells)), cells), same)
            list(map(out.__setitem__, where, chosen))
            return out
    if _FLOATS.fullmatch("\n".join(filled)):
        floats = _all_floats(filled)
        if floats is not None:
            out = list(cells)
            list(map(out.__setitem__, compress(range(len(cells)), cells), floats))
            return out
    return _each(cells, odd)


def _each(cells: tuple[str, ...], odd: set[int]) -> list[Any]:
    """Cell by cell, where a cell may be a number (a regex finds them in the joined column)."""
    joined = "\n".join(cells)
    out: list[Any] = list(cells)
    starts = list(map(add, accumulate(map(len, cells), initial=0), count()))
    for match in _NUMBER_LINE.finditer(joined):
        index = bisect_right(starts, match.start()) - 1
        cell = cells[index]
        if cell:
            value = out[index] = _infer(cell)
            if type(value) is float and abs(value) >= _BEYOND:
                odd.add(index)
    return out


def _all_floats(cells: list[str]) -> list[Any] | None:
    """Every cell as a float (each has a fraction or an exponent), when all are finite."""
    try:
        numbers = list(map(float, cells))
    except ValueError:  # a cell with a newline inside, say
        return None
    if max(map(abs, numbers)) >= _BEYOND:  # infinite, or where the rules refuse floats
        return None
    return numbers


_FLOAT_CELL = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
_FLOATS = re.compile(rf"(?:{_FLOAT_CELL}\n)*{_FLOAT_CELL}")


__all__ = ["CsvTask", "ErrorTask", "csv_chunk", "csv_tasks", "infer_column", "rejoin"]

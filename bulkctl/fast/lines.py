"""One chunk of input through an object target's rules, with as few Python steps a record as it can.

This is what a worker process (or the main process, for small inputs) runs on each chunk. The
result is everything the main process needs, in input order, without a Python object per valid
record: counts, rejections, hint material, the duplicate-id keys, and (when packing) each lane's
lines already compressed as one gzip member.

Exactness: a record takes the fast path only when cheap checks prove the target's own rules
(`shape` + `ObjectRules.check`) would accept it and encode the same line; anything unusual
(an unknown key, a list, a null, a big number, a long string, a bad id or collection, a key
that may be repeated) goes through those very functions (`ChunkState.slow`, in
`bulkctl.fast.state`), read exactly (`bulkctl.exactjson`). Canonical NDJSON lines are first
offered to the C scanner (`bulkctl.native`), which takes only lines it proves exact. So the
fast paths can only be faster, never different: test_parallel.py, test_fastpath.py and
test_native.py compare them.
"""

from __future__ import annotations

from itertools import repeat
from types import ModuleType
from typing import Any, cast

import orjson

from bulkctl.exactjson import exact_item, no_repeats, read_exactly
from bulkctl.fast.batch import accept_batch
from bulkctl.fast.state import ChunkResult, ChunkState, WorkContext, no_gc
from bulkctl.native import native
from bulkctl.read.json_array import SLACK, Unparsed, parse_element, preview, too_long
from bulkctl.read.ndjson import bad_ndjson_line as _bad_line
from bulkctl.records import RawItem

__all__ = [
    "ChunkResult",
    "ChunkState",
    "WorkContext",
    "items_chunk",
    "ndjson_chunk",
    "new_scanner",
    "take_scanned",
]

BATCH = 64  # records checked together (small enough to stay in the CPU caches)
_STOPS_ALLOWED = 16  # lines the C scanner may hand back before its yield is judged
_STOP_RATIO = 8  # ... then it goes on only while it takes 8 lines for every one handed back


def ndjson_chunk(ctx: WorkContext, source: str, first_line: int, data: bytes) -> ChunkResult:
    """Every line of a newline-aligned piece of NDJSON (see `bulkctl.read.chunks`)."""
    state = ChunkState(ctx)
    with no_gc():
        module = _scanner_module(state)
        if module is None:
            _batched(state, source, first_line, data)
        else:
            _scanned(state, module, source, first_line, data)
    return state.finish()


def _scanned(
    state: ChunkState, module: ModuleType, source: str, first_line: int, data: bytes
) -> None:
    """The C scanner takes the canonical lines; Python decides each other line as before.

    Lines go in input order whichever side takes them, so counts, hints, keys and lanes
    come out as `_batched` makes them. A chunk where the scanner keeps stopping (escaped
    text, spaced JSON, flat records) goes on in `_batched`, which is faster for those.
    """
    scanner = new_scanner(state, module)
    end = len(data)
    pos = 0
    line = first_line
    stops = 0
    while pos < end:
        stop, taken = take_scanned(state, scanner, data, pos)
        line += taken
        if stop >= end:
            return
        newline = data.find(b"\n", stop)
        last = newline < 0
        if stops >= _STOPS_ALLOWED and stops * _STOP_RATIO > line - first_line:
            _batched(state, source, line, data[stop:])
            return
        stops += 1
        _lines(state, source, line, [data[stop:] if last else data[stop:newline]], last)
        line += 1
        if state.stop or last:
            return
        pos = newline + 1


def _scanner_module(state: ChunkState) -> ModuleType | None:
    """The C module, for its scanner: not when each line's collection must be noted (one
    collection a part), as the scanner counts collections without saying whose each line is;
    `take_scanned` knows them only when it took one collection's lines (as from a CSV)."""
    return None if state.one_collection else native()


def new_scanner(state: ChunkState, module: ModuleType) -> Any:
    """The C scanner for one chunk, with the chunk's limits and lane buffers."""
    ctx, rules = state.ctx, state.rules
    shape = ctx.shape
    id_field = shape.id_field if shape.id_field not in ("collection", "properties") else None
    return module.Scanner(
        ctx.lanes if ctx.pack else 0,
        ctx.hints,
        state.small,
        rules.max_id_chars,
        rules.max_collection_chars,
        state.bufs,
        None if shape.collection is None else shape.collection.encode(),
        None if id_field is None else id_field.encode(),
    )


def take_scanned(state: ChunkState, scanner: Any, data: bytes, pos: int) -> tuple[int, int]:
    """The scanner takes what lines it can of `data` from `pos` into the chunk's state (their
    lines go to the lanes in C; counts, keys and hints are merged here): (stop, lines taken)."""
    stop, taken, counts, keys, groups, order, lane_records = scanner.scan(data, pos)
    if not taken:
        return stop, 0
    state.records += taken
    state.valid += taken
    per = state.per_collection
    for collection, count in counts:
        per[collection] = per.get(collection, 0) + count
    if state.ctx.hints:
        state.keys.frombytes(keys)
        fresh = state.book.fresh
        for collection, candidates in groups:
            new = fresh(collection, candidates)
            if new:
                state.groups.append((collection, new))
    if state.ctx.pack:
        state.order += order
        records = state.lane_records
        for lane, count in enumerate(lane_records):
            records[lane] += count
        if state.one_collection:
            if len(counts) != 1:
                raise ValueError("the scanner took lines of several collections: whose is each?")
            state.note_collections(repeat(counts[0][0], taken))
    return stop, taken


def _batched(state: ChunkState, source: str, first_line: int, data: bytes) -> None:
    """Lines parsed in batches and checked a batch at a time (`bulkctl.fast.batch`)."""
    lines = data.split(b"\n")
    ended = data.endswith(b"\n")  # then every line had its newline
    if ended:
        lines.pop()
    loads = orjson.loads
    small = state.small
    for start in range(0, len(lines), BATCH):
        batch = lines[start : start + BATCH]
        if max(map(len, batch)) < small:
            try:
                values = list(map(loads, batch))
            except orjson.JSONDecodeError:
                pass
            else:
                if accept_batch(state, values, batch):
                    state.records += len(values)
                    continue
        last = start + len(batch) == len(lines) and not ended
        _lines(state, source, first_line + start, batch, last)
        if state.stop:
            break


def _lines(state: ChunkState, source: str, first: int, lines: list[bytes], last: bool) -> None:
    """Record by record: the fast check, else the target's exact rules."""
    cap = state.ctx.limit + SLACK
    loads = orjson.loads
    for offset, raw in enumerate(lines):
        lineno = first + offset
        size = len(raw)
        if size > cap:
            state.records += 1
            error = too_long("line", cap, state.ctx.limit)
            state.slow(RawItem(source, lineno, None, None, error, None, preview(raw)))
        else:
            try:
                value = loads(raw)
            except orjson.JSONDecodeError:
                # As read.ndjson.read_ndjson saw it, with its newline (error positions count it).
                ended = not last or offset < len(lines) - 1
                item = _bad_line(raw + b"\n" if ended else raw, source, lineno)
                if item is None:
                    continue
                state.records += 1
                state.slow(item)
            else:
                state.records += 1
                if not (no_repeats(raw, value) and state.fast(value, size)):
                    state.slow(exact_item(source, lineno, None, raw, value))
        if state.stop:
            return


def items_chunk(ctx: WorkContext, items: list[tuple[RawItem, int]]) -> ChunkResult:
    """Items a reader already parsed (JSON elements, CSV rows), each with its input size."""
    state = ChunkState(ctx)
    small = state.small
    if any(isinstance(item.data, Unparsed) for item, _ in items):
        with no_gc():
            _elements(state, items)
        return state.finish()
    with no_gc():
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            sizes_ok = max(size for _, size in batch) < small
            plain = sizes_ok and all(item.error is None for item, _ in batch)
            raws = [item.raw for item, _ in batch]  # JSON elements still to be read exactly
            missing = raws.count(None)
            if plain and missing in (0, len(raws)):
                lines = None if missing else cast("list[bytes]", raws)
                if accept_batch(state, [item.data for item, _ in batch], lines):
                    state.records += len(batch)
                    continue
            for item, size in batch:
                state.records += 1
                raw = item.raw
                if (
                    item.error is not None
                    or (raw is not None and not no_repeats(raw, item.data))
                    or not state.fast(item.data, size)
                ):
                    state.slow(read_exactly(item))
                if state.stop:
                    return state.finish()
    return state.finish()


def _elements(state: ChunkState, items: list[tuple[RawItem, int]]) -> None:
    """JSON elements, some still bytes (`Unparsed`): runs of one-line elements are offered to
    the C scanner as lines, the rest (and what it leaves) are parsed and checked here."""
    module = _scanner_module(state)
    at, count = 0, len(items)
    while at < count and not state.stop:
        first = end = at
        while module is not None and end < count and _scannable(items[end][0]):
            end += 1
        if module is None or end == first:
            _element(state, items[at][0], items[at][1])
            at += 1
            continue
        raws = [item.data.raw for item, _ in items[first:end]]
        joined = b"\n".join(raws)
        scanner = new_scanner(state, module)
        pos = 0
        while not state.stop:
            stop, taken = take_scanned(state, scanner, joined, pos)
            at += taken
            if at == end:
                break
            _element(state, items[at][0], items[at][1])  # the one it stopped at
            pos = stop + len(raws[at - first]) + 1
            at += 1
            if at == end:
                break


def _scannable(item: RawItem) -> bool:
    """An element the scanner may take: bytes of one line, with no collection to add."""
    data = item.data
    return isinstance(data, Unparsed) and data.collection is None and b"\n" not in data.raw


def _element(state: ChunkState, item: RawItem, size: int) -> None:
    """One element through the exact checks, parsed first if it is still bytes."""
    if isinstance(item.data, Unparsed):
        item = parse_element(item)
        size = item.size if item.size is not None else size
    else:
        item = read_exactly(item)
    state.records += 1
    if item.error is not None or not state.fast(item.data, size):
        state.slow(item)

"""One chunk of input through an object target's rules, with as few Python steps a record as it can.

This is what a worker process (or the main process, for small inputs) runs on each chunk. The
result is everything the main process needs, in input order, without a Python object per valid
record: counts, rejections, hint material, the duplicate-id keys, and (when packing) each lane's
lines already compressed as one gzip member.

Exactness: a record takes the fast path only when cheap checks prove the target's own rules
(`shape` + `ObjectRules.check`) would accept it and encode the same line; anything unusual
(an unknown key, a list, a null, a big number, a long string, a bad id or collection) goes
through those very functions (`_Chunk.slow`). So the fast path can only be faster, never
different: the tests in test_parallel.py and test_fastpath.py compare the two.
"""

from __future__ import annotations

import gc
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson

from bulkctl.batchcheck import accept_batch
from bulkctl.chunks import ItemsTask, LinesTask
from bulkctl.compress import gzip_member
from bulkctl.csvchunks import CsvTask, ErrorTask, csv_chunk
from bulkctl.jsonsplit import SLACK, preview, too_long
from bulkctl.native import native
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions
from bulkctl.sources import bad_ndjson_line as _bad_line

if TYPE_CHECKING:
    from bulkctl.rules import ObjectRules
    from bulkctl.targets.base import Target

_SIMPLE = frozenset({str, int, float, bool})
_NUMBERS = frozenset({int, float})
_STRICT = orjson.OPT_STRICT_INTEGER  # ints beyond 53 bits raise: they take the exact path
BATCH = 64  # records checked together (small enough to stay in the CPU caches)
_STOPS_ALLOWED = 16  # lines the C scanner may hand back before its yield is judged
_STOP_RATIO = 8  # ... then it goes on only while it takes 8 lines for every one handed back


@dataclass(frozen=True)
class WorkContext:
    """What every chunk of one run is processed with (inherited by forked workers)."""

    target: Target
    rules: ObjectRules
    shape: ShapeOptions
    hints: bool  # track hint material (the target's object_hints)
    pack: bool  # encode lines into lanes (push); False: only check (validate)
    lanes: int = 1
    level: int | None = 6  # gzip level of the lane members; None: plain lines
    fail_fast: bool = False  # stop a chunk at its first rejection
    limit: int = 400_000  # --max-record-bytes of the read options


@dataclass(slots=True)
class ChunkResult:
    """What one chunk produced, in input order (see `bulkctl.merging` for its use)."""

    records: int = 0  # input records counted (tally.records)
    valid: int = 0
    per_collection: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[Rejection, int]] = field(default_factory=list)  # (it, count)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)  # new property names
    keys: bytes = b""  # array('q') of hash((collection, id)), one per valid record
    lanes: list[bytes | None] = field(default_factory=list)  # one gzip member (or lines)
    lane_bytes: list[int] = field(default_factory=list)  # uncompressed bytes a lane
    lane_records: list[int] = field(default_factory=list)
    order: bytes = b""  # the lane of every valid line, in input order
    lines: int = 0  # newlines in a LinesTask's data (the main process numbers lines)
    error: str | None = None  # an InputError that ends the run after these records
    bad_end: bool = False  # CSV: the chunk ended inside a row (see csvchunks.rejoin)
    tail_line: int = 0  # ... the line that row starts on
    tail_offset: int = 0  # ... and where in the chunk


class ChunkState:
    """The state of one chunk being processed; `finish` turns it into a ChunkResult."""

    def __init__(self, ctx: WorkContext) -> None:
        self.ctx = ctx
        self.rules = ctx.rules
        self.records = 0
        self.valid = 0
        self.per_collection: dict[str, int] = {}
        self.rejections: list[tuple[Rejection, int]] = []
        self.groups: list[tuple[str, list[str]]] = []
        self.names: dict[str, set[str]] = {}
        self.keys = array("q")
        self.bufs = [bytearray() for _ in range(ctx.lanes)] if ctx.pack else []
        self.lane_records = [0] * ctx.lanes if ctx.pack else []
        self.order = bytearray()
        self.good: dict[str, int] = {}  # valid collection -> crc32 of "collection\0"
        self.bad: set[str] = set()
        self.crc32 = zlib.crc32
        self.stop = False  # fail-fast: a rejection was found
        self.error: str | None = None
        self.bad_end = False
        self.tail_line = 0
        self.tail_offset = 0
        rules = ctx.rules
        self.max_id = rules.max_id_chars
        self.max_line = rules.max_line_bytes
        # Below this size no string value can reach the value limit (a character is at
        # least one byte of input and at most 6 of JSON), and the encoded line (at most
        # ~6x the input: `1e15` becomes `1000000000000000.0`) stays under the line limit.
        self.small = min((rules.max_value_bytes - 2) // 6, rules.max_line_bytes // 8)

    # -- verdicts --------------------------------------------------------------------------

    def collection_base(self, collection: Any) -> int | None:
        """crc32("collection\\0") for a valid collection name (cached), else None."""
        if type(collection) is not str:
            return None
        base = self.good.get(collection)
        if base is not None:
            return base
        if collection in self.bad:
            return None
        problems: list[Problem] = []
        self.rules._check_collection(collection, problems)
        if problems:
            self.bad.add(collection)
            return None
        base = self.good[collection] = zlib.crc32(f"{collection}\x00".encode())
        return base

    def collection_ok(self, collection: Any) -> bool:
        return self.collection_base(collection) is not None

    def accept(
        self,
        collection: str,
        base: int,
        record_id: str,
        props: dict[str, Any],
        line: bytes,
        items: int = 1,
    ) -> None:
        """One valid record: counts, hint material, its key and (packing) its lane."""
        self.valid += items
        per = self.per_collection
        per[collection] = per.get(collection, 0) + items
        if self.ctx.hints:
            names = self.names.get(collection)
            if names is None:
                names = self.names[collection] = set()
            if not names.issuperset(props):
                new = sorted(props.keys() - names)
                names.update(new)
                self.groups.append((collection, new))
            self.keys.append(hash((collection, record_id)))
        if self.ctx.pack:
            lane = zlib.crc32(record_id.encode(), base) % self.ctx.lanes
            buf = self.bufs[lane]
            buf += line
            buf += b"\n"
            self.lane_records[lane] += 1
            self.order.append(lane)

    def fast(self, data: Any, size: int) -> bool:
        """Accept `data` (a parsed value of `size` input bytes) if it is plainly valid."""
        if type(data) is not dict or size >= self.small:
            return False
        if "properties" in data:
            # The canonical shape: exactly id, collection and properties (else: exact path).
            if len(data) != 3:
                return False
            props = data["properties"]
            record_id = data.get("id")
            collection = data.get("collection")
        else:  # a flat object: the properties of its collection, less id and collection
            shape = self.ctx.shape
            id_key = shape.id_field
            record_id = data.get(id_key)
            collection = data.get("collection")
            if collection is None:
                collection = shape.collection
            props = data.copy()
            props.pop(id_key, None)
            props.pop("collection", None)
        if (
            type(record_id) is not str
            or type(collection) is not str
            or not 0 < len(record_id) <= self.max_id
            or type(props) is not dict
            or "" in props
        ):
            return False
        base = self.collection_base(collection)
        if base is None:
            return False
        kinds = set(map(type, props.values()))
        if not kinds <= _SIMPLE:
            return False
        if kinds.isdisjoint(_NUMBERS) and not self.ctx.pack:
            line = b""
        else:
            try:
                line = orjson.dumps(
                    {"id": record_id, "collection": collection, "properties": props}, None, _STRICT
                )
            except orjson.JSONEncodeError:  # an int beyond 53 bits: checked exactly
                return False
            # Floats of 1e16 and more print as `1e+16`: those may be beyond 2^63.
            if float in kinds and b"e+" in line:
                return False
        self.accept(collection, base, record_id, props, line)
        return True

    def slow(self, item: RawItem) -> None:
        """The target's own shaping and rules, exactly as `bulkctl.validation.valid_lines`."""
        target = self.ctx.target
        for shaped in target.records([item], self.ctx.shape):
            if isinstance(shaped, Record):
                problems, line = target.check(shaped)
                if line is not None:
                    base = self.collection_base(shaped.collection)
                    if base is None:  # pragma: no cover - check() accepted the collection
                        base = zlib.crc32(f"{shaped.collection}\x00".encode())
                    self.accept(
                        shaped.collection, base, shaped.id, shaped.properties, line, shaped.items
                    )
                    continue
                raw = shaped.raw
                if raw is None:
                    raw = {
                        "id": shaped.id,
                        "collection": shaped.collection,
                        "properties": shaped.properties,
                    }
                rejection = Rejection(shaped.source, shaped.line, shaped.index, problems, raw)
                self.reject(rejection, max(shaped.items, 1))
            else:
                self.reject(shaped, 1)

    def reject(self, rejection: Rejection, count: int) -> None:
        self.rejections.append((rejection, count))
        if self.ctx.fail_fast:
            self.stop = True

    # -- the result ------------------------------------------------------------------------

    def finish(self) -> ChunkResult:
        result = ChunkResult(
            records=self.records,
            valid=self.valid,
            per_collection=self.per_collection,
            rejections=self.rejections,
            groups=self.groups,
            keys=self.keys.tobytes(),
            error=self.error,
            bad_end=self.bad_end,
            tail_line=self.tail_line,
            tail_offset=self.tail_offset,
        )
        if self.ctx.pack:
            level = self.ctx.level
            result.lanes = [
                None if not buf else bytes(buf) if level is None else gzip_member(buf, level)
                for buf in self.bufs
            ]
            result.lane_bytes = [len(buf) for buf in self.bufs]
            result.lane_records = self.lane_records
            result.order = bytes(self.order)
        return result


def ndjson_chunk(ctx: WorkContext, source: str, first_line: int, data: bytes) -> ChunkResult:
    """Every line of a newline-aligned piece of NDJSON (see `bulkctl.chunks`)."""
    state = ChunkState(ctx)
    with no_gc():
        module = native()
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
    ctx = state.ctx
    rules = state.rules
    scanner = module.Scanner(
        ctx.lanes if ctx.pack else 0,
        ctx.hints,
        state.small,
        rules.max_id_chars,
        rules.max_collection_chars,
        state.bufs,
    )
    end = len(data)
    pos = 0
    line = first_line
    stops = 0
    while pos < end:
        stop, taken, valid, counts, keys, groups, order, lane_records = scanner.scan(data, pos)
        line += taken
        if taken:
            _merge_scanned(state, valid, counts, keys, groups, order, lane_records)
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


def _merge_scanned(
    state: ChunkState,
    valid: int,
    counts: list[tuple[str, int]],
    keys: bytes,
    groups: list[tuple[str, list[str]]],
    order: bytes,
    lane_records: list[int],
) -> None:
    """What the scanner took, into the chunk's state (its lines are in the lanes already)."""
    state.records += valid
    state.valid += valid
    per = state.per_collection
    for collection, count in counts:
        per[collection] = per.get(collection, 0) + count
    if state.ctx.hints:
        state.keys.frombytes(keys)
        names = state.names
        for collection, candidates in groups:
            seen = names.get(collection)
            if seen is None:
                seen = names[collection] = set()
            new = sorted(set(candidates) - seen)
            if new:
                seen.update(new)
                state.groups.append((collection, new))
    if state.ctx.pack:
        state.order += order
        records = state.lane_records
        for lane, count in enumerate(lane_records):
            records[lane] += count


def _batched(state: ChunkState, source: str, first_line: int, data: bytes) -> None:
    """Lines parsed in batches and checked a batch at a time (`bulkctl.batchcheck`)."""
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
                if accept_batch(state, values):
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
                # As sources.read_ndjson saw it, with its newline (error positions count it).
                ended = not last or offset < len(lines) - 1
                item = _bad_line(raw + b"\n" if ended else raw, source, lineno)
                if item is None:
                    continue
                state.records += 1
                state.slow(item)
            else:
                state.records += 1
                if not state.fast(value, size):
                    state.slow(RawItem(source, lineno, None, value))
        if state.stop:
            return


def items_chunk(ctx: WorkContext, items: list[tuple[RawItem, int]]) -> ChunkResult:
    """Items a reader already parsed (JSON elements, CSV rows), each with its input size."""
    state = ChunkState(ctx)
    small = state.small
    with no_gc():
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            sizes_ok = max(size for _, size in batch) < small
            plain = sizes_ok and all(item.error is None for item, _ in batch)
            if plain and accept_batch(state, [item.data for item, _ in batch]):
                state.records += len(batch)
                continue
            for item, size in batch:
                state.records += 1
                if item.error is not None or not state.fast(item.data, size):
                    state.slow(item)
                if state.stop:
                    return state.finish()
    return state.finish()


@contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic collection while a chunk is checked: it makes no cycles, only garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Task = LinesTask | ItemsTask | CsvTask | ErrorTask


def process(ctx: WorkContext, task: Task) -> ChunkResult:
    """One task of `bulkctl.chunks` or `bulkctl.csvchunks`, in whichever process runs it."""
    if isinstance(task, LinesTask):
        from bulkctl.errors import InputError

        try:
            data = task.content()  # a span of a regular file is read here, not in the parent
        except InputError as exc:  # the file changed under the run
            return ChunkResult(error=str(exc))
        result = ndjson_chunk(ctx, task.source, 1, data)
        result.lines = data.count(b"\n")
        return result
    if isinstance(task, CsvTask):
        return csv_chunk(ctx, task)
    if isinstance(task, ErrorTask):
        return ChunkResult(error=task.message)
    result = items_chunk(ctx, task.items)
    result.lines = len(task.items) if task.relative else 0
    return result


def runs_here(task: Task) -> bool:
    """Items already parsed are checked where they are: shipping them costs more than that."""
    return isinstance(task, ItemsTask | ErrorTask)

"""The state of one chunk being checked, and what it hands back to the main process.

`ChunkState` is the record-by-record core every chunk function shares (`bulkctl.fast.lines`
for NDJSON and parsed items, `bulkctl.fast.csv_chunk` for CSV): the cheap exact check of one
parsed record (`fast`), the target's own rules for anything unusual (`slow`), and the
accounting of a valid record (`accept`: counts, hint material, duplicate-id key, lane).
`finish` turns it into a `ChunkResult`, which is what crosses the pipe.

When parts hold one collection each (`WorkContext.one_collection`), lanes come back as plain
lines with the collection of every line: the main process cuts the lanes by collection
line by line and compresses them itself (`bulkctl.pack.packer.Packer.add_block`).
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from bulkctl.check.hints import NameBook
from bulkctl.pack.compress import gzip_member
from bulkctl.pack.lanes import lane_base, lane_of
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions

if TYPE_CHECKING:
    from bulkctl.check.rules import ObjectRules
    from bulkctl.check.validate import RecordHandling

SIMPLE = frozenset({str, int, float, bool})  # the value types a fast check may accept
NUMBERS = frozenset({int, float})
STRICT = orjson.OPT_STRICT_INTEGER  # ints beyond 53 bits raise: they take the exact path


@dataclass(frozen=True)
class WorkContext:
    """What every chunk of one run is processed with (inherited by forked workers)."""

    target: RecordHandling  # the target's shaping and rules (`records`, `check`)
    rules: ObjectRules
    shape: ShapeOptions
    hints: bool  # track hint material (the target's object_hints)
    pack: bool  # encode lines into lanes (push); False: only check (validate)
    lanes: int = 1
    level: int | None = 6  # gzip level of the lane members; None: plain lines
    fail_fast: bool = False  # stop a chunk at its first rejection
    limit: int = 400_000  # --max-record-bytes of the read options
    # Packing for parts of one collection each: lanes come back plain (whatever `level`), with
    # each line's collection (`ChunkResult.collections`, `line_collections`).
    one_collection: bool = False


@dataclass(slots=True)
class ChunkResult:
    """What one chunk produced, in input order (see `bulkctl.fast.merge` for its use)."""

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
    # One collection a part only: the collections the lines name, and array('I') of the index
    # there of every valid line's collection, in input order (as `order`).
    collections: list[str] = field(default_factory=list)
    line_collections: bytes = b""
    lines: int = 0  # newlines in a LinesTask's data (the main process numbers lines)
    error: str | None = None  # an InputError that ends the run after these records
    bad_end: bool = False  # CSV: the chunk ended inside a row (see read.csv_chunks.rejoin)
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
        self.book = NameBook()  # the property names each collection showed in this chunk
        self.keys = array("q")
        self.bufs = [bytearray() for _ in range(ctx.lanes)] if ctx.pack else []
        self.lane_records = [0] * ctx.lanes if ctx.pack else []
        self.order = bytearray()
        self.one_collection = ctx.pack and ctx.one_collection  # note each line's collection
        self.numbers = _Numbering()  # ... the collections, numbered as they first appear
        self.line_collections = array("I")  # ... and the number of each line's, in order
        self.good: dict[str, int] = {}  # valid collection -> its lanes.lane_base
        self.bad: set[str] = set()
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
        """The `lane_base` of a valid collection name (cached), else None."""
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
        base = self.good[collection] = lane_base(collection)
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
            new = self.book.fresh(collection, props.keys())
            if new:
                self.groups.append((collection, new))
            self.keys.append(hash((collection, record_id)))
        if self.ctx.pack:
            lane = lane_of(base, record_id, self.ctx.lanes)
            buf = self.bufs[lane]
            buf += line
            buf += b"\n"
            self.lane_records[lane] += 1
            self.order.append(lane)
            if self.one_collection:
                self.line_collections.append(self.numbers[collection])

    def note_collections(self, collections: Iterable[str]) -> None:
        """One collection a part: the collections of lines just routed, in input order."""
        self.line_collections.extend(map(self.numbers.__getitem__, collections))

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
        if not kinds <= SIMPLE:
            return False
        if kinds.isdisjoint(NUMBERS) and not self.ctx.pack:
            line = b""
        else:
            try:
                line = orjson.dumps(
                    {"id": record_id, "collection": collection, "properties": props}, None, STRICT
                )
            except orjson.JSONEncodeError:  # an int beyond 53 bits: checked exactly
                return False
            # Floats of 1e16 and more print as `1e+16`: beyond 2^63 orjson may have read
            # an integer as a float, which only `bulkctl.exactjson` can tell.
            if float in kinds and b"e+" in line:
                return False
        self.accept(collection, base, record_id, props, line)
        return True

    def slow(self, item: RawItem) -> None:
        """The target's own shaping and rules, exactly as `bulkctl.check.validate.valid_lines`."""
        target = self.ctx.target
        for shaped in target.records([item], self.ctx.shape):
            if isinstance(shaped, Record):
                problems, line = target.check(shaped)
                if line is not None:
                    base = self.collection_base(shaped.collection)
                    if base is None:  # pragma: no cover - check() accepted the collection
                        base = lane_base(shaped.collection)
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
            level = None if self.one_collection else self.ctx.level
            result.lanes = [
                None if not buf else bytes(buf) if level is None else gzip_member(buf, level)
                for buf in self.bufs
            ]
            result.lane_bytes = [len(buf) for buf in self.bufs]
            result.lane_records = self.lane_records
            result.order = bytes(self.order)
            if self.one_collection:
                result.collections = list(self.numbers)
                result.line_collections = self.line_collections.tobytes()
        return result


class _Numbering(dict[str, int]):
    """Collection names numbered 0, 1, ... in the order they are first looked up."""

    def __missing__(self, name: str) -> int:
        number = self[name] = len(self)
        return number


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

"""A spooled part → the request bodies of an API without sessions, built in memory.

Request-based APIs (Segment Objects `/v1/set`: at most 10 objects of one collection) take
small bodies, each applied as soon as it is accepted. The records are still packed into
spooled parts by lane first (`bulkctl.pack.packer`), so the whole input is validated before
the first request and `resume` can send the rest without the input; at send time each part is
cut here, in order, into `Batch`es.

The cut is a pure function of the part's bytes and the rules, so a resumed push cuts the same
batches and skips exactly those the job store recorded as acknowledged.

Versions of one id that fall into one batch become one object (later wins, property by
property: how the APIs merge). Lines are the canonical NDJSON records the checks encode
(`{"id", "collection", "properties"}`, `bulkctl.check.rules.split_line` finds the pieces
without parsing); properties are re-encoded only when versions merge, otherwise their bytes
travel as they are.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import orjson

from bulkctl.check.rules import PROPERTIES_KEY, split_line
from bulkctl.pack.parts import Part

MAX_IDS_COMPARED = 1_000_000  # ids of one lane held to find a repeat; beyond: "not known"


@dataclass(frozen=True, slots=True)
class BatchRules:
    """How an API's request bodies are cut: objects a request, one collection, merged ids,
    and (`max_body_bytes`) the most bytes a body may have.

    A body's size is counted as `envelope_bytes` (what surrounds the objects, e.g.
    `{"records":[]}`, at its longest) plus, for each object, its id and properties as JSON and
    `object_bytes` (the keys, braces and comma the target writes around them). The target's
    rules must refuse any record too large for a body of its own (the cutter raises if one
    arrives: a body over the limit is never built).
    """

    max_objects: int
    one_collection: bool = True
    merge_repeated_ids: bool = True
    max_body_bytes: int | None = None
    envelope_bytes: int = 0
    object_bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, not {self.max_objects}")
        if self.max_body_bytes is not None and self.max_body_bytes <= self.envelope_bytes:
            raise ValueError("max_body_bytes must leave room for objects after the envelope")

    def object_size(self, item: BatchObject) -> int:
        """What one object adds to a body."""
        return len(item.id_json) + len(item.properties) + self.object_bytes

    def fits(self, body: int, size: int) -> bool:
        """Whether an object of `size` bytes fits in a body holding `body` bytes of objects."""
        limit = self.max_body_bytes
        return limit is None or self.envelope_bytes + body + size <= limit


@dataclass(frozen=True, slots=True)
class BatchObject:
    """One object of a batch, as bytes of its line: the id and properties as JSON (merged
    when versions were), so a body is built without encoding anything again."""

    id_json: bytes
    collection: str
    properties: bytes
    merged: int = 1  # input records it stands for

    @property
    def id(self) -> str:
        """The id as text (for messages)."""
        value: str = orjson.loads(self.id_json)
        return value


@dataclass(frozen=True, slots=True)
class Batch:
    """One request body's worth of objects, cut from part `part` at position `index`.

    `records` counts input records (more than objects when versions merged); `size` is the
    bytes of the part's lines it carries and `through` those of this batch and every batch
    before it, so progress can say how much of the part the API has answered.
    """

    part: int
    index: int
    collection: str  # "" when the rules allow several collections a batch
    objects: tuple[BatchObject, ...]
    records: int
    size: int
    through: int


def _open(part: Part) -> IO[bytes]:
    """The part's lines, whatever it was spooled as (plain or gzip members)."""
    raw = part.path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


class _Open:
    """A batch being filled."""

    __slots__ = ("body", "collection", "ids", "objects", "records", "size")

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.objects: list[BatchObject] = []
        self.ids: dict[tuple[str, bytes], int] = {}  # (collection, id) -> index in objects
        self.records = 0
        self.size = 0  # bytes of the part's lines it carries
        self.body = 0  # bytes its objects take in the request body (with a body limit)


def _merge(earlier: BatchObject, properties: bytes) -> BatchObject:
    """Two versions of one object as one: later properties win, one by one."""
    merged = orjson.loads(earlier.properties)
    merged.update(orjson.loads(properties))
    return BatchObject(
        earlier.id_json, earlier.collection, orjson.dumps(merged), earlier.merged + 1
    )


def _parts(line: bytes) -> tuple[bytes, str, bytes]:
    """(id as JSON, collection, properties as JSON) of a canonical line, parsed if need be."""
    parts = split_line(line)
    if parts is not None:
        return parts
    data = orjson.loads(line)
    return orjson.dumps(data["id"]), data["collection"], orjson.dumps(data["properties"])


class _Cutter:
    """Cuts one part's lines into batches; with `one_collection`, one open batch a
    collection (a lane mixes collections, and objects of two collections are never the same
    object, so filling each on its own changes no object's order)."""

    def __init__(self, part: Part, rules: BatchRules) -> None:
        self.part = part
        self.rules = rules
        self.open: dict[str, _Open] = {}  # by collection ("" for all); insertion = age
        self.index = 0
        self.through = 0

    def add(self, line: bytes, size: int) -> Batch | None:
        """Add one line; the batch this closed, if any."""
        id_json, collection, properties = _parts(line)
        rules = self.rules
        limited = rules.max_body_bytes is not None
        key = collection if rules.one_collection else ""
        closed = None
        current = self.open.get(key)
        if current is not None:
            at = current.ids.get((collection, id_json)) if rules.merge_repeated_ids else None
            if at is not None:
                earlier = current.objects[at]
                merged = _merge(earlier, properties)
                grown = rules.object_size(merged) - rules.object_size(earlier) if limited else 0
                if rules.fits(current.body, grown):
                    current.objects[at] = merged
                    current.body += grown
                    current.records += 1
                    current.size += size
                    return None
                # The merged object would not fit: the version goes in the next batch of
                # this lane, which is sent after this one, so it still wins.
                closed = self.close(key)
                current = None
            elif len(current.objects) >= rules.max_objects:
                closed = self.close(key)
                current = None
        item = BatchObject(id_json, collection, properties)
        weight = rules.object_size(item) if limited else 0
        if current is not None and not rules.fits(current.body, weight):
            closed = self.close(key)
            current = None
        if current is None:
            if not rules.fits(0, weight):
                raise ValueError(
                    f"an object of {weight:,} bytes cannot fit in a request body of at most "
                    f"{rules.max_body_bytes:,} bytes (the target's rules must refuse it)"
                )
            current = self.open[key] = _Open(key)
        current.ids[(collection, id_json)] = len(current.objects)
        current.objects.append(item)
        current.body += weight
        current.records += 1
        current.size += size
        return closed

    def close(self, key: str) -> Batch:
        current = self.open.pop(key)
        self.through += current.size
        batch = Batch(
            self.part.number,
            self.index,
            current.collection,
            tuple(current.objects),
            current.records,
            current.size,
            self.through,
        )
        self.index += 1
        return batch

    def rest(self) -> Iterator[Batch]:
        """The batches still open at the end, oldest first."""
        for key in list(self.open):
            yield self.close(key)


def batches_of(part: Part, rules: BatchRules, *, skip: int = 0) -> Iterator[Batch]:
    """The batches of one spooled part, in order; the first `skip` are cut but not yielded."""
    cutter = _Cutter(part, rules)
    with _open(part) as lines:
        for raw in lines:
            line = raw.rstrip(b"\n")
            if not line:
                continue
            closed = cutter.add(line, len(raw))
            if closed is not None and closed.index >= skip:
                yield closed
    for batch in cutter.rest():
        if batch.index >= skip:
            yield batch


def count_batches(part: Part, rules: BatchRules) -> int:
    """How many requests a part makes (for a display's total)."""
    return sum(1 for _ in batches_of(part, rules))


def ids_repeat(parts: Iterable[Part]) -> bool | None:
    """Whether some (collection, id) occurs more than once across `parts` (None: not known).

    Every version of one object is in one lane (`bulkctl.pack.lanes`), so lanes are compared
    one at a time and memory holds at most one lane's ids, up to `MAX_IDS_COMPARED`; a lane
    with more answers None. The key is a line's bytes before `,"properties":` (the encoded id
    and collection: no string can hold that sequence unescaped), hashed; a collision of two
    hashes can only say "repeat" wrongly, which costs speed, never order.
    """
    by_lane: dict[int, list[Part]] = {}
    for part in parts:
        by_lane.setdefault(part.lane, []).append(part)
    unknown = False
    for lane in sorted(by_lane):
        found = _lane_repeats(sorted(by_lane[lane], key=lambda p: p.lane_seq))
        if found:
            return True
        unknown = unknown or found is None
    return None if unknown else False


def _lane_repeats(parts: list[Part]) -> bool | None:
    seen: set[int] = set()
    for part in parts:
        with _open(part) as lines:
            for line in lines:
                end = line.find(PROPERTIES_KEY)
                if end < 0:
                    continue
                key = hash(line[:end])
                if key in seen:
                    return True
                seen.add(key)
                if len(seen) > MAX_IDS_COMPARED:
                    return None
    return False

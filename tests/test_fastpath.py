"""The fast paths decide exactly as the rules do; the pieces they are built from.

`bulkctl.fast.lines` (and `batchcheck`) must accept exactly the records
the target's own `shape` + `ObjectRules.check` accept, encode the same lines and report the
same problems; `KeySet` counts duplicates as a set would; `Packer.add_block` cuts parts where
`Packer.add` cuts them; the compression levels map as documented.
"""

from __future__ import annotations

import gzip
import json
import random
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.fast.lines import ndjson_chunk
from bulkctl.fast.merge import KeySet
from bulkctl.fast.state import WorkContext
from bulkctl.pack.compress import check_level, gunzip, gzip_member, isal_level
from bulkctl.pack.packer import Packer
from bulkctl.records import RawItem, Record, ShapeOptions, shape
from bulkctl.targets.segment_bulk import SegmentBulkTarget

MB = 1_000_000

scalars = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
values = st.one_of(scalars, st.lists(st.integers(), max_size=2), st.just({"a": 1}))
names = st.sampled_from(["a", "b", "zip", "firstName", "", "x y"])
records = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from(["r1", "r2", "", "x" * 101]), st.integers(0, 3)),
            "collection": st.sampled_from(["rooms", "users", "Bad", "_x", "user"]),
            "properties": st.dictionaries(names, values, max_size=4),
        }
    ),
    st.dictionaries(st.sampled_from(["id", "collection", "n", "extra"]), scalars, max_size=4),
    st.lists(st.integers(), max_size=2),
)


def reference(data: Any, line: int) -> tuple[bytes | None, list[Any]]:
    """What the exact rules make of one parsed value: its line, or its problems."""
    shaped = shape(RawItem("in", line, None, data), ShapeOptions(collection="rooms"))
    if not isinstance(shaped, Record):
        return None, [p.as_dict() for p in shaped]
    problems, encoded = SEGMENT_RULES.check(shaped)
    return encoded, [p.as_dict() for p in problems]


plain_values = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(min_value=-1e15, max_value=1e15),
    st.booleans(),
)
plain = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["r1", "r2", "r3"]),
        "collection": st.sampled_from(["rooms", "users"]),
        "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), plain_values, max_size=3),
    }
)
mostly_plain = st.tuples(
    st.lists(plain, min_size=60, max_size=200), st.integers(0, 199), records
).map(lambda t: [*t[0][: t[1]], t[2], *t[0][t[1] :]])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(records, min_size=1, max_size=150), mostly_plain), st.booleans())
def test_chunks_accept_reject_and_encode_exactly_as_the_rules(batch: list[Any], pack: bool) -> None:
    """Lines, rejections with their problems, and counts equal the record-by-record rules."""
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in batch]  # any int size
    data = b"".join(line + b"\n" for line in lines)
    context = WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(collection="rooms"), True, pack, 1
    )
    result = ndjson_chunk(context, "in", 1, data)
    want_lines, want_rejections = [], []
    for number, line in enumerate(lines, start=1):
        encoded, problems = reference(json.loads(line), number)  # integers exact
        if encoded is None:
            want_rejections.append((number, problems))
        else:
            want_lines.append(encoded)
    got = [(r.line, [p.as_dict() for p in r.problems]) for r, _ in result.rejections]
    assert got == want_rejections
    assert (result.records, result.valid) == (len(batch), len(want_lines))
    if pack:
        assert gzip.decompress(result.lanes[0] or b"") == b"".join(x + b"\n" for x in want_lines)


def test_keyset_counts_repeats_as_a_set_does_and_stops_tracking_at_its_limit() -> None:
    """Repeats within and across batches are counted; past the limit new keys are not kept."""
    rng = random.Random(4)
    keys = [rng.randrange(-(2**63), 2**63) for _ in range(3000)]
    keys += [*keys[:500], 0, 0, -2, -2]
    rng.shuffle(keys)
    table = KeySet(limit=10_000)
    seen: set[int] = set()
    repeats = 0
    for start in range(0, len(keys), 700):
        part = keys[start : start + 700]
        repeats += table.add_all(array("q", part))
    for key in keys:
        repeats -= key in seen
        seen.add(key)
    assert repeats == 0 and not table.capped
    small = KeySet(limit=2)
    assert small.add_all(array("q", [5, 6, 7, 5, 7])) == 1 and small.capped


def test_compression_levels_map_onto_isal_and_0_stores() -> None:
    """0 stores (no compression), 1-9 map to ISA-L 0-3; every member decodes to its input."""
    data = b'{"id":"x","collection":"rooms","properties":{"a":1}}\n' * 2000
    assert [isal_level(n) for n in range(10)] == [None, 0, 1, 1, 2, 2, 2, 3, 3, 3]
    sizes = [len(gzip_member(data, n)) for n in range(10)]
    assert sizes[0] > len(data)  # stored blocks
    assert all(gzip.decompress(gzip_member(data, n)) == data for n in range(10))
    assert gunzip(gzip_member(data[:10], 6) + gzip_member(data[10:], 1)) == data
    with pytest.raises(ValueError, match="0 to 9"):
        check_level(10)


class _Block:
    """A chunk's lines per lane, as a worker returns them."""

    def __init__(self, lines: list[tuple[int, bytes]], lanes: int, level: int) -> None:
        raw = [b"".join(x + b"\n" for lane, x in lines if lane == n) for n in range(lanes)]
        self.lanes = [gzip_member(r, level) if r else None for r in raw]
        self.lane_bytes = [len(r) for r in raw]
        self.lane_records = [sum(1 for lane, _ in lines if lane == n) for n in range(lanes)]
        self.order = bytes(lane for lane, _ in lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=8),
    lanes=st.integers(min_value=1, max_value=4),
    max_records=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
)
def test_blocks_cut_parts_where_lines_one_by_one_would(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    cuts: list[int],
    lanes: int,
    max_records: int | None,
) -> None:
    """add_block closes the same parts, in the same order, holding the same lines as add."""
    lines = [(n % lanes, bytes([97 + n % 26]) * size) for n, size in enumerate(sizes)]
    one, blocks = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("blocks")
    single = Packer(one, MB, lanes, 1, max_records=max_records)
    want = []
    for lane, line in lines:
        want += _add_in_lane(single, lane, line)
    want += single.close()
    packed = Packer(blocks, MB, lanes, 1, max_records=max_records)
    got, at, turn = [], 0, 0
    while at < len(lines):
        step = cuts[turn % len(cuts)]
        got += packed.add_block(_Block(lines[at : at + step], lanes, 1))
        at += step
        turn += 1
    got += packed.close()
    assert _outline(got) == _outline(want)
    assert [gunzip(p.path.read_bytes()) for p in got] == [gunzip(p.path.read_bytes()) for p in want]


def _outline(parts: list[Any]) -> list[tuple[int, ...]]:
    return [(p.number, p.lane, p.lane_seq, p.records, p.bytes_uncompressed) for p in parts]


def _add_in_lane(packer: Packer, lane: int, line: bytes) -> list[Any]:
    """Packer.add for a line whose (collection, id) falls in `lane`."""
    record_id = next(str(n) for n in range(1000) if _lane(f"c{lane}", str(n), packer.lanes) == lane)
    return packer.add(f"c{lane}", record_id, line)


def _lane(collection: str, record_id: str, lanes: int) -> int:
    from bulkctl.pack.packer import lane_of

    return lane_of(collection, record_id, lanes)


def test_a_plain_part_gets_plain_blocks(tmp_path: Path) -> None:
    """Without compression, blocks are the lines themselves."""
    packer = Packer(tmp_path, MB, 1, compress=False, suffix=".ndjson")
    block = _Block([(0, b"a"), (0, b"b")], 1, 0)
    block.lanes = [b"a\nb\n"]
    (part,) = packer.add_block(block) + packer.close()
    assert part.path.read_bytes() == b"a\nb\n"

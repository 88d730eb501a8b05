"""The C fast path (bulkctl/_native.c) takes a line only when Python would decide the same.

A line the scanner takes must be exactly what the rules would send (`orjson.dumps` of its
parsed value gives the line back) and valid under the rules; a whole chunk must come out the
same with the C scanner as with the Python path (`BULKCTL_NO_NATIVE=1`): counts, rejections,
hint material, duplicate-id keys, lanes and line order. Lines are generated as orjson writes
them, then bent (escapes, spacing, exponents, repeated names, bad UTF-8) so that every branch
of the scanner is exercised on both sides of its decisions.
"""

from __future__ import annotations

import io
import os
import random
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_csv_speedpath import csv_data, tables, typed

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.errors import InputError
from bulkctl.fast.csv_chunk import csv_chunk
from bulkctl.fast.csv_native import native_csv_chunk
from bulkctl.fast.lines import items_chunk, ndjson_chunk
from bulkctl.fast.merge import KeySet
from bulkctl.fast.state import ChunkResult, WorkContext
from bulkctl.native import native
from bulkctl.pack.lanes import lane_base, lane_of
from bulkctl.read.csv_chunks import CsvTask, csv_tasks
from bulkctl.read.csv_rows import CsvSettings
from bulkctl.read.json_array import Unparsed, read_json
from bulkctl.records import ShapeOptions
from bulkctl.targets.segment_bulk import SegmentBulkTarget

module = native()
pytestmark = pytest.mark.skipif(module is None, reason="the C fast path was not built")

PREFIX = b'{"id":"r1","collection":"rooms","properties":{"x":'
SMALL = 5333


@contextmanager
def python_path() -> Iterator[None]:
    """Run the block with the C fast path turned off, as BULKCTL_NO_NATIVE=1 does."""
    old = os.environ.get("BULKCTL_NO_NATIVE")
    os.environ["BULKCTL_NO_NATIVE"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["BULKCTL_NO_NATIVE"]
        else:
            os.environ["BULKCTL_NO_NATIVE"] = old


def context(
    pack: bool, hints: bool = True, lanes: int = 4, shape: ShapeOptions | None = None
) -> WorkContext:
    return WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, shape or ShapeOptions(), hints, pack, lanes, None
    )


def both(
    data: bytes, pack: bool, hints: bool = True, shape: ShapeOptions | None = None
) -> tuple[ChunkResult, ChunkResult]:
    """The chunk's result with the C scanner, and with the Python path."""
    fast = ndjson_chunk(context(pack, hints, shape=shape), "in.ndjson", 1, data)
    with python_path():
        slow = ndjson_chunk(context(pack, hints, shape=shape), "in.ndjson", 1, data)
    return fast, slow


def taken(line: bytes) -> bool:
    """Whether the scanner takes this one line (it stops at once otherwise)."""
    assert module is not None
    scanner = module.Scanner(0, True, SMALL, 100, 100, [])
    stop, lines, *_ = scanner.scan(line, 0)
    assert (stop, lines) in ((0, 0), (len(line), 1))
    return lines == 1


def assert_exact(line: bytes) -> None:
    """A taken line is the rules' own encoding of itself, and the rules accept it."""
    if not taken(line):
        return
    value = orjson.loads(line)
    assert orjson.dumps(value) == line
    fast, slow = both(line + b"\n", pack=True)
    assert slow.valid == 1 and not slow.rejections
    assert fast == slow


texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12
)
scalars = st.one_of(
    texts,
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e6, max_value=1e6).map(lambda f: round(f, 3)),
    st.booleans(),
    st.none(),
)
names = st.one_of(st.sampled_from(["a", "b", "zip_code", "firstName", "", "é", 'q"']), texts)
records = st.fixed_dictionaries(
    {
        "id": st.one_of(st.sampled_from(["r1", "r2", "é", "", "x" * 101, "x" * 100]), texts),
        "collection": st.sampled_from(["rooms", "users", "Bad", "_x", "x_", "a_b", "user"]),
        "properties": st.dictionaries(
            names, st.one_of(scalars, st.just([1]), st.just({"a": 1})), max_size=5
        ),
    }
)


flat_records = st.dictionaries(
    st.sampled_from(["id", "user_id", "collection", "properties", "name", "zip", "", "é"]),
    st.one_of(scalars, st.sampled_from(["rooms", "users", "Bad", "r1"])),
    max_size=6,
)
shapes = st.sampled_from(
    [
        ShapeOptions(),
        ShapeOptions(collection="rooms"),
        ShapeOptions(collection="Bad"),
        ShapeOptions(collection="rooms", id_field="user_id"),
    ]
)


def bend(line: bytes, how: int) -> bytes:
    """The same record written otherwise: JSON another tool might have produced."""
    if how == 1:
        return line.replace(b":", b": ", 1)
    if how == 2:
        return line.replace(b'"id"', b'"\\u0069d"', 1)
    if how == 3:
        return line[:-2] + b',"a":1}}' if line.endswith(b"}}") else line
    if how == 4:
        return line.replace(b".", b"0.", 1)
    if how == 5:
        return line + b"\r"
    if how == 6:
        return line.replace(b"e", b"E")
    return line


def written(record: dict[str, Any], how: int, indent: bool = False) -> bytes:
    """The record as orjson writes it (on several lines: `indent`), then bent (`bend`)."""
    try:
        line = orjson.dumps(record, option=orjson.OPT_INDENT_2 if indent else 0)
    except orjson.JSONEncodeError:  # an int beyond 64 bits: as another tool writes it
        line = repr(record).encode()
    return bend(line, how)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(records, st.integers(0, 8)), min_size=1, max_size=60), st.booleans())
def test_a_chunk_comes_out_the_same_with_and_without_the_scanner(
    batch: list[tuple[dict[str, Any], int]], pack: bool
) -> None:
    """Counts, rejections, hints, keys and lanes match the Python path line for line."""
    lines = [written(record, how) for record, how in batch]
    data = b"\n".join(lines) + b"\n"
    fast, slow = both(data, pack)
    assert fast == slow
    for line in lines:
        assert_exact(line)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.one_of(flat_records, records), st.integers(0, 8)), max_size=40),
    shapes,
    st.booleans(),
)
def test_flat_records_come_out_the_same_with_and_without_the_scanner(
    batch: list[tuple[dict[str, Any], int]], shape: ShapeOptions, pack: bool
) -> None:
    """Flat records (with --collection, another id field) are rewritten as Python would."""
    lines = [written(record, how) if how != 3 else written(record, 0) for record, how in batch]
    data = b"\n".join(lines) + b"\n"
    fast, slow = both(data, pack, shape=shape)
    assert fast == slow


def test_flat_records_take_the_c_path() -> None:
    """`{"id":..,"name":..}` with --collection is rewritten in C (else nothing is gained)."""
    assert module is not None
    shape = ShapeOptions(collection="rooms")
    lines = [orjson.dumps({"id": f"r{n}", "name": "Zoë", "n": n, "ok": True}) for n in range(50)]
    lines.append(b'{"name":"x","id":"r9","collection":"users"}')
    scanner = module.Scanner(0, True, SMALL, 100, 100, [], b"rooms", b"id")
    data = b"\n".join(lines)
    assert scanner.scan(data, 0)[:2] == (len(data), 51)
    fast, slow = both(data + b"\n", pack=True, shape=shape)
    assert fast == slow and fast.valid == 51 and fast.per_collection == {"rooms": 50, "users": 1}


def test_the_c_lane_is_the_python_lane() -> None:
    """Every line the C scanner packs lands in `lanes.lane_of`'s lane: one rule, two copies."""
    assert module is not None
    lanes = 7
    records = [
        (collection, record_id)
        for collection in ("rooms", "users", "room_types", "a" * 60)
        for record_id in ("1", "r42", "ø∂", "x" * 90, *map(str, range(40)))
    ]
    lines = [
        orjson.dumps({"id": record_id, "collection": collection, "properties": {"n": 1}})
        for collection, record_id in records
    ]
    bufs = [bytearray() for _ in range(lanes)]
    scanner = module.Scanner(lanes, False, SMALL, 100, 100, bufs)
    data = b"\n".join(lines)
    assert scanner.scan(data, 0)[:2] == (len(data), len(lines))  # the C path took them all
    expected: list[list[bytes]] = [[] for _ in range(lanes)]
    for (collection, record_id), line in zip(records, lines, strict=True):
        expected[lane_of(lane_base(collection), record_id, lanes)].append(line)
    assert len({lane for lane, chosen in enumerate(expected) if chosen}) == lanes
    assert [bytes(buf).splitlines() for buf in bufs] == expected


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"-?[0-9]{1,21}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: orjson.dumps(f).decode()),
        st.integers().map(str),
        st.sampled_from(["-0", "-0.0", "0.0", "1.0", "0.0001", "0.00001", "1e16", "01", "1."]),
    )
)
def test_a_number_is_taken_only_as_orjson_writes_it(token: str) -> None:
    """Integers, decimals, exponents and zeros: taken ones round-trip byte for byte."""
    assert_exact(PREFIX + token.encode() + b"}}")


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=12), st.booleans())
def test_string_bytes_are_taken_only_when_valid_utf8_without_odd_escapes(
    raw: bytes, as_name: bool
) -> None:
    """Bad UTF-8, surrogates, control bytes and \\u escapes go to Python; the rest is exact."""
    if as_name:
        line = b'{"id":"r1","collection":"rooms","properties":{"' + raw + b'":1}}'
    else:
        line = PREFIX + b'"' + raw + b'"}}'
    assert_exact(line)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xed\xa0\x80",  # a surrogate (U+D800) written in UTF-8
        b"\xed\xbf\xbf",
        b"\xc0\xaf",  # overlong forms
        b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf",
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\x80",
        b"\xe2\x82",  # cut short
        b"\x1f",
        b"\\u0041",
        b"\\/",
        b"\\",
    ],
)
def test_invalid_or_escaped_text_is_never_taken(raw: bytes) -> None:
    """Text orjson refuses, or writes otherwise, is left to Python in values and names."""
    assert not taken(PREFIX + b'"' + raw + b'"}}')
    assert not taken(b'{"id":"r1","collection":"rooms","properties":{"' + raw + b'":1}}')


@pytest.mark.parametrize(
    "raw", ["é", "€", "𝄞", "\x7f", "\u2028", "\ufeff", "\U0010ffff", "\ud7ff", "\ue000"]
)
def test_valid_utf8_at_the_edges_is_taken(raw: str) -> None:
    """Two-, three- and four-byte characters next to the excluded ranges are taken, exactly."""
    line = PREFIX + orjson.dumps(raw) + b"}}"
    assert taken(line)
    assert_exact(line)


def test_plain_records_are_taken_by_the_scanner() -> None:
    """Records as orjson writes them take the C path (else it would silently do nothing)."""
    rng = random.Random(3)
    lines = [
        orjson.dumps(
            {
                "id": f"id-{n}",
                "collection": rng.choice(["rooms", "users"]),
                "properties": {
                    "name": rng.choice(["Zoë", 'Bob "B"', "tab\there"]),
                    "age": rng.randrange(-(10**18) + 1, 10**18),
                    "score": round(rng.uniform(-1e6, 1e6), 2),
                    "ok": rng.random() < 0.5,
                },
            }
        )
        for n in range(500)
    ]
    assert all(taken(line) for line in lines)
    fast, slow = both(b"\n".join(lines) + b"\n", pack=True)
    assert fast == slow and fast.valid == 500


def test_repeated_property_names_and_odd_shapes_are_left_to_python() -> None:
    """A repeated name, another key order, nulls or lists: the scanner stops at the line."""
    for line in [
        b'{"id":"r1","collection":"rooms","properties":{"a":1,"a":2}}',
        b'{"collection":"rooms","id":"r1","properties":{}}',
        b'{"id":"r1","collection":"rooms","properties":{"a":null}}',
        b'{"id":"r1","collection":"rooms","properties":{"a":[1]}}',
        b'{"id":"r1","collection":"rooms","properties":{},"x":1}',
        b'{"id":"","collection":"rooms","properties":{}}',
        b'{"id":"r1","collection":"Rooms","properties":{}}',
        b'{"id":"r1","collection":"rooms","properties":{"a":"' + b"x" * SMALL + b'"}}',
    ]:
        assert not taken(line), line
    assert taken(b'{"id":"r1","collection":"rooms","properties":{}}')


def test_a_repeated_name_is_found_once_the_name_is_known() -> None:
    """The second record repeats a name the first one introduced: same result as Python
    (the record is rejected for its repeated key)."""
    data = (
        b'{"id":"r1","collection":"rooms","properties":{"a":1,"b":2}}\n'
        b'{"id":"r2","collection":"rooms","properties":{"b":1,"a":2,"b":3}}\n'
        b'{"id":"r2","collection":"rooms","properties":{"b":1,"c":2}}\n'
    )
    fast, slow = both(data, pack=True)
    assert fast == slow and fast.valid == 2
    [(rejection, _)] = fast.rejections
    assert [(p.field, p.rule) for p in rejection.problems] == [
        ("properties.b", "record.duplicate_key")
    ]


def test_the_native_key_table_counts_as_the_python_one() -> None:
    """Repeats within and across calls and the cap agree between C and Python tables."""
    rng = random.Random(9)
    keys = [rng.randrange(-(2**63), 2**63 - 1) for _ in range(5000)]
    keys += [*keys[:700], 0, 0, -2]
    rng.shuffle(keys)
    for limit in (10, 4000, 100_000):
        fast = KeySet(limit=limit)
        with python_path():
            slow = KeySet(limit=limit)
        for start in range(0, len(keys), 999):
            part = array("q", keys[start : start + 999])
            assert fast.add_all(part) == slow.add_all(part)
            assert (fast.size, fast.capped) == (slow.size, slow.capped)


# -- CSV rows written as lines in C (bulkctl.fast.csv_native) --------------------------------------


def csv_results(data: bytes, ctx: WorkContext, settings: CsvSettings) -> list[ChunkResult]:
    """Each chunk of a CSV file as csv_chunk makes it (taking the C path where it can), after
    the first pass (also in C where it can) decided the columns' types."""
    settings = typed(data, settings)
    stream = io.BytesIO(data)
    out = []
    for task in csv_tasks(stream.readline, stream.read, "t.csv", settings):
        assert isinstance(task, CsvTask)
        out.append(csv_chunk(ctx, task))
    return out


plain_cells = st.one_of(
    st.just(""),
    st.from_regex(r"-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,17})?", fullmatch=True),
    st.from_regex(r"0[0-9]{1,5}", fullmatch=True),
    st.sampled_from(["-0", "-0.0", "0.00010", "1.50", "100.00", "1e5", "true", "-", "1."]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
)


@st.composite
def plain_tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """Tables mostly within the C path's reach (its cells, then and again an odd one)."""
    columns = draw(st.lists(st.sampled_from(["a", "b", "zip", "Ünï", "firstName"]), max_size=4))
    header = ["id", *dict.fromkeys(columns)]
    rows = [
        [draw(st.sampled_from(["r1", "r2", "é", "x" * 100, 'q"', ""]))]
        + [draw(plain_cells) for _ in header[1:]]
        for _ in range(draw(st.integers(1, 30)))
    ]
    return header, rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(tables(), plain_tables()),
    st.booleans(),
    st.booleans(),
    st.sampled_from([",", "\t", ";"]),
)
def test_a_csv_chunk_comes_out_the_same_with_and_without_the_c_path(
    table: tuple[list[str], list[list[str]]], pack: bool, infer: bool, delimiter: str
) -> None:
    """Counts, rejections, hints, keys and lane lines of CSV chunks match the Python path."""
    header, rows = table
    data = csv_data(header, rows, delimiter)
    read = CsvSettings(delimiter=delimiter, infer=infer)
    ctx = WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(collection="rooms"), True, pack, 3, None
    )
    fast = csv_results(data, ctx, read)
    with python_path():
        slow = csv_results(data, ctx, read)
    assert fast == slow


def test_a_non_ascii_delimiter_leaves_csv_to_python() -> None:
    """A delimiter of two UTF-8 bytes splits cells as Python's csv splits them."""
    data = "id\nabécd\nef\n".encode()
    read = CsvSettings(delimiter="é")
    ctx = WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(collection="rooms"), True, True, 3, None
    )
    fast = csv_results(data, ctx, read)
    with python_path():
        slow = csv_results(data, ctx, read)
    assert fast == slow and sum(r.valid for r in fast) == 1


def test_plain_csv_rows_take_the_c_path() -> None:
    """Bench-like rows (quotes, unicode, numbers, empty cells) are written in C, exactly."""
    rng = random.Random(5)
    header = ["id", "name", "city", "age", "balance", "zip", "notes", "active"]
    rows = [
        [
            str(1000 + n),
            rng.choice(["Zoë", 'say "hi"', "a,b", "plain"]),
            rng.choice(["München", "Praha", ""]),
            str(rng.randrange(-(10**12), 10**12)),
            rng.choice(["1359.62", "1.50", "0.0", "-0.001", "100.00", "7"]),
            rng.choice(["09494", "31994", "-0"]),
            rng.choice(["", "x\ty", "back\\slash"]),
            rng.choice(["true", "false"]),
        ]
        for n in range(400)
    ]
    data = csv_data(header, rows, ",")
    ctx = WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(collection="people"), True, True, 3, None
    )
    stream = io.BytesIO(data)
    read = typed(data, CsvSettings())
    tasks = [t for t in csv_tasks(stream.readline, stream.read, "t.csv", read)]
    assert tasks and all(isinstance(t, CsvTask) for t in tasks)
    taken = [native_csv_chunk(ctx, t) for t in tasks if isinstance(t, CsvTask)]
    assert all(result is not None for result in taken)
    with python_path():
        slow = csv_results(data, ctx, CsvSettings())
    assert taken == slow and sum(r.valid for r in slow) == 400


# -- JSON elements ended in C and taken by the scanner (jsonsplit defer) ---------------------


def json_result(document: bytes, pack: bool, limit: int = 400_000) -> ChunkResult:
    """A JSON document's elements as the chunked path reads and checks them (one chunk)."""
    stream = io.BytesIO(document)
    items = [
        (item, item.size if item.size is not None else 10**9)
        for item in read_json(stream.read, "in.json", limit=limit, chunk_size=64, defer=True)
    ]
    return items_chunk(context(pack), items)


def layout(lines: list[bytes], how: int) -> bytes:
    """The elements as an array one a line, an array on one line, or an Objects API body."""
    if how == 0:
        return b"[\n" + b",\n".join(lines) + b"\n]\n"
    if how == 1:
        return b"[" + b", ".join(lines) + b"]"
    return b'{"collection": "rooms", "objects": [' + b",\n ".join(lines) + b"]}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(records, st.integers(0, 8)), min_size=1, max_size=40),
    st.integers(0, 2),
    st.booleans(),
)
def test_json_elements_come_out_the_same_with_and_without_the_c_path(
    batch: list[tuple[dict[str, Any], int]], how: int, pack: bool
) -> None:
    """Elements ended in C and parsed (or scanned) later match parsing them on the spot."""
    lines = [written(record, bent, indent=bent == 7) for record, bent in batch]
    document = layout(lines, how)
    try:
        fast = json_result(document, pack)
    except InputError as exc:
        with python_path(), pytest.raises(InputError) as slow_error:
            json_result(document, pack)
        assert str(exc) == str(slow_error.value)
        return
    with python_path():
        slow = json_result(document, pack)
    assert fast == slow


def test_json_elements_are_deferred_and_errors_stay_where_they_were() -> None:
    """Objects come as bytes; too long or unbalanced ones, and scalars, are read as before."""
    document = b'[{"id":"a","collection":"rooms","properties":{}}, 7, {"x": [1}]'
    stream = io.BytesIO(document)
    items = read_json(stream.read, "in.json", limit=400_000, defer=True)
    first = next(items)
    assert isinstance(first.data, Unparsed) and first.data.raw.startswith(b'{"id":"a"')
    assert next(items).data == 7
    with pytest.raises(InputError) as fast_error:
        list(items)
    with python_path(), pytest.raises(InputError) as slow_error:
        list(read_json(io.BytesIO(document).read, "in.json", limit=400_000, defer=True))
    assert str(fast_error.value) == str(slow_error.value)
    long = b'[{"id":"a","collection":"rooms","properties":{"t":"' + b"x" * 70_000 + b'"}}]'
    fast = json_result(long, pack=False, limit=100)
    with python_path():
        slow = json_result(long, pack=False, limit=100)
    assert fast == slow and fast.rejections

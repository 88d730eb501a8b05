"""The column-at-a-time CSV path decides and encodes exactly as the row-by-row path.

`csvchunks.csv_chunk` (rows split by `csvlines`, accepted and written a column at a time by
`csvcolumns.Block`) must give the same counts, rejections, hint material, duplicate keys and
lane lines as reading the same file with `csvread.read_csv` and checking each row with the
target's rules (`fastpath.items_chunk`), for any cells: numbers of every shape, text that
needs escaping, empty cells, bad ids and collections, multi-line and ragged rows. The orjson
behaviours the fast path builds on (how it writes strings, how it reads plain decimals) are
pinned here too.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import replace
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.errors import InputError
from bulkctl.fast.csv_chunk import csv_chunk
from bulkctl.fast.csv_lines import longest_line, single_rows
from bulkctl.fast.lines import items_chunk
from bulkctl.fast.state import ChunkResult, WorkContext
from bulkctl.pack.compress import gunzip
from bulkctl.read.csv_chunks import CsvTask, csv_tasks
from bulkctl.read.csv_rows import CsvSettings, read_csv
from bulkctl.read.csv_typing import decide_types
from bulkctl.records import ShapeOptions
from bulkctl.targets.segment_bulk import SegmentBulkTarget

ODD_CELLS = [
    "", "", "0", "-0", "-0.0", "00", "007", "01.5", "1.", ".5", "-", ".", "+1", " 1", "1 ",
    "1_0", "1e400", "9.3e18", "1e19", "-1E+30", "1.5e3", "NaN", "true", "null", "٣", "1,5",
    '"', '""', 'say "hi"', "a\\b", "\\", "\\n", "tab\there", "cr\rhere", "\x01", "é", "東京",
    "😀", "a,b", "line\nbreak", "12345678901234567890", "123456789012345678",
    "-9223372036854775808", "9223372036854775808", "0.1234567890123456789", "1.50",
]  # fmt: skip
cells = st.one_of(
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,3})?[eE][+-]?[0-9]{1,3}", fullmatch=True),
    st.sampled_from(ODD_CELLS),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
)
good_ids = st.one_of(
    st.sampled_from(["r1", "r2", "r3", "ü", 'q"', "a\\b", "1", "-0", "t\tb", "東"]),
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)
ids = st.one_of(good_ids, st.sampled_from(["", "x" * 101]))
KIND_CELLS = {
    "any": cells,
    "ints": st.one_of(st.just(""), st.from_regex(r"-?[1-9][0-9]{0,17}", fullmatch=True)),
    "codes": st.one_of(st.just(""), st.from_regex(r"-?[0-9]{1,6}", fullmatch=True)),
    "decimals": st.one_of(st.just(""), st.from_regex(r"-?[0-9]{1,6}\.[0-9]{1,4}", fullmatch=True)),
    "text": st.one_of(st.just(""), st.from_regex(r"[a-zé ,]{1,8}", fullmatch=True)),
}
names = st.sampled_from(["a", "b c", "zip", "Ünï", 'q"x', "back\\slash", "n\x01", "ok", "z9"])


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header (with `id`, maybe `collection` or `properties`) and rows of any cells."""
    columns = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    extra = draw(st.sampled_from([[], [], [], ["collection"], ["properties"]]))
    header = ["id", *columns, *extra]
    column_kinds = [draw(st.sampled_from(sorted(KIND_CELLS))) for _ in columns]
    count = draw(st.integers(min_value=1, max_value=40))
    bad_ids, ragged = draw(st.booleans()), draw(st.integers(0, 3)) == 0
    rows = []
    for _ in range(count):
        row = [draw(ids if bad_ids else good_ids)]
        row += [draw(KIND_CELLS[kind]) for kind in column_kinds]
        if extra == ["collection"]:
            row.append(draw(st.sampled_from(["users", "rooms", "users", "rooms", "Bad", "_x"])))
        elif extra:
            row.append(draw(st.sampled_from(["", "x"])))
        if ragged and draw(st.integers(0, 10)) == 0:
            row = row[:-1] if len(row) > 1 else [*row, "extra"]  # a ragged row
        rows.append(row)
    return header, rows


def csv_data(header: list[str], rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def context(pack: bool, lanes: int, collection: str | None) -> WorkContext:
    return WorkContext(
        SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(collection=collection), True, pack, lanes
    )


def typed(data: bytes, read: CsvSettings) -> CsvSettings:
    """The settings with the columns' types decided by the first pass, as a run decides them."""
    stream = io.BytesIO(data)
    _, kinds = decide_types(csv_tasks(stream.readline, stream.read, "t.csv", read))
    return replace(read, kinds=kinds)


def fast_way(ctx: WorkContext, data: bytes, read: CsvSettings) -> list[ChunkResult]:
    """The file as the chunked path reads it: csv_tasks, then csv_chunk per task."""
    read = typed(data, read)
    stream = io.BytesIO(data)
    out = []
    for task in csv_tasks(stream.readline, stream.read, "t.csv", read):
        assert isinstance(task, CsvTask)  # no line here is over the limit
        out.append(csv_chunk(ctx, task))
    return out


def exact_way(ctx: WorkContext, data: bytes, read: CsvSettings) -> ChunkResult:
    """The file read row by row by csvread, each row checked on its own, up to the input
    error that ends the reading, if any."""
    read = typed(data, read)
    items, error = [], None
    try:
        for item in read_csv(io.BytesIO(data).readline, "t.csv", read):
            items.append((item, 10**9))  # size: never "small", so each row is checked fully
    except InputError as exc:
        error = str(exc)
    result = items_chunk(ctx, items)
    result.error = error
    return result


def outcome(results: list[ChunkResult]) -> dict[str, Any]:
    """Everything a chunk result tells the main process, lanes decoded, chunks merged."""
    lanes: dict[int, bytes] = {}
    merged: dict[str, Any] = {
        "records": 0, "valid": 0, "per": {}, "rejections": [], "groups": [], "keys": b"",
        "order": b"", "lane_records": {}, "error": None,
    }  # fmt: skip
    for result in results:
        merged["records"] += result.records
        merged["valid"] += result.valid
        for name, number in result.per_collection.items():
            merged["per"][name] = merged["per"].get(name, 0) + number
        merged["rejections"] += [
            (r.line, r.index, [p.as_dict() for p in r.problems], r.record, n)
            for r, n in result.rejections
        ]
        merged["groups"] += result.groups
        merged["keys"] += result.keys
        merged["order"] += result.order
        for lane, member in enumerate(result.lanes):
            lanes[lane] = lanes.get(lane, b"") + (gunzip(member) if member else b"")
        for lane, number in enumerate(result.lane_records):
            merged["lane_records"][lane] = merged["lane_records"].get(lane, 0) + number
        merged["error"] = merged["error"] or result.error
    merged["lanes"] = lanes
    return merged


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(),
    pack=st.booleans(),
    lanes=st.sampled_from([1, 3]),
    infer=st.booleans(),
    delimiter=st.sampled_from([",", ",", "\t"]),
    collection=st.sampled_from(["rooms", "rooms", "rooms", None]),
)
def test_chunks_give_what_reading_row_by_row_gives(
    table: tuple[list[str], list[list[str]]],
    pack: bool,
    lanes: int,
    infer: bool,
    delimiter: str,
    collection: str | None,
) -> None:
    """Counts, rejections, groups, keys and lane lines equal the row-by-row reading."""
    header, rows = table
    data = csv_data(header, rows, delimiter)
    read = CsvSettings(delimiter=delimiter, infer=infer)
    ctx = context(pack, lanes, collection)
    assert outcome(fast_way(ctx, data, read)) == outcome([exact_way(ctx, data, read)])


def bench_like(count: int, seed: int) -> bytes:
    """Rows shaped like bench/gen.py's CSV: zero-padded codes, decimals with trailing zeros,
    quoted notes with commas and quotes, non-ASCII names, ~4 % empty cells."""
    rng = random.Random(seed)
    header = ["id", "first", "city", "postal", "age", "born", "active", "balance", "notes"]
    rows = []
    for number in range(count):
        row = [
            str(1_000_000 + number),
            rng.choice(["Kai", "Łukasz", "Tomás", "Anna"]),
            rng.choice(["Zürich", "東京", "Praha", "São Paulo"]),
            f"{rng.randint(0, 99999):05d}",
            str(rng.randint(18, 90)),
            f"19{rng.randint(10, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            rng.choice(["true", "false"]),
            f"{rng.uniform(-500, 20000):.2f}",
            "order shipped" + rng.choice(["", ', "quoted", too']),
        ]
        for column in range(1, len(row)):
            if rng.random() < 0.04:
                row[column] = ""
        rows.append(row)
    return csv_data(header, rows, ",")


def test_bench_shaped_rows_give_what_reading_row_by_row_gives() -> None:
    """Several chunks of bench-like rows, packed into 4 lanes and only checked, as exact."""
    data = bench_like(3000, 7)
    read = CsvSettings()
    for pack in (True, False):
        ctx = context(pack, 4, "customers")
        fast = fast_way(ctx, data, read)
        assert outcome(fast) == outcome([exact_way(ctx, data, read)])
        assert sum(result.valid for result in fast) == 3000


def test_a_properties_column_makes_rows_canonical_shaped_as_the_rules_say() -> None:
    """A `properties` cell is the record's properties to the rules, so a string is refused."""
    data = csv_data(["id", "properties", "name"], [["1", "abc", "x"], ["2", "", "y"]], ",")
    ctx = context(True, 1, "users")
    got = outcome(fast_way(ctx, data, CsvSettings()))
    assert got == outcome([exact_way(ctx, data, CsvSettings())])
    assert (got["valid"], [r[0] for r in got["rejections"]]) == (1, [2])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(cells, min_size=1, max_size=4), min_size=1, max_size=12),
    st.sampled_from([",", "\t"]),
    st.booleans(),
)
def test_lines_split_as_the_csv_module_reads_them(
    rows: list[list[str]], delimiter: str, short: bool
) -> None:
    """single_rows gives the csv module's rows, or None when the csv module raises or a row
    is not one line."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    text = out.getvalue()
    want: list[list[str]] | None
    try:
        want = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error:
        want = None
    got = single_rows(text, delimiter, short)
    if want is None or got is None:
        assert got is None
        assert want is None or any("\n" in cell for row in rows for cell in row)
    else:
        assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab,\n"), max_size=3000), min_size=1, max_size=6))
def test_the_longest_line_is_never_underestimated(pieces: list[str]) -> None:
    """longest_line bounds every line, and is exact once a line passes what blocks allow."""
    data = "".join(pieces).encode()
    longest = max(map(len, data.split(b"\n")))
    got = longest_line(data, SEGMENT_RULES, ["id", "a", "b"])
    assert got >= longest
    if got != longest:
        assert got * 6 + 2 < SEGMENT_RULES.max_value_bytes


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"-?(0|[1-9][0-9]{0,17})\.[0-9]{1,40}", fullmatch=True))
def test_orjson_reads_a_plain_decimal_as_float_does(cell: str) -> None:
    """The number columns rely on it: orjson's value (and so its JSON) is float()'s."""
    (value,) = orjson.loads(f"[{cell}]")
    assert orjson.dumps(value) == orjson.dumps(float(cell))


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_orjson_writes_a_string_with_nothing_to_escape_as_itself(text: str) -> None:
    """The text columns rely on it: only `"`, `\\` and characters below U+0020 change."""
    if '"' not in text and "\\" not in text and all(ord(c) >= 0x20 for c in text):
        assert orjson.dumps(text) == b'"' + text.encode() + b'"'

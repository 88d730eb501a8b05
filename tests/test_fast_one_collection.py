"""Parts of one collection each: the worker fast path packs them byte for byte as line by line.

No target cuts parts by collection today, so a test target does: segment-bulk's rules with
`Limits.one_collection_per_part` (and a record limit, so parts are cut often). A push of it
takes the chunked path (worker processes, `Packer.add_block`); the same target without object
rules takes `InputRun.lines` and `Packer.add`, as every one-collection push did before. Both
dry runs must leave the same part files, down to their sha256, for NDJSON, JSON and CSV inputs
whose collections change from record to record, over several lanes.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import csv_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.console import Console
from bulkctl.fast.lines import ndjson_chunk
from bulkctl.fast.state import WorkContext
from bulkctl.jobs.store import JobStore
from bulkctl.pack.compress import gunzip
from bulkctl.pack.packer import Packer, lane_of
from bulkctl.pack.parts import MIN_PART_SIZE, Part
from bulkctl.read import chunks
from bulkctl.records import ShapeOptions
from bulkctl.run import inputs as reading
from bulkctl.run.inputs import ReadSettings
from bulkctl.run.push import Push, PushSettings
from bulkctl.send.remote import Limits
from bulkctl.targets.segment_bulk import SegmentBulkTarget

MB = 1_000_000
COLLECTIONS = ("rooms", "users", "orders")
WORKERS_USED = "records are checked in 2 worker processes"


class OneCollectionTarget(SegmentBulkTarget):
    """segment-bulk's rules, parts of one collection and at most 40 records each."""

    limits = Limits(max_part_bytes=512 * MB, max_part_records=40, one_collection_per_part=True)


class LineByLineTarget(OneCollectionTarget):
    """The same without object rules: `InputRun` reads it record by record (`lines`)."""

    object_rules = None


class BigPartsTarget(OneCollectionTarget):
    """Parts of one collection with no record limit: only the part size and collections cut."""

    limits = Limits(max_part_bytes=512 * MB, one_collection_per_part=True)


class BigPartsLineByLine(BigPartsTarget):
    object_rules = None


def dry_run(
    target: SegmentBulkTarget,
    path: Path,
    out: Path,
    *,
    lanes: int = 3,
    part_size: int = MIN_PART_SIZE,
    collection: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, bytes], str]:
    """`push --dry-run --out` through `Push`: the manifest's parts, their files and -v output."""
    stream = io.StringIO()
    read = ReadSettings(
        paths=(str(path),),
        shape=ShapeOptions(collection=collection),
        on_invalid="skip",
        workers=2,
    )
    push_settings = PushSettings(
        read=read,
        target=target,
        part_size=part_size,
        concurrency=lanes,
        dry_run=True,
        out_dir=out,
        compression_level=6,
    )
    with JobStore() as store:
        summary = Push(push_settings, Console(verbose=True, stream=stream), store).run()
    assert summary.status == "dry_run"
    manifest = json.loads((out / "manifest.json").read_text())
    files = {entry["file"]: (out / entry["file"]).read_bytes() for entry in manifest["parts"]}
    for entry in manifest["parts"]:
        assert hashlib.sha256(files[entry["file"]]).hexdigest() == entry["sha256"]
    return manifest["parts"], files, stream.getvalue()


def assert_same_parts(
    fast: SegmentBulkTarget, slow: SegmentBulkTarget, path: Path, tmp_path: Path, **options: Any
) -> list[dict[str, Any]]:
    """Both ways give the same manifest (sha256 included) and the same bytes; the fast way
    really went through the workers, the other did not."""
    parts, files, said = dry_run(fast, path, tmp_path / "fast", **options)
    want_parts, want_files, said_slow = dry_run(slow, path, tmp_path / "slow", **options)
    assert WORKERS_USED in said and "records are checked" not in said_slow
    assert parts == want_parts
    assert files == want_files
    return parts


def collections_in(directory: Path, parts: list[dict[str, Any]]) -> list[set[str]]:
    """The collections each part's lines name."""
    return [
        {
            orjson.loads(line)["collection"]
            for line in gunzip((directory / p["file"]).read_bytes()).splitlines()
        }
        for p in parts
    ]


def records(count: int, seed: int) -> list[Any]:
    """Collections changing record by record, with the odd records every path must decide:
    flat ones, nulls, big numbers, escapes, int ids, and invalid ones (skipped)."""
    rng = random.Random(seed)
    out: list[Any] = []
    collection, left = COLLECTIONS[0], 0
    for n in range(count):
        if not left:  # mostly a new collection every record or two, sometimes a long run
            collection = rng.choice(COLLECTIONS)
            left = rng.choice([1, 1, 1, 2, 3, 60, 150])
        left -= 1
        props: dict[str, Any] = {
            "name": rng.choice(["Anna", "Zoë", 'say "hi"', "a\\b", "x"]),
            "score": round(rng.random() * 100, 3),
            "age": rng.randrange(100),
            "active": rng.random() < 0.5,
        }
        record: Any = {"id": f"id-{rng.randrange(300)}", "collection": collection}
        record["properties"] = props
        kind = n % 41
        if kind == 1:
            props["gone"] = None
        elif kind == 2:
            props["big"] = 2**60
        elif kind == 3:
            record["id"] = n
        elif kind == 4:
            record = {"id": f"flat-{n}", "collection": collection, "size": n}
        elif kind == 5:
            props["nested"] = {"a": 1}  # rejected
        elif kind == 6:
            record["collection"] = "Bad-Name"  # rejected
        elif kind == 7:
            props["far"] = 1e19
        out.append(record)
    return out


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 16 kB, and worker processes for any input size (as tests/test_parallel.py)."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16_000)
    monkeypatch.setattr(reading, "POOL_MIN_BYTES", 0)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("lanes", [1, 3])
def test_ndjson_parts_are_byte_identical(tmp_path: Path, lanes: int) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(map(orjson.dumps, records(3000, seed=lanes))) + b"\n")
    parts = assert_same_parts(
        OneCollectionTarget(), LineByLineTarget(), path, tmp_path, lanes=lanes
    )
    assert len(parts) > 100 and {p["lane"] for p in parts} == set(range(lanes))
    assert max(p["records"] for p in parts) == 40  # cut by records, and by collection:
    assert all(len(found) == 1 for found in collections_in(tmp_path / "fast", parts))


@pytest.mark.usefixtures("small_chunks")
def test_json_array_parts_are_byte_identical(tmp_path: Path) -> None:
    """JSON elements are checked in this process, through the same packing."""
    path = tmp_path / "in.json"
    path.write_bytes(b"[\n" + b",\n".join(map(orjson.dumps, records(1500, seed=7))) + b"\n]\n")
    parts, files, said = dry_run(OneCollectionTarget(), path, tmp_path / "fast")
    want, want_files, _ = dry_run(LineByLineTarget(), path, tmp_path / "slow")
    assert "records are checked in this process" in said
    assert parts == want and files == want_files and len(parts) > 50


def csv_rows(count: int, seed: int, with_collection: bool) -> bytes:
    """Flat rows, numbers to infer, empty cells; collections changing row by row."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        row: dict[str, Any] = {
            "id": f"r{rng.randrange(500)}",
            "name": rng.choice(["Anna", "Zoë", "a, b", ""]),
            "score": round(rng.random() * 50, 2) if n % 9 else "",
            "age": rng.randrange(1000),
        }
        if n % 700 == 5:
            row["id"] = "x" * 200  # rejected: its chunk is left to Python, the others to C
        if with_collection:  # a new collection every row or two, sometimes a long run
            long_run = n % 900 < 300
            row["collection"] = COLLECTIONS[n // 90 % 3] if long_run else rng.choice(COLLECTIONS)
        rows.append(row)
    return csv_bytes(rows)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("lanes", [1, 3])
def test_csv_parts_with_a_collection_column_are_byte_identical(tmp_path: Path, lanes: int) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(csv_rows(4000, seed=lanes, with_collection=True))
    parts = assert_same_parts(
        OneCollectionTarget(), LineByLineTarget(), path, tmp_path, lanes=lanes
    )
    assert len(parts) > 200 and sum(p["records"] for p in parts) == 4000 - 6


@pytest.mark.usefixtures("small_chunks")
def test_csv_parts_of_the_default_collection_are_byte_identical(tmp_path: Path) -> None:
    """No collection column: the C path (CSV rows through the scanner) may take the rows."""
    path = tmp_path / "in.csv"
    path.write_bytes(csv_rows(4000, seed=3, with_collection=False))
    parts = assert_same_parts(
        OneCollectionTarget(), LineByLineTarget(), path, tmp_path, collection="rooms"
    )
    assert sum(p["records"] for p in parts) == 4000 - 6 and len(parts) >= 100


def test_a_large_input_goes_through_the_workers_with_the_default_chunks(tmp_path: Path) -> None:
    """Over the pool's threshold with the real chunk size; long runs of one collection, so
    parts are cut by size (2 MB, more than a gzip member's 1 MiB) as well as by collection."""
    rng = random.Random(11)
    lines = []
    text = "x" * 150
    for n in range(34_000):
        collection = "rooms" if n < 16_000 else "users" if n >= 18_000 else COLLECTIONS[n % 2]
        props = {"name": text, "n": n, "score": rng.random()}
        lines.append(orjson.dumps({"id": f"id-{n}", "collection": collection, "properties": props}))
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert path.stat().st_size > reading.POOL_MIN_BYTES
    parts = assert_same_parts(
        BigPartsTarget(), BigPartsLineByLine(), path, tmp_path, lanes=2, part_size=2 * MB
    )
    assert sum(p["records"] for p in parts) == 34_000
    assert max(p["bytes_uncompressed"] for p in parts) > 1 << 20
    assert any(p["records"] == 1 for p in parts)  # cut where the collection changed


class _PlainBlock:
    """A chunk's lines as workers return them for one collection a part: plain lanes."""

    def __init__(self, lines: list[tuple[int, str, bytes]], lanes: int) -> None:
        self.lanes = [
            b"".join(line + b"\n" for lane, _, line in lines if lane == n) or None
            for n in range(lanes)
        ]
        self.lane_bytes = [len(data or b"") for data in self.lanes]
        self.lane_records = [sum(1 for lane, _, _ in lines if lane == n) for n in range(lanes)]
        self.order = bytes(lane for lane, _, _ in lines)
        self.collections = sorted({collection for _, collection, _ in lines})
        index = {name: n for n, name in enumerate(self.collections)}
        numbers = [index[collection] for _, collection, _ in lines]
        self.line_collections = b"".join(n.to_bytes(4, "little") for n in numbers)


def _id_in(collection: str, lane: int, lanes: int) -> str:
    return next(str(n) for n in range(1000) if lane_of(collection, str(n), lanes) == lane)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(COLLECTIONS), st.integers(1, 400_000)),
        min_size=1,
        max_size=40,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6),
    max_records=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
)
def test_blocks_make_the_bytes_lines_one_by_one_make(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[int, str, int]],
    cuts: list[int],
    max_records: int | None,
) -> None:
    """Packer.add_block of plain blocks closes the same parts, in the same order, with the
    same bytes as Packer.add (member boundaries and part cuts alike)."""
    lanes = 4
    made = [(lane, c, bytes([97 + n % 26]) * size) for n, (lane, c, size) in enumerate(lines)]
    one, blocks = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("blocks")
    options: dict[str, Any] = {"max_records": max_records, "one_collection": True}
    single = Packer(one, 3 * MB, lanes, 1, **options)
    want: list[Part] = []
    for lane, collection, line in made:
        want += single.add(collection, _id_in(collection, lane, lanes), line)
    want += single.close()
    packed = Packer(blocks, 3 * MB, lanes, 1, **options)
    got: list[Part] = []
    at = turn = 0
    while at < len(made):
        step = cuts[turn % len(cuts)]
        got += packed.add_block(_PlainBlock(made[at : at + step], lanes))
        at, turn = at + step, turn + 1
    got += packed.close()
    assert list(map(_outline, got)) == list(map(_outline, want))
    assert [p.path.read_bytes() for p in got] == [p.path.read_bytes() for p in want]


def _outline(part: Part) -> tuple[object, ...]:
    return (
        part.number,
        part.lane,
        part.lane_seq,
        part.records,
        part.bytes_uncompressed,
        part.sha256,
    )


def _context(one_collection: bool, level: int | None = 6) -> WorkContext:
    return WorkContext(
        SegmentBulkTarget(),
        SEGMENT_RULES,
        ShapeOptions(),
        True,
        True,
        lanes=2,
        level=level,
        one_collection=one_collection,
    )


def test_a_worker_gives_plain_lanes_and_each_lines_collection() -> None:
    data = b"\n".join(map(orjson.dumps, records(300, seed=5))) + b"\n"
    result = ndjson_chunk(_context(True), "in", 1, data)
    plain = ndjson_chunk(_context(False, None), "in", 1, data)
    assert result.lanes == plain.lanes and result.order == plain.order  # level 6 ignored
    assert len(result.line_collections) == 4 * len(result.order) == 4 * result.valid
    assert set(result.collections) == set(COLLECTIONS)


def test_a_one_collection_packer_refuses_blocks_without_collections(tmp_path: Path) -> None:
    """Gzip lanes without each line's collection cannot be cut by collection."""
    data = b"\n".join(map(orjson.dumps, records(50, seed=2))) + b"\n"
    block = ndjson_chunk(_context(False), "in", 1, data)
    packer = Packer(tmp_path, MB, 2, one_collection=True)
    with pytest.raises(ValueError, match="collection of 0"):
        packer.add_block(block)

"""Packing records into gzip parts: limits, order, determinism, manifest and spool dirs."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkctl.errors import UsageError
from bulkctl.pack.packer import (
    MIN_PART_SIZE,
    Packer,
    SpoolDir,
    lane_of,
    remove_parts,
    write_manifest,
)
from bulkctl.pack.parts import Part

MB = 1_000_000

Item = tuple[str, str, bytes]


def make_items(count: int, ids: int = 50, pad: int = 200) -> list[Item]:
    """Records with repeated ids, so one object has several versions in the input."""
    items = []
    for n in range(count):
        collection = "rooms" if n % 3 else "users"
        record_id = f"id-{n % ids}"
        line = json.dumps(
            {"id": record_id, "collection": collection, "properties": {"n": n, "pad": "x" * pad}}
        ).encode()
        items.append((collection, record_id, line))
    return items


def pack(items: list[Item], spool: Path, **kwargs: int) -> list[Part]:
    """Run a Packer over items and return every part it produced."""
    part_size = kwargs.pop("part_size", MB)
    lanes = kwargs.pop("lanes", 4)
    spool.mkdir(parents=True, exist_ok=True)
    packer = Packer(spool, part_size, lanes, **kwargs)
    parts: list[Part] = []
    for collection, record_id, line in items:
        parts += packer.add(collection, record_id, line)
    parts += packer.close()
    return parts


def lines_of(part: Part) -> list[bytes]:
    """The lines a part decodes to (each line ends with a newline in the file)."""
    data = gzip.decompress(part.path.read_bytes())
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def by_lane(parts: list[Part]) -> dict[int, list[Part]]:
    lanes: dict[int, list[Part]] = defaultdict(list)
    for part in sorted(parts, key=lambda p: (p.lane, p.lane_seq)):
        lanes[part.lane].append(part)
    return lanes


def test_lane_of_is_a_stable_crc32_of_collection_and_id() -> None:
    """The lane is crc32("collection\\0id") mod lanes: the same in every process and run."""
    assert lane_of("rooms", "42", 7) == zlib.crc32(b"rooms\x0042") % 7
    assert lane_of("rooms", "42", 1) == 0
    assert lane_of("ab", "c", 1000) != lane_of("a", "bc", 1000)


def test_identical_input_gives_byte_identical_parts(tmp_path: Path) -> None:
    """Two runs over the same input produce parts with equal bytes and sha256 (retries resend)."""
    items = make_items(20_000)
    first = pack(items, tmp_path / "a", part_size=MB, lanes=3)
    second = pack(items, tmp_path / "b", part_size=MB, lanes=3)
    assert len(first) > 3
    assert [p.sha256 for p in first] == [p.sha256 for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes()


def test_part_metadata_matches_the_file(tmp_path: Path) -> None:
    """sha256, compressed and uncompressed sizes and record counts describe the file on disk."""
    parts = pack(make_items(10_000), tmp_path, part_size=MB, lanes=2)
    for part in parts:
        data = part.path.read_bytes()
        assert part.sha256 == hashlib.sha256(data).hexdigest()
        assert part.bytes_compressed == len(data)
        raw = gzip.decompress(data)
        assert part.bytes_uncompressed == len(raw)
        assert part.records == raw.count(b"\n")
        assert part.bytes_uncompressed <= MB


def test_gzip_header_has_no_mtime_and_no_file_name(tmp_path: Path) -> None:
    """The gzip header carries mtime 0 and no FNAME flag, so bytes do not depend on the clock."""
    parts = pack(make_items(10), tmp_path)
    for part in parts:
        data = part.path.read_bytes()
        magic, method, flags, mtime = struct.unpack("<HBBI", data[:8])
        assert magic == 0x8B1F and method == 8
        assert flags == 0
        assert mtime == 0


def test_every_line_exactly_once_in_input_order_within_its_lane(tmp_path: Path) -> None:
    """Decoding each lane's parts in lane_seq order gives that lane's input lines in order."""
    items = make_items(30_000, ids=500)
    parts = pack(items, tmp_path, part_size=MB, lanes=5)
    expected: dict[int, list[bytes]] = defaultdict(list)
    for collection, record_id, line in items:
        expected[lane_of(collection, record_id, 5)].append(line)
    got = {lane: [ln for p in ps for ln in lines_of(p)] for lane, ps in by_lane(parts).items()}
    assert got == dict(expected)
    assert sum(p.records for p in parts) == len(items)


def test_all_versions_of_one_object_share_a_lane(tmp_path: Path) -> None:
    """Every line of one (collection, id) is found in parts of a single lane."""
    parts = pack(make_items(20_000, ids=30), tmp_path, part_size=MB, lanes=6)
    lanes_seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for part in parts:
        for line in lines_of(part):
            record = json.loads(line)
            lanes_seen[(record["collection"], record["id"])].add(part.lane)
    assert all(len(lanes) == 1 for lanes in lanes_seen.values())


def test_numbers_follow_closing_order_and_lane_seq_counts_per_lane(tmp_path: Path) -> None:
    """number is 1..N in closing order; lane_seq is 0..k-1 within each lane."""
    packer = Packer(tmp_path, MB, 3)
    closed: list[Part] = []
    for collection, record_id, line in make_items(20_000):
        closed += packer.add(collection, record_id, line)
    closed += packer.close()
    assert [p.number for p in closed] == list(range(1, len(closed) + 1))
    for lane_parts in by_lane(closed).values():
        assert [p.lane_seq for p in lane_parts] == list(range(len(lane_parts)))
        assert [p.number for p in lane_parts] == sorted(p.number for p in lane_parts)


def test_add_returns_the_part_it_closed(tmp_path: Path) -> None:
    """A part is handed back by the add that overflowed it, complete and readable."""
    packer = Packer(tmp_path, MB, 1)
    line = b"a" * 299_999  # 300,000 bytes with its newline: three fit in a part
    assert packer.add("c", "1", line) == []
    assert packer.add("c", "1", line) == []
    assert packer.add("c", "1", line) == []
    closed = packer.add("c", "1", line)
    assert len(closed) == 1 and closed[0].records == 3
    assert lines_of(closed[0]) == [line] * 3
    rest = packer.close()
    assert [(p.number, p.lane_seq, p.records) for p in rest] == [(2, 1, 1)]


def test_concatenated_parts_decode_as_one_gzip_stream(tmp_path: Path) -> None:
    """A lane's parts concatenated decode (multi-member gzip) to the lane's lines."""
    items = make_items(15_000)
    parts = pack(items, tmp_path, part_size=MB, lanes=1)
    assert len(parts) > 1
    joined = b"".join(p.path.read_bytes() for p in parts)
    assert gzip.decompress(joined) == b"".join(line + b"\n" for _, _, line in items)


def test_empty_input_gives_no_parts(tmp_path: Path) -> None:
    """Nothing added means no part and no file left behind."""
    assert pack([], tmp_path, lanes=4) == []
    assert list(tmp_path.iterdir()) == []


def test_unused_lanes_give_no_parts(tmp_path: Path) -> None:
    """With more lanes than objects only lanes that received records produce a part."""
    parts = pack([("c", "only", b"{}")], tmp_path, lanes=8)
    assert [(p.lane, p.records) for p in parts] == [(lane_of("c", "only", 8), 1)]


def test_a_line_that_fits_exactly_stays_and_one_byte_more_moves_on(tmp_path: Path) -> None:
    """A part may reach part_size exactly; one more byte starts the next part."""
    exact = Packer(tmp_path / "exact", MB, 1)
    (tmp_path / "exact").mkdir()
    first = b"a" * 599_999  # 600,000 with newline
    exact.add("c", "1", first)
    assert exact.add("c", "1", b"b" * 399_999) == []  # 1,000,000 in total: fits
    closed = exact.add("c", "1", b"")  # one more byte (its newline) no longer fits
    assert [p.bytes_uncompressed for p in closed] == [MB]
    assert [p.bytes_uncompressed for p in exact.close()] == [1]

    over = Packer(tmp_path / "over", MB, 1)
    (tmp_path / "over").mkdir()
    over.add("c", "1", first)
    closed = over.add("c", "1", b"b" * 400_000)  # 1,000,001: goes to the next part
    assert [p.bytes_uncompressed for p in closed] == [600_000]
    assert [p.bytes_uncompressed for p in over.close()] == [400_001]


def test_a_line_of_exactly_part_size_is_accepted(tmp_path: Path) -> None:
    """One line whose size with newline equals part_size makes a part on its own."""
    packer = Packer(tmp_path, MB, 1)
    packer.add("c", "1", b"x" * (MB - 1))
    (part,) = packer.close()
    assert part.records == 1 and part.bytes_uncompressed == MB


def test_a_line_longer_than_part_size_is_refused(tmp_path: Path) -> None:
    """A line that cannot fit in any part raises ValueError instead of being split."""
    packer = Packer(tmp_path, MB, 1)
    with pytest.raises(ValueError, match="larger than the part size"):
        packer.add("c", "1", b"x" * MB)


def test_a_line_with_a_newline_is_refused(tmp_path: Path) -> None:
    """An embedded newline would turn one record into two, so it is refused."""
    packer = Packer(tmp_path, MB, 1)
    with pytest.raises(ValueError, match="newline"):
        packer.add("c", "1", b'{"a":\n1}')


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"part_size": MIN_PART_SIZE - 1}, "at least 1000000 bytes"),
        ({"lanes": 0}, "lanes must be at least 1"),
        ({"compression_level": 10}, "compression level"),
    ],
)
def test_constructor_refuses_bad_settings(
    tmp_path: Path, kwargs: dict[str, int], message: str
) -> None:
    """Too small a part size, no lanes or a bad level fail early with a clear message."""
    args = {"part_size": MB, "lanes": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        Packer(tmp_path, **args)


def test_context_manager_deletes_unfinished_parts_on_error(tmp_path: Path) -> None:
    """When packing fails midway, half-written part files do not stay in the spool."""
    finished: list[Part] = []
    with pytest.raises(RuntimeError), Packer(tmp_path, MB, 2) as packer:
        for collection, record_id, line in make_items(8_000):
            finished += packer.add(collection, record_id, line)
        raise RuntimeError("reader failed")
    assert finished
    assert sorted(tmp_path.iterdir()) == sorted(p.path for p in finished)


def test_manifest_lists_parts_relative_to_out_dir(tmp_path: Path) -> None:
    """manifest.json names each part file relative to --out and carries the summary fields."""
    out = tmp_path / "out"
    parts = pack(make_items(10_000), out, part_size=MB, lanes=2)
    path = write_manifest(parts, out, job="20261122-7kq3", records=10_000, parts=len(parts))
    assert path == out / "manifest.json"
    document = json.loads(path.read_text())
    assert document["summary"] == {"job": "20261122-7kq3", "records": 10_000, "parts": len(parts)}
    assert [e["number"] for e in document["parts"]] == [p.number for p in parts]
    for entry, part in zip(document["parts"], parts, strict=True):
        assert (out / entry["file"]).read_bytes() == part.path.read_bytes()
        assert entry == {
            "file": part.path.name,
            "number": part.number,
            "lane": part.lane,
            "lane_seq": part.lane_seq,
            "records": part.records,
            "bytes_uncompressed": part.bytes_uncompressed,
            "bytes_compressed": part.bytes_compressed,
            "sha256": part.sha256,
        }


def test_manifest_refuses_parts_outside_out_dir(tmp_path: Path) -> None:
    """A manifest cannot point outside its directory."""
    parts = pack(make_items(10), tmp_path / "spool")
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="not inside"):
        write_manifest(parts, tmp_path / "out")


def test_remove_parts_deletes_files_and_reports_bytes(tmp_path: Path) -> None:
    """remove_parts unlinks every part, tolerates missing ones and returns the bytes freed."""
    parts = pack(make_items(5_000), tmp_path, lanes=3)
    parts[0].path.unlink()
    expected = sum(p.bytes_compressed for p in parts[1:])
    assert remove_parts(parts) == expected
    assert list(tmp_path.iterdir()) == []


def test_spool_dir_is_removed_on_exit(tmp_path: Path) -> None:
    """A spool dir is a fresh directory under the base, gone after the block."""
    with SpoolDir(tmp_path) as spool:
        assert spool.path.parent == tmp_path
        pack(make_items(100), spool.path)
        created = spool.path
    assert not created.exists()


def test_spool_dirs_are_unique(tmp_path: Path) -> None:
    """Two pushes at once never share a spool directory."""
    with SpoolDir(tmp_path) as one, SpoolDir(tmp_path) as two:
        assert one.path != two.path


def test_spool_dir_kept_when_asked_even_on_error(tmp_path: Path) -> None:
    """Setting keep inside the block (e.g. on interrupt) leaves the parts for resume."""
    with pytest.raises(KeyboardInterrupt), SpoolDir(tmp_path) as spool:
        parts = pack(make_items(100), spool.path)
        spool.keep = True
        raise KeyboardInterrupt
    assert all(p.path.exists() for p in parts)


def test_spool_dir_base_must_exist(tmp_path: Path) -> None:
    """A --spool-dir that does not exist is a usage error naming it."""
    with pytest.raises(UsageError, match="does not exist"), SpoolDir(tmp_path / "nope"):
        pass


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(
        st.one_of(st.integers(0, 2_000), st.integers(100_000, 400_000)), min_size=0, max_size=40
    ),
    keys=st.data(),
    lanes=st.integers(1, 6),
    part_size=st.integers(MIN_PART_SIZE, 1_300_000),
)
def test_property_lanes_decode_to_their_input_subsequence(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    keys: st.DataObject,
    lanes: int,
    part_size: int,
) -> None:
    """For any line lengths, lane counts and part sizes, each lane's parts decode to its input."""
    spool = tmp_path_factory.mktemp("prop")
    items: list[Item] = []
    for n, size in enumerate(sizes):
        record_id = str(keys.draw(st.integers(0, 8)))
        items.append(("c", record_id, (b"%d:" % n + b"z" * size)[:size]))
    parts = pack(items, spool, part_size=part_size, lanes=lanes, compression_level=1)
    expected: dict[int, list[bytes]] = defaultdict(list)
    for collection, record_id, line in items:
        expected[lane_of(collection, record_id, lanes)].append(line + b"\n")
    got = {
        lane: [gzip.decompress(p.path.read_bytes()) for p in ps]
        for lane, ps in by_lane(parts).items()
    }
    assert {lane: b"".join(chunks) for lane, chunks in got.items()} == {
        lane: b"".join(lines) for lane, lines in expected.items()
    }
    for part in parts:
        data = gzip.decompress(part.path.read_bytes())
        assert data.endswith(b"\n") and data.count(b"\n") == part.records
        assert len(data) == part.bytes_uncompressed <= part_size
    assert sorted(p.number for p in parts) == list(range(1, len(parts) + 1))

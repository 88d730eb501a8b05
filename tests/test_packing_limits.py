"""Packing under a target's optional limits: records a part, one collection, file size, plain."""

from __future__ import annotations

import base64
import gzip
import os
import random
from pathlib import Path

from bulkctl.pack.packer import FILE_SLACK, MIN_PART_SIZE, Packer
from bulkctl.pack.parts import Part

MB = 1_000_000


def pack(packer: Packer, items: list[tuple[str, str, bytes]]) -> list[Part]:
    parts: list[Part] = []
    for collection, record_id, line in items:
        parts += packer.add(collection, record_id, line)
    return parts + packer.close()


def test_max_records_caps_the_lines_of_a_part(tmp_path: Path) -> None:
    """A target with a record limit (e.g. 10 objects a request) gets parts of at most that."""
    items = [("rooms", str(n), b'{"n":%d}' % n) for n in range(25)]
    parts = pack(Packer(tmp_path, MB, 1, max_records=10), items)
    assert [p.records for p in parts] == [10, 10, 5]


def test_one_collection_a_part(tmp_path: Path) -> None:
    """A part never mixes collections when the target sends one collection a request."""
    items = [("rooms", "1", b"a"), ("rooms", "2", b"b"), ("beds", "3", b"c"), ("rooms", "4", b"d")]
    parts = pack(Packer(tmp_path, MB, 1, one_collection=True), items)
    assert [gzip.decompress(p.path.read_bytes()) for p in parts] == [b"a\nb\n", b"c\n", b"d\n"]


def test_plain_parts_are_not_compressed(tmp_path: Path) -> None:
    """compress=False writes the lines as they are, under the chosen suffix."""
    (part,) = pack(Packer(tmp_path, MB, 1, compress=False, suffix=".ndjson"), [("c", "1", b"x")])
    assert part.path.name.endswith(".ndjson")
    assert part.path.read_bytes() == b"x\n"
    assert part.bytes_compressed == part.bytes_uncompressed == 2


def test_the_file_limit_bounds_the_compressed_size(tmp_path: Path) -> None:
    """Barely compressible lines: every file stays under the limit on the bytes sent."""
    limit = MIN_PART_SIZE + FILE_SLACK + MB
    rng = random.Random(7)
    items = [("c", str(n), base64.b64encode(rng.randbytes(3_000))) for n in range(6_000)]
    parts = pack(Packer(tmp_path, 100 * MB, 1, max_file_bytes=limit), items)
    assert len(parts) >= 3
    assert all(os.path.getsize(p.path) == p.bytes_compressed <= limit for p in parts)
    assert sum(p.records for p in parts) == 6_000

"""The lane of a record: crc32("collection\\0" + id) % lanes, the one definition in Python.

Stable across processes and runs (crc32, not `hash()`), so a record's lane is the same in every
worker and on resume. The hash is split in two because workers see many records of few
collections: `lane_base` once per collection, then `lane_of` (or `lanes_of` for a whole column
of ids) continues the crc32 with the id. The C scanner (bulkctl/_native.c) keeps its own copy;
tests/test_native.py pins that both agree.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import repeat
from operator import mod

_crc32 = zlib.crc32


def lane_base(collection: str) -> int:
    """crc32 of "collection\\0": the start of every lane hash of that collection."""
    return _crc32(f"{collection}\x00".encode())


def lane_of(base: int, record_id: str, lanes: int) -> int:
    """The lane of `record_id` in the collection whose `lane_base` is `base`."""
    return _crc32(record_id.encode(), base) % lanes


def lanes_of(bases: Iterable[int], encoded_ids: Iterable[bytes], lanes: int) -> list[int]:
    """`lane_of` for a column of records at once: their bases and UTF-8 encoded ids."""
    return list(map(mod, map(_crc32, encoded_ids, bases), repeat(lanes)))

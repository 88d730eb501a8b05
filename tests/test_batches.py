"""Spooled parts cut into request bodies (`bulkctl.pack.batches`), read from real part files.

The cut must be a pure function of the part and the rules (resume skips the acknowledged
batches of a second cut), keep every record exactly once, merge versions of one id within a
batch (later wins), and never build a body over the rules' byte limit.
"""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkctl.pack.batches import Batch, BatchRules, batches_of, count_batches
from bulkctl.pack.parts import Part


def line(object_id: str, collection: str = "rooms", **properties: Any) -> bytes:
    return orjson.dumps({"id": object_id, "collection": collection, "properties": properties})


def part(tmp_path: Path, lines: list[bytes], *, gz: bool = False) -> Part:
    data = b"".join(item + b"\n" for item in lines)
    path = tmp_path / ("part.ndjson.gz" if gz else "part.ndjson")
    path.write_bytes(gzip.compress(data) if gz else data)
    size = path.stat().st_size
    return Part(1, 0, 0, path, len(lines), len(data), size, "")


def body_size(rules: BatchRules, batch: Batch) -> int:
    """The body as a target writes it: envelope, then each object with its overhead."""
    return rules.envelope_bytes + sum(map(rules.object_size, batch.objects))


def objects(batches: list[Batch]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (item.collection, item.id, orjson.loads(item.properties))
        for batch in batches
        for item in batch.objects
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_requests_of_at_most_n_objects_of_one_collection(tmp_path: Path, gz: bool) -> None:
    lines = [line(str(n), "rooms" if n % 3 else "users", n=n) for n in range(25)]
    batches = list(batches_of(part(tmp_path, lines, gz=gz), BatchRules(max_objects=4)))
    assert all(1 <= len(b.objects) <= 4 for b in batches)
    assert all({item.collection for item in b.objects} == {b.collection} for b in batches)
    assert sorted(n for _, _, props in objects(batches) for n in props.values()) == list(range(25))
    assert [b.index for b in batches] == list(range(len(batches)))
    assert sum(b.records for b in batches) == 25
    assert batches[-1].through == sum(b.size for b in batches)


def test_versions_of_one_id_in_a_batch_merge_later_winning(tmp_path: Path) -> None:
    lines = [line("1", name="old", beds=1), line("2", a=1), line("1", name="new")]
    (batch,) = batches_of(part(tmp_path, lines), BatchRules(max_objects=10))
    assert objects([batch]) == [
        ("rooms", "1", {"name": "new", "beds": 1}),
        ("rooms", "2", {"a": 1}),
    ]
    assert batch.records == 3 and batch.objects[0].merged == 2


def test_skip_yields_exactly_the_batches_after_the_first_n(tmp_path: Path) -> None:
    spooled = part(tmp_path, [line(str(n), x="v" * (n % 7)) for n in range(40)])
    rules = BatchRules(max_objects=3, max_body_bytes=200)
    every = list(batches_of(spooled, rules))
    assert list(batches_of(spooled, rules, skip=5)) == every[5:]
    assert count_batches(spooled, rules) == len(every)


def test_no_body_is_over_the_byte_limit_and_nothing_is_dropped(tmp_path: Path) -> None:
    rules = BatchRules(max_objects=1000, max_body_bytes=300, envelope_bytes=14, object_bytes=30)
    lines = [line(str(n), text="x" * (n * 7 % 90)) for n in range(200)]
    batches = list(batches_of(part(tmp_path, lines), rules))
    assert all(body_size(rules, b) <= 300 for b in batches)
    assert len(batches) > 10  # the byte limit, not the 1000 objects, cut them
    assert [item[1] for item in objects(batches)] == [str(n) for n in range(200)]
    # each batch is full: the next object would not have fitted
    for batch, after in pairwise(batches):
        assert body_size(rules, batch) + rules.object_size(after.objects[0]) > 300


def test_a_merge_that_would_overflow_goes_to_the_next_batch(tmp_path: Path) -> None:
    """The later version must still win: it travels in a later request of the same lane."""
    rules = BatchRules(max_objects=10, max_body_bytes=120, object_bytes=10)
    lines = [line("1", a="x" * 40), line("2", b="y" * 20), line("1", c="z" * 40)]
    batches = list(batches_of(part(tmp_path, lines), rules))
    assert objects(batches) == [
        ("rooms", "1", {"a": "x" * 40}),
        ("rooms", "2", {"b": "y" * 20}),
        ("rooms", "1", {"c": "z" * 40}),
    ]
    assert [len(b.objects) for b in batches] == [2, 1]
    assert all(body_size(rules, b) <= 120 for b in batches)


def test_an_object_too_large_for_any_body_is_an_error_not_a_large_body(tmp_path: Path) -> None:
    rules = BatchRules(max_objects=10, max_body_bytes=50)
    with pytest.raises(ValueError, match="cannot fit in a request body of at most 50 bytes"):
        list(batches_of(part(tmp_path, [line("1", a="x" * 60)]), rules))


def test_rules_must_leave_room_after_the_envelope() -> None:
    with pytest.raises(ValueError, match="room for objects"):
        BatchRules(max_objects=1, max_body_bytes=10, envelope_bytes=10)
    with pytest.raises(ValueError, match="at least 1"):
        BatchRules(max_objects=0)

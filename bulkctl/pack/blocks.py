"""A chunk's valid lines as a worker packs them per lane (`Block`), and their input order.

A block holds each lane's lines as one member (gzip, or plain when the parts are plain) and
`order`, the lane of every line in input order. When parts hold one collection each, the
packer must cut a lane wherever the collection changes, so it walks the lines one by one in
input order (`lines_in_order`): the lanes then come plain (whatever the level), with each
line's collection (`collections`, `line_collections`), and the packer compresses them
itself, as `Packer.add` would (`bulkctl.fast.state.WorkContext.one_collection`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class Block(Protocol):
    """A chunk's valid lines, packed per lane (what `bulkctl.fast.lines` produces)."""

    @property
    def lanes(self) -> Sequence[bytes | None]: ...  # one member a lane (plain if not gzip)

    @property
    def lane_bytes(self) -> Sequence[int]: ...  # uncompressed bytes, newlines included

    @property
    def lane_records(self) -> Sequence[int]: ...

    @property
    def order(self) -> bytes: ...  # the lane of every line, in input order

    @property
    def collections(self) -> Sequence[str]: ...  # one collection a part: the names ...

    @property
    def line_collections(self) -> bytes: ...  # ... array('I') of each line's, in input order


def lines_in_order(block: Block) -> Iterator[tuple[int, str, bytes]]:
    """(lane, collection, line without its newline) of every line of a block of plain lanes,
    in input order; a ValueError if the block does not add up (no line is ever dropped)."""
    order = block.order
    numbers = memoryview(block.line_collections).cast("I")
    if len(numbers) != len(order):
        raise ValueError(
            f"a block of {len(order)} lines names the collection of {len(numbers)}: one "
            "collection a part needs plain lanes with each line's collection"
        )
    lanes: list[Iterator[bytes]] = []
    for lane, data in enumerate(block.lanes):
        lines = data.split(b"\n") if data else [b""]
        count = len(lines) - 1  # the data ends with a newline
        if lines[-1] or count != block.lane_records[lane] or count != order.count(lane):
            raise ValueError(f"lane {lane} of a block does not hold the lines its order says")
        lanes.append(iter(lines))
    names = block.collections
    # All in C: each line's collection looked up, each line taken from its lane's in turn.
    taken = map(next, map(lanes.__getitem__, order))
    yield from zip(order, map(names.__getitem__, numbers), taken, strict=True)

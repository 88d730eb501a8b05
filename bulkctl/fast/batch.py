"""A batch of parsed records checked and accepted with a few C-level passes, or not at all.

Python spends ~30-100 ns on every bytecode; checking 15 property values one by one costs more
than parsing them. Here a batch (~64 records) is checked with passes that run inside C
(`map`, `set`, `itemgetter`, `orjson.dumps` of all values at once), and accepted as a whole
only when every record is plainly valid in the canonical shape. If anything is unusual (a
flat record, a null, a list, a big number, a bad id), `accept_batch` returns False and the
caller goes record by record (`bulkctl.fast.lines`), where the exact rules decide.

Why each check is enough (for a canonical record whose input line is shorter than
`ChunkState.small` bytes, which the caller guarantees):
- values are str, int, float or bool, and no property name is empty;
- ints from orjson are at least -2^63; `dumps(..., OPT_STRICT_INTEGER)` raises for any beyond
  2^53, so every int is in the 64-bit range;
- floats are finite (orjson refuses inf and nan) and print with `e+` once they reach 1e16,
  so a float's magnitude is under 2^63 unless `e` comes right before a `+` in the dump (beyond
  that, orjson may have read an integer as a float: `bulkctl.exactjson` decides);
- no key was repeated in a line: orjson writes the line back as it was, or its colons are
  counted (`exactjson.no_repeats_in`);
- strings are shorter than the line, so under the value limit, and the line stays under
  the line limit (see `ChunkState.small`).
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, compress
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING, Any

import orjson

from bulkctl.exactjson import no_repeats_in
from bulkctl.fast.state import NUMBERS, SIMPLE, STRICT
from bulkctl.pack.lanes import lanes_of

if TYPE_CHECKING:
    from bulkctl.fast.state import ChunkState

CANONICAL = ("id", "collection", "properties")
_ID = itemgetter("id")
_COLLECTION = itemgetter("collection")
_PROPERTIES = itemgetter("properties")
_HAS_EMPTY_NAME = methodcaller("__contains__", "")
_ENDS_WITH_E = methodcaller("endswith", b"e")


def accept_batch(state: ChunkState, values: list[Any], lines: list[bytes] | None = None) -> bool:
    """Accept every record of `values` if all are plainly valid; else False.

    `lines`: the input lines they were parsed from, where a key may have been repeated (the
    values of a reader that went through `bulkctl.exactjson` come without).
    """
    if set(map(type, values)) != {dict}:
        return False
    pack = state.ctx.pack
    if pack:
        # dumps(value) is then exactly the line the rules encode: same keys, same order.
        if set(map(tuple, values)) != {CANONICAL}:
            return False
    elif set(map(len, values)) != {3}:
        return False
    try:
        ids = list(map(_ID, values))
        collections = list(map(_COLLECTION, values))
        props = list(map(_PROPERTIES, values))
        if set(map(type, ids)) != {str} or set(map(type, props)) != {dict}:
            return False
        named = set(collections)
    except (KeyError, TypeError):  # a key missing, or an unhashable collection
        return False
    good = state.good
    if not named <= good.keys() and not all(map(state.collection_ok, named)):
        return False
    lengths = list(map(len, ids))
    if min(lengths) == 0 or max(lengths) > state.max_id or any(map(_HAS_EMPTY_NAME, props)):
        return False
    every = list(chain.from_iterable(map(dict.values, props)))
    kinds = set(map(type, every))
    if not kinds <= SIMPLE:
        return False
    if not kinds.isdisjoint(NUMBERS):
        try:
            dumped = orjson.dumps(every, None, STRICT)
        except orjson.JSONEncodeError:  # an int beyond 53 bits: the exact path decides
            return False
        if b"+" in dumped and any(map(_ENDS_WITH_E, dumped.split(b"+")[:-1])):
            return False
    encoded = list(map(orjson.dumps, values)) if pack else None
    # A line orjson writes back byte for byte lost no key; else the colons are counted.
    keys = 3 * len(values) + sum(map(len, props))
    if lines is not None and encoded != lines and not no_repeats_in(lines, keys):
        return False
    take(state, values, ids, collections, props, encoded)
    return True


def take(
    state: ChunkState,
    values: list[Any],
    ids: list[str],
    collections: list[str],
    props: list[dict[str, Any]],
    encoded: list[bytes] | None = None,
) -> None:
    """Count, note hint material and (packing) route the batch's lines (`encoded`: the
    lines already, `orjson.dumps` of each value) to their lanes."""
    count = len(values)
    state.valid += count
    per = state.per_collection
    for collection, number in Counter(collections).items():
        per[collection] = per.get(collection, 0) + number
    if state.ctx.hints:
        book = state.book
        book.know(per.keys() - book.names.keys())
        # A shortcut only (most batches bring no new name): the rule is `NameBook.fresh`.
        if not all(map(set.issuperset, map(book.names.__getitem__, collections), props)):
            fresh = book.fresh
            for collection, properties in zip(collections, props, strict=True):
                new = fresh(collection, properties.keys())
                if new:
                    state.groups.append((collection, new))
        state.keys.extend(map(hash, zip(collections, ids, strict=True)))
    if not state.ctx.pack:
        return
    lines = list(map(orjson.dumps, values)) if encoded is None else encoded
    lanes = lanes_of(
        map(state.good.__getitem__, collections), map(str.encode, ids), state.ctx.lanes
    )
    bufs, lane_records = state.bufs, state.lane_records
    for lane in set(lanes):
        chosen = list(compress(lines, map(lane.__eq__, lanes)))
        buf = bufs[lane]
        buf += b"\n".join(chosen)
        buf += b"\n"
        lane_records[lane] += len(chosen)
    state.order.extend(lanes)
    if state.one_collection:
        state.note_collections(collections)

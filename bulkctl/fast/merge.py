"""Chunk results → the run's tally, hints and rejections, exactly as one pass in order would.

Chunks are merged in input order (`bulkctl.fast.workers` guarantees it), so counts, the first
errors, the rejects file and console lines come out as the record-by-record loop of
`bulkctl.check.validate.valid_lines` makes them. Hints need state across chunks: which property
names each collection already showed, and which (collection, id) keys were already seen, for
the duplicate-id count across chunks.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from bulkctl.check.hints import NameBook
from bulkctl.check.validate import (
    DUPLICATE_TRACKING_LIMIT,
    FIRST_ERRORS,
    Hints,
    Rejection,
    Tally,
)
from bulkctl.fast.state import ChunkResult
from bulkctl.native import native

_EMPTY = -1  # hash() never returns -1, so it marks a free slot
_FIRST_SLOTS = 1 << 16


class KeySet:
    """The (collection, id) keys seen so far: an open-addressing table of 64-bit hashes.

    8 bytes a slot at most half full, where a Python set of ints takes ~75 bytes a key, so
    tracking the first `limit` ids (1M) costs at most 16 MB, the same at 256 MB and at 2 GB
    of input. Keys are Python's `hash((collection, id))`, as `_HintTracker` counts them.
    `expected`: how many keys to make room for at once (growing copies the table).
    """

    def __init__(self, limit: int = DUPLICATE_TRACKING_LIMIT, expected: int = 0) -> None:
        self.limit = limit
        self.size = 0
        self.capped = False
        self._max_slots = _slots_for(limit)
        module = native()
        # The same table in C when it was built (this loop runs for every record).
        self._native = None if module is None else module.KeyTable(limit, expected)
        slots = 0 if self._native is not None else min(_slots_for(expected), self._max_slots)
        self._table = array("q", [_EMPTY]) * slots
        self._mask = slots - 1

    def add_all(self, keys: array[int]) -> int:
        """Add keys in order; how many were seen before (in earlier calls or earlier here)."""
        if self._native is not None:
            repeats: int = self._native.add_all(keys)
            self.size = self._native.size
            self.capped = self._native.capped
            return repeats
        self._reserve(min(self.size + len(keys), self.limit))
        table = self._table
        mask = self._mask
        size = self.size
        limit = self.limit
        repeats = 0
        for key in keys:
            slot = key & mask
            found = table[slot]
            while found != _EMPTY and found != key:
                slot = (slot + 1) & mask
                found = table[slot]
            if found == key:
                repeats += 1
            elif size < limit:
                table[slot] = key
                size += 1
            else:
                self.capped = True
        self.size = size
        return repeats

    def _reserve(self, count: int) -> None:
        """Grow (8x at a time, up to what `limit` keys need) so `count` keys fit half full."""
        slots = len(self._table)
        if count * 2 <= slots or slots >= self._max_slots:
            return
        while count * 2 > slots:
            slots *= 8
        slots = min(slots, self._max_slots)
        old = self._table
        self._table = array("q", [_EMPTY]) * slots
        self._mask = mask = slots - 1
        table = self._table
        for key in old:
            if key != _EMPTY:
                slot = key & mask
                while table[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                table[slot] = key


def _slots_for(count: int) -> int:
    """The power of two that holds `count` keys at most half full (at least _FIRST_SLOTS)."""
    slots = _FIRST_SLOTS
    while slots < 2 * count:
        slots *= 2
    return slots


class Merger:
    """Folds chunk results, in order, into a Tally; tells each rejection to `on_reject`."""

    def __init__(
        self,
        tally: Tally,
        hints: bool,
        on_reject: Callable[[Rejection], None],
        expected_records: int = 0,
    ) -> None:
        self.tally = tally
        self.hints = hints
        self.on_reject = on_reject
        self.book = NameBook()  # as the workers noted them, in input order
        self.keys = KeySet(expected=expected_records if hints else 0)

    def counts(self, result: ChunkResult) -> None:
        """Everything but the rejections: records, valid, collections and hints."""
        tally = self.tally
        tally.records += result.records
        tally.valid += result.valid
        tally.per_collection.update(result.per_collection)
        if self.hints:
            self._hints(result, tally.hints)

    def rejections(self, result: ChunkResult) -> None:
        """Each rejection in order: counted, kept among the first errors, told (may raise)."""
        tally = self.tally
        for rejection, count in result.rejections:
            tally.rejected += count
            if len(tally.first_errors) < FIRST_ERRORS:
                tally.first_errors.append(rejection.as_dict())
            self.on_reject(rejection)

    def _hints(self, result: ChunkResult, hints: Hints) -> None:
        book = self.book
        for collection in book.know(result.per_collection):
            hints.note_collection(collection)
        for collection, group in result.groups:
            hints.note_names(collection, book.fresh(collection, group))
        if result.keys:
            keys = array("q")
            keys.frombytes(result.keys)
            hints.duplicate_ids += self.keys.add_all(keys)
            if self.keys.capped:
                hints.duplicate_tracking_capped = True

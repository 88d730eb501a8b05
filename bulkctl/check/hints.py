"""Hint bookkeeping, one definition: which property names each collection showed so far.

The naming hints (`validate.Hints`: non-snake_case names, singular collections) look at each
name a collection shows for the first time. Workers note those names a chunk at a time and the
main process folds the chunks' notes in input order, so both sides keep the same book: a
record (or a chunk's note) that brings names its collection has not shown opens a group of
them, sorted; names already shown cost nothing. Repeated ids are counted by the key
`hash((collection, id))` (see `bulkctl.fast.merge.KeySet`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


class NameBook:
    """The property names each collection has shown so far."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}

    def first(self, collection: str) -> bool:
        """Whether `collection` is seen for the first time (it is known from now on)."""
        if collection in self.names:
            return False
        self.names[collection] = set()
        return True

    def know(self, collections: Iterable[str]) -> list[str]:
        """`first` for each of `collections`: those seen for the first time, in order."""
        return [collection for collection in collections if self.first(collection)]

    def fresh(self, collection: str, shown: Collection[str]) -> list[str]:
        """The names among `shown` that `collection` shows for the first time (sorted),
        remembered from now on; empty when it showed them all before."""
        seen = self.names.get(collection)
        if seen is None:
            seen = self.names[collection] = set()
        if seen.issuperset(shown):
            return []
        new = sorted(set(shown) - seen)
        seen.update(new)
        return new

"""Records through the target's rules: counts, hints, rejects, and the valid encoded lines.

This is the shared middle of `validate` and `push`: it asks the target to shape `RawItem`s into
records and to check each one (which encodes its line once), and tells every rejection to a
callback, so the caller decides whether a rejection stops the run (`--on-invalid fail`) or is
only recorded (`skip`). Counts are of input records: a target that joins rows into one record
says how many it joined (`Record.items`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkctl.check.hints import NameBook
from bulkctl.check.rules import is_snake_case, looks_singular
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions, rejected, shape

__all__ = ["Hints", "Rejection", "Tally", "valid_lines"]

FIRST_ERRORS = 20  # rejections kept in the summary; all of them go to --rejects
DUPLICATE_TRACKING_LIMIT = 1_000_000  # distinct ids tracked for the duplicate hint (memory bound)
HINT_NAMES_LIMIT = 50


class RecordHandling(Protocol):
    """What validation needs of a target (see `bulkctl.targets.base.Target`)."""

    unique_lines: bool
    object_hints: bool

    def records(
        self, items: Iterable[RawItem], shape: ShapeOptions
    ) -> Iterator[Record | Rejection]: ...

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]: ...


@dataclass
class Hints:
    """Advice that never fails a run: naming conventions and duplicate ids."""

    non_snake_case: dict[str, list[str]] = field(default_factory=dict)  # collection -> names
    singular_collections: list[str] = field(default_factory=list)
    duplicate_ids: int = 0
    duplicate_tracking_capped: bool = False
    duplicate_lines_capped: bool = False  # repeated lines checked over the first lines only

    def note_collection(self, collection: str) -> None:
        """A collection seen for the first time (`NameBook.first`)."""
        if looks_singular(collection):
            self.singular_collections.append(collection)

    def note_names(self, collection: str, fresh: list[str]) -> None:
        """Names `collection` shows for the first time (`NameBook.fresh`, sorted)."""
        if not fresh:
            return
        bad = self.non_snake_case.setdefault(collection, [])
        for name in fresh:
            if not is_snake_case(name) and len(bad) < HINT_NAMES_LIMIT:
                bad.append(name)
        if not bad:
            del self.non_snake_case[collection]

    def lines(self) -> list[str]:
        out: list[str] = []
        for collection, names in sorted(self.non_snake_case.items()):
            shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
            out.append(f"{collection}: property names are not snake_case: {shown}")
        for collection in self.singular_collections:
            out.append(f"collection {collection!r} looks singular; plural names are recommended")
        if self.duplicate_ids:
            capped = ""
            if self.duplicate_tracking_capped:
                capped = f" (counted over the first {DUPLICATE_TRACKING_LIMIT:,} ids)"
            out.append(
                f"{self.duplicate_ids:,} records repeat an id seen earlier; they merge in input "
                f"order{capped}"
            )
        if self.duplicate_lines_capped:
            out.append(
                f"repeated lines were looked for in the first {DUPLICATE_TRACKING_LIMIT:,} "
                "lines only"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "non_snake_case": self.non_snake_case,
            "singular_collections": self.singular_collections,
            "duplicate_ids": self.duplicate_ids,
        }


@dataclass
class Tally:
    """What a run counted; updated as records stream through."""

    records: int = 0
    valid: int = 0
    rejected: int = 0
    per_collection: Counter[str] = field(default_factory=Counter)
    first_errors: list[dict[str, Any]] = field(default_factory=list)
    hints: Hints = field(default_factory=Hints)


class _HintTracker:
    """Keeps hint bookkeeping cheap on the hot path: only new names and ids cost anything."""

    def __init__(self, hints: Hints) -> None:
        self.hints = hints
        self.book = NameBook()
        self.seen_ids: set[int] = set()

    def observe(self, record: Record) -> None:
        collection = record.collection
        if self.book.first(collection):
            self.hints.note_collection(collection)
        fresh = self.book.fresh(collection, record.properties.keys())
        if fresh:
            self.hints.note_names(collection, fresh)
        key = hash((record.collection, record.id))
        if key in self.seen_ids:
            self.hints.duplicate_ids += 1
        elif len(self.seen_ids) < DUPLICATE_TRACKING_LIMIT:
            self.seen_ids.add(key)
        else:
            self.hints.duplicate_tracking_capped = True


class _LineTracker:
    """Finds lines repeated within one run, for targets where a repeat is an error.

    Keeps a 64-bit hash and the first line number of each line, bounded in memory: after
    `DUPLICATE_TRACKING_LIMIT` distinct lines, new ones are no longer remembered.
    """

    def __init__(self, hints: Hints) -> None:
        self.hints = hints
        self.seen: dict[int, int] = {}

    def problems(self, line: bytes, record: Record) -> list[Problem]:
        key = hash(line)
        first = self.seen.get(key)
        if first is not None:
            return [
                Problem(
                    None,
                    "line.duplicate",
                    f"the same line as the record at line {first}: a repeated line is invalid "
                    "for this API; remove the repeat",
                )
            ]
        if len(self.seen) < DUPLICATE_TRACKING_LIMIT:
            self.seen[key] = record.line
        else:
            self.hints.duplicate_lines_capped = True
        return []


def _counted(items: Iterable[RawItem], tally: Tally) -> Iterator[RawItem]:
    for item in items:
        tally.records += 1
        yield item


def valid_lines(
    items: Iterable[RawItem],
    options: ShapeOptions,
    target: RecordHandling,
    tally: Tally,
    on_reject: Callable[[Rejection], None],
) -> Iterator[tuple[str, str, bytes]]:
    """Yield (collection, id, encoded line) for each valid record; report each rejection.

    `on_reject` may raise to stop the run (fail-fast in `push --stream`).
    """
    hints = _HintTracker(tally.hints) if target.object_hints else None
    repeats = _LineTracker(tally.hints) if target.unique_lines else None
    check = target.check
    per_collection = tally.per_collection
    for shaped in target.records(_counted(items, tally), options):
        if isinstance(shaped, Record):
            problems, line = check(shaped)
            if line is not None and repeats is not None:
                problems = repeats.problems(line, shaped)
                if problems:
                    line = None
            if line is not None:
                tally.valid += shaped.items
                per_collection[shaped.collection] += shaped.items
                if hints is not None:
                    hints.observe(shaped)
                yield shaped.collection, shaped.id, line
                continue
            rejection = Rejection(
                shaped.source, shaped.line, shaped.index, problems, _raw_record(shaped)
            )
            tally.rejected += max(shaped.items, 1)
        else:
            rejection = shaped
            tally.rejected += 1
        if len(tally.first_errors) < FIRST_ERRORS:
            tally.first_errors.append(rejection.as_dict())
        on_reject(rejection)


def _raw_record(record: Record) -> Any:
    if record.raw is not None:
        return record.raw
    return {"id": record.id, "collection": record.collection, "properties": record.properties}


def shape_each(items: Iterable[RawItem], options: ShapeOptions) -> Iterator[Record | Rejection]:
    """Objects-style `records`: one item, one record (see `bulkctl.records.shape`)."""
    for item in items:
        shaped = shape(item, options)
        if isinstance(shaped, Record):
            shaped.raw = item.data  # a rejects file shows the record as it was read
            yield shaped
        else:
            yield rejected(item, shaped)

"""Records through the target's rules: counts, hints, rejects, and the valid encoded lines.

This is the shared middle of `validate` and `push`: it turns `RawItem`s into valid NDJSON lines
(each encoded once, by the rules) and tells every rejection to a callback, so the caller
decides whether a rejection stops the run (`--on-invalid fail`) or is only recorded (`skip`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkctl.records import Problem, RawItem, Record, ShapeOptions, location, shape
from bulkctl.rules import is_snake_case, looks_singular

FIRST_ERRORS = 20  # rejections kept in the summary; all of them go to --rejects
DUPLICATE_TRACKING_LIMIT = 1_000_000  # distinct ids tracked for the duplicate hint (memory bound)
HINT_NAMES_LIMIT = 50


class RecordRules(Protocol):
    """What validation needs of a target's rules."""

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]: ...


@dataclass(slots=True)
class Rejection:
    """A record that will not be sent, with every reason, ready for the rejects file."""

    source: str
    line: int
    index: int | None
    problems: list[Problem]
    record: Any

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "line": self.line}
        if self.index is not None:
            out["index"] = self.index
        out["errors"] = [p.as_dict() for p in self.problems]
        out["record"] = self.record
        return out

    def describe(self) -> str:
        """One line per problem: `rooms.ndjson:12: properties.tags: a list is not allowed`."""
        where = location(self.source, self.line, self.index)
        return "\n".join(
            f"{where}: {p.field + ': ' if p.field else ''}{p.message}" for p in self.problems
        )


@dataclass
class Hints:
    """Advice that never fails a run: naming conventions and duplicate ids."""

    non_snake_case: dict[str, list[str]] = field(default_factory=dict)  # collection -> names
    singular_collections: list[str] = field(default_factory=list)
    duplicate_ids: int = 0
    duplicate_tracking_capped: bool = False

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
        self.seen_names: dict[str, set[str]] = {}
        self.seen_ids: set[int] = set()

    def observe(self, record: Record) -> None:
        names = self.seen_names.get(record.collection)
        if names is None:
            names = self.seen_names[record.collection] = set()
            if looks_singular(record.collection):
                self.hints.singular_collections.append(record.collection)
        new = record.properties.keys() - names
        if new:
            names.update(new)
            bad = self.hints.non_snake_case.setdefault(record.collection, [])
            for name in sorted(new):
                if not is_snake_case(name) and len(bad) < HINT_NAMES_LIMIT:
                    bad.append(name)
            if not bad:
                del self.hints.non_snake_case[record.collection]
        key = hash((record.collection, record.id))
        if key in self.seen_ids:
            self.hints.duplicate_ids += 1
        elif len(self.seen_ids) < DUPLICATE_TRACKING_LIMIT:
            self.seen_ids.add(key)
        else:
            self.hints.duplicate_tracking_capped = True


def valid_lines(
    items: Iterable[RawItem],
    options: ShapeOptions,
    rules: RecordRules,
    tally: Tally,
    on_reject: Callable[[Rejection], None],
) -> Iterator[tuple[str, str, bytes]]:
    """Yield (collection, id, encoded line) for each valid record; report each rejection.

    `on_reject` may raise to stop the run (fail-fast in `push --stream`).
    """
    hints = _HintTracker(tally.hints)
    check = rules.check
    per_collection = tally.per_collection
    for item in items:
        tally.records += 1
        shaped = shape(item, options)
        if isinstance(shaped, Record):
            problems, line = check(shaped)
            if line is not None:
                tally.valid += 1
                per_collection[shaped.collection] += 1
                hints.observe(shaped)
                yield shaped.collection, shaped.id, line
                continue
        else:
            problems = shaped
        tally.rejected += 1
        rejection = Rejection(item.source, item.line, item.index, problems, _raw_record(item))
        if len(tally.first_errors) < FIRST_ERRORS:
            tally.first_errors.append(rejection.as_dict())
        on_reject(rejection)


def _raw_record(item: RawItem) -> Any:
    return item.data if item.error is None else item.text

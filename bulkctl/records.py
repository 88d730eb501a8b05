"""The record model, and the one place that turns a parsed input value into a record.

Readers (`bulkctl.read.sources`) yield `RawItem`s: a parsed value plus where it came from. `shape`
turns one into a `Record` (id, collection, properties) or the `Problem`s that stop it, following
CLI.md: the canonical shape `{id, collection, properties}` carries no other top-level field; a
flat object becomes the properties of its collection, less its id field and `collection`.
Nulls are dropped from properties: under merge semantics "not sent" means "unchanged".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CANONICAL_KEYS = frozenset({"id", "collection", "properties"})


@dataclass(slots=True, frozen=True)
class Problem:
    """One broken rule: which field, a stable rule name for machines, and a fix-it message."""

    field: str | None
    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(slots=True)
class RawItem:
    """A value as a reader produced it, before any rule is applied.

    `data` is the parsed value (usually a dict); when the item could not be parsed at all
    (an NDJSON line that is not JSON) `data` is None, `error` says why and `text` keeps the
    raw text so a rejects file can show it; `error_rule` is the rule it breaks (`parse`, or
    `record.duplicate_key` for valid JSON that repeats a key: `bulkctl.exactjson`). `size` is
    how many input bytes the value took, when the reader knows (it bounds what the value can
    encode to: `bulkctl.fast.lines`). `raw`: the input bytes of a value not yet read exactly
    (`bulkctl.exactjson`), which the chunk that checks it does (`bulkctl.fast.lines`).
    """

    source: str
    line: int
    index: int | None = None
    data: Any = None
    error: str | None = None
    error_field: str | None = None
    text: str | None = None
    size: int | None = None
    error_rule: str = "parse"
    raw: bytes | None = None


@dataclass(slots=True)
class Record:
    """One object bound for the API, with the place in the input it came from.

    `items` is how many input records it stands for (a target may join several rows into one
    record, or split one input record into several, the later pieces counting 0); `raw` is
    what a rejects file shows for it (None: the record itself).
    """

    id: str
    collection: str
    properties: dict[str, Any]
    source: str
    line: int
    index: int | None = None
    items: int = 1
    raw: Any = None


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


def rejected(item: RawItem, problems: list[Problem]) -> Rejection:
    """The rejection of one input item, showing the item as it was read."""
    raw = item.data if item.error is None else item.text
    return Rejection(item.source, item.line, item.index, problems, raw)


@dataclass(slots=True, frozen=True)
class ShapeOptions:
    """How to read a parsed value as a record: the default collection and the id field."""

    collection: str | None = None
    id_field: str = "id"


def location(source: str, line: int, index: int | None) -> str:
    """`rooms.ndjson:12` or `rooms.json:3 [index 2]`: how every report names a place."""
    where = f"{source}:{line}"
    return where if index is None else f"{where} [index {index}]"


def shape(item: RawItem, options: ShapeOptions) -> Record | list[Problem]:
    """Turn a parsed value into a Record, or say every reason it cannot be one."""
    if item.error is not None:
        return [Problem(item.error_field, item.error_rule, item.error)]
    data = item.data
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        return [Problem(None, "record.type", f"a record must be a JSON object, not {kind}")]
    problems: list[Problem] = []
    if "properties" in data:
        id_key = "id"
        unknown = sorted(k for k in data if k not in CANONICAL_KEYS)
        for key in unknown:
            problems.append(
                Problem(
                    key,
                    "record.unknown_field",
                    f"unknown top-level field {key!r}: a record with `properties` may only have "
                    "id, collection and properties; move it into properties",
                )
            )
        raw_props = data["properties"]
        if not isinstance(raw_props, dict):
            problems.append(
                Problem("properties", "properties.type", "properties must be a JSON object")
            )
            raw_props = {}
    else:
        id_key = options.id_field
        raw_props = {k: v for k, v in data.items() if k != id_key and k != "collection"}

    record_id = _shape_id(data.get(id_key), id_key, problems)
    collection = data.get("collection")
    if collection is None:
        collection = options.collection
    if collection is None:
        problems.append(
            Problem(
                "collection",
                "collection.missing",
                "no collection: add a `collection` field or pass --collection NAME",
            )
        )
    elif not isinstance(collection, str):
        problems.append(Problem("collection", "collection.type", "collection must be a string"))
    if problems or record_id is None or not isinstance(collection, str):
        return problems
    properties = {k: v for k, v in raw_props.items() if v is not None}
    return Record(record_id, collection, properties, item.source, item.line, item.index)


def _shape_id(value: Any, id_key: str, problems: list[Problem]) -> str | None:
    if value is None:
        problems.append(
            Problem(
                id_key,
                "id.missing",
                f"no id: the record has no {id_key!r} field (pick another with --id-field)",
            )
        )
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(
            Problem(id_key, "id.type", f"id must be a string or an integer, not {value!r:.40}")
        )
        return None
    return value if isinstance(value, str) else str(value)

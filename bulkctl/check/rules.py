"""The Segment Objects rules (seeds 000 and 001), checked before anything is sent.

One source of truth: the client validates with `SEGMENT_RULES.check` and the sandbox
emulator rejects lines with the same function, so the two can never disagree.

Sizes are read in decimal units (400 KB = 400,000 bytes, 32 KB = 32,000 bytes), the stricter
reading of the seed's "400KB" and "32kb", so nothing we accept can be refused for size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from bulkctl.exactjson import REPEATED_KEY_RULE, RepeatedKeys, exact
from bulkctl.records import Problem, Record

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_COLLECTION = re.compile(r"[a-z_]+")
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ObjectRules:
    """Limits of an Objects-style API; one instance per target that shares these rules."""

    max_id_chars: int = 100
    max_collection_chars: int = 100
    max_value_bytes: int = 32_000  # a value's JSON encoding must be *under* this
    max_line_bytes: int = 400_000  # the whole NDJSON line, UTF-8 bytes

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]:
        """Return the record's problems and, when it has none, its encoded NDJSON line.

        Encoding here (once) lets packing reuse the bytes and measures the line exactly.
        """
        problems: list[Problem] = []
        self._check_id(record.id, problems)
        self._check_collection(record.collection, problems)
        for name, value in record.properties.items():
            self._check_value(name, value, problems)
        if problems:
            return problems, None
        line = orjson.dumps(
            {"id": record.id, "collection": record.collection, "properties": record.properties}
        )
        if len(line) > self.max_line_bytes:
            problems.append(
                Problem(
                    None,
                    "object.too_large",
                    f"the object is {len(line):,} bytes as a JSON line; the limit is "
                    f"{self.max_line_bytes:,}: split it into partial objects with the same id "
                    "(they merge) or drop large properties",
                )
            )
            return problems, None
        return problems, line

    def check_line(self, line: bytes) -> list[Problem]:
        """Check one already-encoded NDJSON line, as the API (and the sandbox) receives it."""
        if len(line) > self.max_line_bytes:
            return [
                Problem(
                    None,
                    "object.too_large",
                    f"line is {len(line):,} bytes; the limit is {self.max_line_bytes:,}",
                )
            ]
        try:
            data = exact(line, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            return [Problem(None, "parse", f"not valid JSON: {exc}")]
        if isinstance(data, RepeatedKeys):
            return [Problem(data.field, REPEATED_KEY_RULE, data.message)]
        if not isinstance(data, dict):
            return [Problem(None, "record.type", "a line must be a JSON object")]
        problems = [
            Problem(key, "record.unknown_field", f"unknown top-level field {key!r}")
            for key in sorted(data)
            if key not in ("id", "collection", "properties")
        ]
        for key in ("id", "collection", "properties"):
            if key not in data:
                problems.append(Problem(key, f"{key}.missing", f"{key} is required"))
        if problems:
            return problems
        if not isinstance(data["id"], str):
            problems.append(Problem("id", "id.type", "id must be a string"))
        if not isinstance(data["collection"], str):
            problems.append(Problem("collection", "collection.type", "must be a string"))
        if not isinstance(data["properties"], dict):
            problems.append(Problem("properties", "properties.type", "must be an object"))
        if problems:
            return problems
        record = Record(data["id"], data["collection"], data["properties"], "", 0)
        return self.check(record)[0]

    def _check_id(self, value: str, problems: list[Problem]) -> None:
        if not value:
            problems.append(Problem("id", "id.empty", "id is empty: every object needs an id"))
        elif len(value) > self.max_id_chars:
            problems.append(
                Problem(
                    "id",
                    "id.too_long",
                    f"id has {len(value)} characters; at most {self.max_id_chars} are allowed",
                )
            )

    def _check_collection(self, value: str, problems: list[Problem]) -> None:
        limit = self.max_collection_chars
        if not value:
            problems.append(Problem("collection", "collection.empty", "collection is empty"))
        elif not _COLLECTION.fullmatch(value):
            problems.append(
                Problem(
                    "collection",
                    "collection.chars",
                    f"collection {value[:100]!r} may only contain lowercase letters and "
                    "underscores (e.g. 'rooms', 'order_items')",
                )
            )
        elif value[0] == "_" or value[-1] == "_":
            problems.append(
                Problem(
                    "collection",
                    "collection.underscore",
                    f"collection {value!r} must not begin or end with an underscore",
                )
            )
        if len(value) > limit:
            problems.append(
                Problem(
                    "collection",
                    "collection.too_long",
                    f"collection has {len(value)} characters; at most {limit} are allowed",
                )
            )

    def _check_value(self, name: str, value: Any, problems: list[Problem]) -> None:
        field = f"properties.{name}"
        if not name:
            problems.append(Problem(field, "property.name_empty", "a property name is empty"))
        kind = type(value)
        if kind is str:
            # A string's JSON encoding is at most 6 bytes a character (\u00XX escapes):
            # only long strings need measuring.
            if len(value) * 6 + 2 >= self.max_value_bytes:
                self._check_size(field, value, problems)
        elif kind is bool:
            return
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                problems.append(
                    Problem(
                        field,
                        "value.int_range",
                        f"integer {_spelled(value)} does not fit in 64 bits (a 64-bit integer "
                        "is at most 9223372036854775807); send it as a string, or as a float "
                        "if it need not be exact",
                    )
                )
        elif kind is float:
            # Any finite double is a JSON number the API takes (seed 000: "a float"). An
            # integer written as such is an int here, whatever its size (`bulkctl.exactjson`).
            if not math.isfinite(value):
                problems.append(Problem(field, "value.not_finite", f"{value} is not a JSON number"))
        elif isinstance(value, list | dict | tuple):
            problems.append(
                Problem(
                    field,
                    "value.type",
                    f"{'a list' if not isinstance(value, dict) else 'an object'} is not allowed: "
                    "values must be strings, numbers or booleans (flatten it, or send it "
                    "as a JSON string)",
                )
            )
        else:
            problems.append(
                Problem(field, "value.type", f"values of type {kind.__name__} are not allowed")
            )

    def _check_size(self, field: str, value: str, problems: list[Problem]) -> None:
        size = len(orjson.dumps(value))
        if size >= self.max_value_bytes:
            problems.append(
                Problem(
                    field,
                    "value.too_large",
                    f"value is {size:,} bytes as JSON; it must be under {self.max_value_bytes:,}",
                )
            )


SEGMENT_RULES = ObjectRules()
_SPELLED_DIGITS = 60


def _spelled(value: int) -> str:
    """An integer as the input wrote it (JSON has no other spelling), shortened if huge."""
    text = str(value)
    if len(text) <= _SPELLED_DIGITS:
        return text
    return f"{text[: _SPELLED_DIGITS - 10]}…{text[-6:]} ({len(text.lstrip('-'))} digits)"


_ID_KEY = b'{"id":'
_COLLECTION_KEY = b',"collection":"'
PROPERTIES_KEY = b',"properties":'


def split_line(line: bytes) -> tuple[bytes, str, bytes] | None:
    """The id (as JSON), collection and properties (as JSON) of a line `ObjectRules.check`
    encoded, found without parsing it; None for a line of any other shape.

    `check` writes `{"id":…,"collection":…,"properties":…}` in that order, and no JSON string
    can hold `,"` (its quotes are escaped), so the first `,"properties":` and the
    `,"collection":"` before it are the keys themselves.
    """
    end = line.find(PROPERTIES_KEY)
    if end < 0 or not line.startswith(_ID_KEY) or line[-1:] != b"}" or line[end - 1 : end] != b'"':
        return None
    at = line.find(_COLLECTION_KEY, 0, end)
    if at < 0:
        return None
    collection = line[at + len(_COLLECTION_KEY) : end - 1]
    if not collection or not collection.replace(b"_", b"").isalpha() or not collection.islower():
        return None  # not a valid collection as written: let the caller parse the line
    return line[len(_ID_KEY) : at], collection.decode("ascii"), line[end + len(PROPERTIES_KEY) : -1]


def is_snake_case(name: str) -> bool:
    """Seed 000 recommends snake_case property names; used for hints, never to reject."""
    return _SNAKE_CASE.fullmatch(name) is not None


def looks_singular(collection: str) -> bool:
    """Seed 000 recommends plural collection names; a cheap guess for a hint."""
    return not collection.endswith("s")

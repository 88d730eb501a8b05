"""Xandr's legacy segment line format: `UID SEP1 SEG (SEP2 SEG)*`, SEG = fields joined by SEP3.

The fields of a SEG block and the separators are the member's configuration (`--seg-fields`,
`--separators`); e.g. with the defaults `SEG_ID,EXPIRATION` and `,;:` a line reads
`12345678900987654321,10000:1440;10001:1440`. Pure functions only: the client checks and
encodes with them, the sandbox emulator parses uploaded files with them, so the two agree.

Rules (seed 003 and the vendor's documentation): SEG_ID an integer (or SEG_CODE a string, never
both); EXPIRATION minutes, an integer ≥ -1 (0 the maximum, -1 removes the user); VALUE an
integer ≤ 2147483647; TIMESTAMP unix seconds; every character Latin-1 (the file is written in
Latin-1); at most 1800 segments a line. Separators are single characters, never one of
`[](){}$\\/|?*+-`, and SEP3 differs from SEP1 and SEP2 (a SEG block must stay readable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulkctl.errors import UsageError
from bulkctl.records import Problem

FIELDS = ("SEG_ID", "SEG_CODE", "EXPIRATION", "VALUE", "TIMESTAMP")
DEFAULT_FIELDS = ("SEG_ID", "EXPIRATION")
DEFAULT_SEPARATORS = (",", ";", ":")
FORBIDDEN_SEPARATORS = frozenset("[](){}$\\/|?*+-")
MAX_SEGMENTS = 1800
VALUE_MAX = 2_147_483_647
VALUE_MIN = -2_147_483_648
INT64_MAX = 2**63 - 1
TIMESTAMP_MAX = 10_000_000_000  # unix seconds before the year 2286; above is milliseconds
# The keys a segment may be given under, in a row (`seg_id`) or in a user's `segments` list.
KEYS = {
    "SEG_ID": ("seg_id", "id"),
    "SEG_CODE": ("seg_code", "code"),
    "EXPIRATION": ("expiration",),
    "VALUE": ("value",),
    "TIMESTAMP": ("timestamp",),
}
DEFAULTS: Mapping[str, int] = {"VALUE": 0}  # Xandr: "use 0 as the value" when there is none
_INT_TEXT = re.compile(r"-?[0-9]+")

Segment = tuple[int | str, ...]  # the values of one SEG block, in the format's field order


@dataclass(frozen=True, slots=True)
class LineFormat:
    """The member's line format: which fields a segment has, in order, and the separators."""

    fields: tuple[str, ...] = DEFAULT_FIELDS
    separators: tuple[str, str, str] = DEFAULT_SEPARATORS

    @classmethod
    def parse(cls, fields: str | None, separators: str | None) -> LineFormat:
        """From `--seg-fields SEG_ID,EXPIRATION` and `--separators ',;:'`; UsageError if wrong."""
        return cls(
            _parse_fields(fields) if fields is not None else DEFAULT_FIELDS,
            _parse_separators(separators) if separators is not None else DEFAULT_SEPARATORS,
        )

    def describe(self) -> str:
        sep1, sep2, sep3 = self.separators
        seg = sep3.join(self.fields)
        return f"UID{sep1}{seg}{sep2}{seg}…"

    def encode(self, uid: str, segments: Sequence[Segment]) -> str:
        """One line (without its newline)."""
        sep1, sep2, sep3 = self.separators
        return uid + sep1 + sep2.join(sep3.join(str(v) for v in seg) for seg in segments)

    def decode(self, line: str) -> tuple[str, list[Segment]] | str:
        """A line as the API reads it: (uid, segments), or why it has an invalid format."""
        sep1, sep2, sep3 = self.separators
        uid, found, rest = line.partition(sep1)
        if not found or not uid:
            return "no separator after the uid" if not found else "the uid is empty"
        segments: list[Segment] = []
        for block in rest.split(sep2):
            values = block.split(sep3)
            if len(values) != len(self.fields):
                return (
                    f"failed with an illegal number of fields: {len(values)} in {block[:40]!r}, "
                    f"the configuration has {len(self.fields)} ({','.join(self.fields)})"
                )
            segment: list[int | str] = []
            for name, text in zip(self.fields, values, strict=True):
                value, problem = field_value(name, text)
                if problem is not None:
                    return f"{name}: {problem}"
                segment.append(value)
            segments.append(tuple(segment))
        return uid, segments


def _parse_fields(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().upper() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise UsageError(
            f"--seg-fields: unknown field {unknown[0]!r}; use SEG_ID or SEG_CODE, then any of "
            "EXPIRATION, VALUE, TIMESTAMP, in your member's order"
        )
    if len(set(names)) != len(names):
        raise UsageError(f"--seg-fields {text!r}: a field is named twice")
    if ("SEG_ID" in names) == ("SEG_CODE" in names):
        raise UsageError(f"--seg-fields {text!r}: give exactly one of SEG_ID and SEG_CODE")
    return names


def _parse_separators(text: str) -> tuple[str, str, str]:
    if len(text) != 3:
        raise UsageError(
            f"--separators {text!r}: give three characters, SEP1 SEP2 SEP3, e.g. ',;:'"
        )
    for char in text:
        if char in FORBIDDEN_SEPARATORS or char.isalnum() or char in "\r\n" or ord(char) > 255:
            raise UsageError(
                f"--separators: {char!r} cannot be a separator: Xandr refuses letters, digits, "
                "line breaks, non-Latin-1 characters and any of [](){}$\\/|?*+-"
            )
    sep1, sep2, sep3 = text[0], text[1], text[2]
    if sep3 in (sep1, sep2):
        raise UsageError(
            f"--separators {text!r}: SEP3 (between a segment's fields) must differ from SEP1 "
            "and SEP2"
        )
    return sep1, sep2, sep3


def field_value(name: str, raw: Any) -> tuple[int | str, str | None]:
    """One field's value as sent, or why it is not valid (an integer may be given as text)."""
    if name == "SEG_CODE":
        if not isinstance(raw, str) or not raw:
            return "", "a segment code must be a non-empty string"
        return raw, None
    number = _integer(raw)
    if number is None:
        return 0, f"must be an integer, not {raw!r:.40}"
    if name == "SEG_ID" and not 1 <= number <= INT64_MAX:
        return number, f"a segment id is a positive integer, not {number}"
    if name == "EXPIRATION" and number < -1:
        return number, f"{number} is not minutes: use ≥ 1, 0 (the maximum) or -1 (remove)"
    if name == "VALUE" and not VALUE_MIN <= number <= VALUE_MAX:
        return number, f"{number} is out of range: at most {VALUE_MAX:,}"
    if name == "TIMESTAMP":
        if number < 0:
            return number, f"{number} is not a unix time in seconds"
        if number >= TIMESTAMP_MAX:
            return number, f"{number} looks like milliseconds: give unix seconds"
    return number, None


def _integer(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip()):
        return int(raw.strip())
    return None


def text_problem(field: str, text: str, separators: Sequence[str]) -> Problem | None:
    """Latin-1 only, no line break, no separator: what a uid or a code must hold to."""
    for char in text:
        if ord(char) > 255:
            return Problem(
                field,
                "text.latin1",
                f"{char!r} (U+{ord(char):04X}) is not a Latin-1 character; the file is "
                "written in Latin-1",
            )
        if char in "\r\n":
            return Problem(field, "text.line_break", "a line break is not allowed")
        if char in separators:
            return Problem(
                field, "text.separator", f"{char!r} is one of the separators; choose others"
            )
    return None


def segment_of(
    data: Mapping[str, Any], fmt: LineFormat, prefix: str, *, row: bool
) -> tuple[Segment | None, list[Problem]]:
    """The SEG block of one row (`seg_id`, `expiration`, ...) or one item of `segments`."""
    problems: list[Problem] = []
    allowed = {key for name in fmt.fields for key in _keys(name, row)}
    for key in data:
        if key not in allowed and (not row or key != "uid"):
            problems.append(_unexpected(key, fmt, prefix, row))
    values: list[int | str] = []
    for name in fmt.fields:
        given = next((k for k in _keys(name, row) if k in data), None)
        if given is None:
            if name in DEFAULTS:
                values.append(DEFAULTS[name])
                continue
            problems.append(
                Problem(
                    f"{prefix}{_keys(name, row)[0]}",
                    "segment.missing",
                    f"no {_keys(name, row)[0]}: --seg-fields says every segment has "
                    f"{','.join(fmt.fields)}",
                )
            )
            continue
        value, problem = field_value(name, data[given])
        if problem is None and isinstance(value, str):
            found = text_problem(f"{prefix}{given}", value, fmt.separators)
            if found is not None:
                problem = found.message
        if problem is not None:
            problems.append(Problem(f"{prefix}{given}", f"segment.{name.lower()}", problem))
        values.append(value)
    return (None if problems else tuple(values)), problems


def _keys(name: str, row: bool) -> tuple[str, ...]:
    keys = KEYS[name]
    return keys[:1] if row else keys


def _unexpected(key: str, fmt: LineFormat, prefix: str, row: bool) -> Problem:
    for name, keys in KEYS.items():
        if key in keys:
            return Problem(
                f"{prefix}{key}",
                "segment.field_not_configured",
                f"{key} is given but --seg-fields ({','.join(fmt.fields)}) has no {name}: "
                "add it as your member is configured, or leave the field out",
            )
    what = "a row has uid, seg_id or seg_code and" if row else "a segment has"
    return Problem(
        f"{prefix}{key}",
        "segment.unknown_field",
        f"unknown field {key!r}: {what} expiration, value, timestamp",
    )


def uid_of(data: Mapping[str, Any], fmt: LineFormat) -> tuple[str | None, list[Problem]]:
    """The user id, as text: present, a string or an integer, Latin-1, no separator."""
    raw = data.get("uid")
    if raw is None or raw == "":
        return None, [Problem("uid", "uid.missing", "no uid: every line starts with a user id")]
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None, [
            Problem("uid", "uid.type", f"uid must be a string or an integer: {raw!r:.40}")
        ]
    uid = raw if isinstance(raw, str) else str(raw)
    problem = text_problem("uid", uid, fmt.separators)
    return (None, [problem]) if problem is not None else (uid, [])

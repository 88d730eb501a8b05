"""CSV and TSV rows as records: header checks, types, and exact line numbers.

Lines are split and decoded here (one physical line at a time) rather than by a TextIOWrapper,
so a bad byte is reported on its own line, not on the line where an 8 KiB decode chunk began,
and a runaway line is refused before it is held whole. The csv module then parses the decoded
lines with `strict=True`, so an unterminated quote stops the run instead of swallowing the file.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bulkctl.errors import InputError, UsageError
from bulkctl.read.csv_types import (
    DECIMAL_CELL,
    EXPONENT_CELL,
    INT64_MAX,
    INT64_MIN,
    INT_CELL,
    KINDS,
    inferred_columns,
)
from bulkctl.read.json_array import BOM, SLACK, preview
from bulkctl.records import RawItem

TYPE_NAMES = KINDS
_TYPED_INT = re.compile(r"[+-]?[0-9]+")
_TYPED_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})

Converter = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class CsvSettings:
    """How to read one CSV/TSV input; built by `bulkctl.read.sources` from its ReadOptions."""

    delimiter: str = ","
    encoding: str = "utf-8"
    id_field: str = "id"
    types: Mapping[str, str] = field(default_factory=dict)
    infer: bool = True
    limit: int = 400_000
    kinds: Mapping[str, str] | None = None  # inferred columns' types, once decided
    need_id: bool = False  # the header must have the id column (object targets)
    need_collection: bool = False  # ... and a `collection` column (no --collection given)


def check_encoding(encoding: str) -> None:
    """Refuse an unknown encoding, or one whose line breaks and commas are not ASCII bytes."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UsageError(
            f"unknown encoding {encoding!r}: give a Python codec name such as utf-8, latin-1 "
            "or cp1252"
        ) from None
    if '\n,\t"a'.encode(encoding, "replace") != b'\n,\t"a':
        raise UsageError(
            f"encoding {encoding!r} is not supported: convert the file to UTF-8 first "
            f"(e.g. iconv -f {encoding} -t UTF-8)"
        )


def read_csv(
    readline: Callable[[int], bytes], name: str, settings: CsvSettings
) -> Iterator[RawItem]:
    """Yield one RawItem a row; the header is the first non-blank row."""
    old_limit = csv.field_size_limit(settings.limit)
    try:
        lines = _decoded_lines(readline, name, settings)
        reader = csv.reader(lines, delimiter=settings.delimiter, strict=True)
        yield from _rows(reader, name, settings)
    finally:
        csv.field_size_limit(old_limit)


def _decoded_lines(
    readline: Callable[[int], bytes], name: str, settings: CsvSettings, first_line: int = 1
) -> Iterator[str]:
    codec = codecs.lookup(settings.encoding).name
    utf8 = codec in ("utf-8", "utf-8-sig")
    encoding = "utf-8" if utf8 else settings.encoding
    cap = settings.limit + SLACK
    for lineno, raw in enumerate(iter(partial(readline, cap + 1), b""), start=first_line):
        if len(raw) > cap and raw[-1] != 10:
            raise InputError(
                f"{name}:{lineno}: the line is longer than {cap:,} bytes; a record may be at "
                f"most {settings.limit:,} bytes: check that the file really is "
                f"{'TSV' if settings.delimiter == chr(9) else 'CSV'}"
            )
        if lineno == 1 and utf8 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as exc:
            label, todo = (
                ("UTF-8", "pass --encoding latin-1 if it is Latin-1")
                if utf8
                else (encoding, "pass the file's real encoding with --encoding")
            )
            raise InputError(
                f"{name}:{lineno}: not valid {label} at byte {exc.start} of the line; {todo}"
            ) from None


def _rows(reader: Any, name: str, settings: CsvSettings) -> Iterator[RawItem]:
    header: list[str] | None = None
    converters: list[Converter | None] = []
    width = 0
    while True:
        start = reader.line_num + 1
        try:
            row: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(name, start, reader.line_num, exc, settings) from None
        if not row:
            continue
        if header is None:
            header = _check_header(row, name, start, settings)
            converters = _converters(header, settings)
            width = len(header)
            continue
        if len(row) != width:
            yield RawItem(
                name,
                start,
                None,
                None,
                row_width_error(len(row), width, settings.delimiter),
                None,
                preview(settings.delimiter.join(row).encode()),
            )
            continue
        yield _record(row, header, converters, name, start, settings)


def row_width_error(cells: int, width: int, delimiter: str) -> str:
    """Why a row of the wrong width is refused, and the usual fixes."""
    shown = "TAB" if delimiter == "\t" else repr(delimiter)
    if cells > width:
        fix = f"put a cell that holds the delimiter {shown} in double quotes"
    else:
        fix = f"give every row {width} cells (an empty cell is nothing between two delimiters)"
    return (
        f"row has {cells} cells but the header has {width}: {fix}, or pass --delimiter if "
        f"the file is not {shown}-separated"
    )


def _record(
    row: list[str],
    header: list[str],
    converters: list[Converter | None],
    name: str,
    line: int,
    settings: CsvSettings,
) -> RawItem:
    data: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for column, cell, convert in zip(header, row, converters, strict=True):
        if not cell:
            continue
        if convert is None:
            data[column] = cell
            continue
        try:
            data[column] = convert(cell)
        except ValueError as exc:
            kind = settings.types.get(column)
            typed = f" (--type {column}={kind})" if kind else ""
            errors.append((column, f"{cell[:60]!r} {exc}{typed}"))
    if settings.need_id and settings.id_field not in data and not errors:
        number = header.index(settings.id_field) + 1
        errors.append(
            (
                settings.id_field,
                f"the id cell (column {number}, {settings.id_field!r}) is empty; every row "
                "needs an id",
            )
        )
    if not errors:
        return RawItem(name, line, None, data)
    column = errors[0][0]
    if column == settings.id_field or column == "collection":
        error_field = column
    else:
        error_field = f"properties.{column}"
    text = preview(settings.delimiter.join(row).encode())
    return RawItem(name, line, None, None, "; ".join(e for _, e in errors), error_field, text)


def _check_header(row: list[str], name: str, line: int, settings: CsvSettings) -> list[str]:
    seen: dict[str, int] = {}
    for number, column in enumerate(row, start=1):
        if not column.strip():
            raise InputError(
                f"{name}:{line}: column {number} of the header has no name; give every "
                "column a name in the header row"
            )
        if column in seen:
            raise InputError(
                f"{name}:{line}: the header names column {column!r} twice (columns "
                f"{seen[column]} and {number}); rename one of them"
            )
        seen[column] = number
    columns = ", ".join(row)
    if settings.need_id and settings.id_field not in seen:
        raise UsageError(
            f"{name}:{line}: the header has no {settings.id_field!r} column for the object "
            f"ids (its columns: {columns}); name the id column with --id-field COLUMN"
        )
    if settings.need_collection and "collection" not in seen:
        raise UsageError(
            f"{name}:{line}: no collection for the rows: give one with -c/--collection NAME, "
            f"or add a 'collection' column (the header's columns: {columns})"
        )
    unknown = [column for column in settings.types if column not in seen]
    if unknown:
        raise UsageError(
            f"{name}: --type names {', '.join(repr(c) for c in unknown)}, which the header "
            f"does not have; its columns are: {', '.join(row)}"
        )
    return row


def _converters(header: list[str], settings: CsvSettings) -> list[Converter | None]:
    """One converter a column: `--type`'s (lenient, refusing what is not one), the decided
    type of an inferred column (`settings.kinds`, see `bulkctl.read.csv_types`), else none (str)."""
    typed: dict[str, Converter | None] = {
        "str": None,
        "int": _to_int,
        "float": _to_float,
        "bool": _to_bool,
    }
    inferred = inferred_columns(header, settings.id_field, settings.types, settings.infer)
    if any(inferred) and settings.kinds is None:
        raise ValueError("the column types of an inferred CSV are decided first (read.csv_types)")
    kinds = settings.kinds or {}
    converters: list[Converter | None] = []
    for column, chosen in zip(header, inferred, strict=True):
        if column in settings.types:
            converters.append(typed[settings.types[column]])
        elif chosen:
            converters.append(_DECIDED[kinds.get(column, "str")])
        else:
            converters.append(None)
    return converters


def _as_int(cell: str) -> int:
    """A cell of an `int` column (every value was a canonical int in the first pass)."""
    if not INT_CELL.fullmatch(cell) or not INT64_MIN <= (number := int(cell)) <= INT64_MAX:
        raise ValueError(_CHANGED.format("int"))
    return number


def _as_float(cell: str) -> float:
    """A cell of a `float` column: a canonical int, decimal, or (all of them) exponent form."""
    if not (DECIMAL_CELL.fullmatch(cell) or EXPONENT_CELL.fullmatch(cell)):
        raise ValueError(_CHANGED.format("float"))
    real = float(cell)
    if not math.isfinite(real):
        raise ValueError(_CHANGED.format("float"))
    return real


def _as_bool(cell: str) -> bool:
    if cell == "true":
        return True
    if cell == "false":
        return False
    raise ValueError(_CHANGED.format("bool"))


# A value the first pass did not see (the file changed between the passes).
_CHANGED = (
    "is not a canonical {0}, though every value of the column was one in the first pass: "
    "did the file change while it was read?"
)
_DECIDED: dict[str, Converter | None] = {
    "str": None,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
}


def _to_int(cell: str) -> int:
    text = cell.strip()
    if not _TYPED_INT.fullmatch(text):
        raise ValueError("is not an int")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("is not an int in the signed 64-bit range")
    return number


def _to_float(cell: str) -> float:
    text = cell.strip()
    if not _TYPED_FLOAT.fullmatch(text):
        raise ValueError("is not a float")
    real = float(text)
    if not math.isfinite(real):
        raise ValueError("is not a finite float")
    return real


def _to_bool(cell: str) -> bool:
    text = cell.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("is not a bool (true/false, yes/no, 1/0)")


def _csv_error(
    name: str, start: int, line: int, exc: csv.Error, settings: CsvSettings
) -> InputError:
    reason = str(exc)
    limit = settings.limit
    kind = "TSV" if settings.delimiter == "\t" else "CSV"
    if "field larger than field limit" in reason:
        return InputError(
            f"{name}:{line}: a field of the row starting on line {start} is longer than "
            f"{limit:,} bytes; a record may be at most {limit:,} bytes (an unclosed quote "
            "also makes the rest of the file one field: check the quoting)"
        )
    if "unexpected end of data" in reason:
        return InputError(
            f"{name}:{start}: a quoted field that starts in this row is never closed (the file "
            'ends inside it); close the quote, and write a quote inside a quoted field as ""'
        )
    where = "" if line == start else f" (in the row starting on line {start})"
    return InputError(
        f"{name}:{line}: not valid {kind}: {reason}{where}; check the quoting: a quoted field "
        'must end right before a delimiter, and a quote inside one is written as ""'
    )

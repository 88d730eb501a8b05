"""How the inputs of a run are read: the options every reader takes, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bulkctl.errors import UsageError

FORMATS = ("auto", "ndjson", "json", "csv", "tsv")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read every input of a run; the CLI builds it from its options."""

    format: str = "auto"  # auto | ndjson | json | csv | tsv
    id_field: str = "id"  # CSV: never type-inferred (ids stay strings)
    delimiter: str | None = None  # CSV/TSV override (default "," / "\t")
    encoding: str = "utf-8"  # CSV/TSV; "utf-8" strips a BOM
    types: Mapping[str, str] = field(default_factory=dict)  # column -> str|int|float|bool
    infer: bool = True  # CSV: each column's type decided from its values; False keeps strings
    need_id: bool = False  # CSV: the header must have the id column (object targets)
    need_collection: bool = False  # CSV: ... and a `collection` one (no --collection)
    max_record_bytes: int = 400_000  # anything over this + SLACK is refused, never held whole


def check_options(options: ReadOptions) -> None:
    # Imported here: the CLI takes FORMATS from this module, and `--help` loads no parser.
    from bulkctl.read.csv_rows import TYPE_NAMES, check_encoding

    if options.format not in FORMATS:
        raise UsageError(f"unknown format {options.format!r}: use one of {', '.join(FORMATS)}")
    if options.delimiter is not None and len(options.delimiter) != 1:
        raise UsageError(f"the delimiter must be one character, not {options.delimiter!r}")
    if options.max_record_bytes <= 0:
        raise UsageError("the largest record size must be a positive number of bytes")
    for column, kind in options.types.items():
        if kind not in TYPE_NAMES:
            raise UsageError(
                f"--type {column}={kind}: unknown type {kind!r}; use one of {', '.join(TYPE_NAMES)}"
            )
    check_encoding(options.encoding)

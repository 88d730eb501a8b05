"""CSV chunks through the C fast path: rows become the lines the rules would send.

`bulkctl._native.csv_lines` writes each row of a plain chunk (one line a row, no `--type`,
UTF-8, a default collection, no `collection` or `properties` column) as the canonical line
`read.csv_rows` + the rules would encode, converting each column as its decided type says
(`bulkctl.read.csv_types`: the same `kinds` read.csv_rows converts with); the NDJSON
scanner then takes those lines exactly as it takes a file's. Only when it takes every line
is the chunk done here; otherwise (anything unusual, any row the rules might refuse) the
chunk is read again by the Python path, which decides everything: this can only be faster.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

import orjson

from bulkctl.native import native

if TYPE_CHECKING:
    from bulkctl.fast.state import ChunkResult, WorkContext
    from bulkctl.read.csv_chunks import CsvTask

_RESERVED = ("collection", "properties")  # columns with a meaning of their own
_CODES = {"str": ord("s"), "int": ord("i"), "float": ord("f"), "bool": ord("b")}


def native_csv_chunk(ctx: WorkContext, task: CsvTask) -> ChunkResult | None:
    """The chunk's result when the C path takes every row, else None (Python reads it)."""
    module = native()
    settings = task.settings
    header = task.header
    collection = ctx.shape.collection
    if (
        module is None
        or collection is None
        or settings.types
        or settings.id_field != ctx.shape.id_field
        or settings.id_field not in header
        or any(column in header for column in _RESERVED)
        or codecs.lookup(settings.encoding).name not in ("utf-8", "utf-8-sig")
        or len(settings.delimiter) != 1
        or not settings.delimiter.isascii()  # (the C code compares single bytes)
        or settings.delimiter in '"\r\n'
    ):
        return None
    from bulkctl.fast.lines import new_scanner, take_scanned
    from bulkctl.fast.state import ChunkState

    kinds = settings.kinds or {}
    codes = bytes(_CODES[kinds.get(name, "str")] for name in header)
    state = ChunkState(ctx)
    lines = module.csv_lines(
        task.data,
        ord(settings.delimiter),
        [orjson.dumps(name) for name in header],
        header.index(settings.id_field),
        collection.encode(),
        codes,
        min(state.small, settings.limit),
    )
    if lines is None:
        return None
    stop, _ = take_scanned(state, new_scanner(state, module), lines, 0)
    return state.finish() if stop == len(lines) else None

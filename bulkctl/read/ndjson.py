"""NDJSON read line by line in this process: one item a non-blank line, the exact way.

The chunked readers (`bulkctl.read.chunks`, checked in `bulkctl.fast.lines`) make the same
items from the same lines; `bad_ndjson_line` is the one answer both give to a line that is
blank, starts with a BOM, or is not JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import orjson

from bulkctl.exactjson import exact_item
from bulkctl.read.decoded import CHUNK, NEWLINE
from bulkctl.read.json_array import BOM, SLACK, parse_error, preview, too_long
from bulkctl.records import RawItem


def read_ndjson(readline: Callable[[int], bytes], name: str, limit: int) -> Iterator[RawItem]:
    """One item a non-blank line; kept lean, since this loop bounds validation speed."""
    loads = orjson.loads
    cap = limit + SLACK
    lines = iter(partial(readline, cap + 1), b"")
    lineno = 0
    for raw in lines:
        lineno += 1
        if len(raw) > cap and raw[-1] != NEWLINE:
            _skip_line(readline)
            error = too_long("line", cap, limit)
            yield RawItem(name, lineno, None, None, error, None, preview(raw))
            continue
        try:
            value = loads(raw)
        except orjson.JSONDecodeError:
            item = bad_ndjson_line(raw, name, lineno)
            if item is not None:
                yield item
        else:
            yield exact_item(name, lineno, None, raw, value)


def bad_ndjson_line(raw: bytes, name: str, lineno: int) -> RawItem | None:
    """The slow path: a blank line (None), a first line with a BOM, or a broken line."""
    if lineno == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
        try:
            return exact_item(name, lineno, None, raw, orjson.loads(raw))
        except orjson.JSONDecodeError:
            pass
    if not raw.strip():
        return None
    return RawItem(name, lineno, None, None, parse_error(raw), None, preview(raw))


def _skip_line(readline: Callable[[int], bytes]) -> None:
    while chunk := readline(CHUNK):
        if chunk[-1] == NEWLINE:
            return

"""Cheap looks at a CSV chunk before its rows are converted: rows split without the csv
module where that cannot differ, a bound on line length, whether a cell holds a control byte.

The csv module reads lines as well from a list as from a StringIO (which would copy the text
at 4 bytes a character first), and the same rows as long as no row goes on to another line,
which is checked. Without a quote, a carriage return or a line break, and with every field
under the field size limit, the csv module's rows (default dialect, `strict=True`, any
one-character delimiter) are exactly `line.split(delimiter)`: it only ever ends a field at
the delimiter; then the lines are split, about a third faster.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkctl.check.rules import ObjectRules

_NOT_CONTROL = bytes(range(0x20, 0x100)) + b"\n"
_PLAIN_CODECS = frozenset({"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252"})


def names_size(header: Sequence[str]) -> int:
    """A bound on what the property names add to a line (with their quotes and colon)."""
    return sum(map(len, header)) + 8 * len(header)


def single_rows(text: str, delimiter: str, short: bool) -> list[list[str]] | None:
    """Every line of `text` (which ends after its last line, or with a line break) as the one
    row the csv module reads from it; None if a line is blank, or not one row, or the csv
    module raises. `short`: no line reaches the field size limit (which the csv module
    enforces). Without a quote or a carriage return in `text`, the lines are split."""
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    if "" in lines:
        return None  # a blank line: the csv module reads no row from it
    if short and '"' not in text and "\r" not in text and delimiter not in '"\r\n':
        return list(map(str.split, lines, repeat(delimiter)))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        rows = list(reader)
    except csv.Error:
        return None
    if reader.line_num != len(lines) or len(rows) != len(lines):
        return None  # a quoted field went on to another line
    return rows


def longest_line(data: bytes, rules: ObjectRules, header: Sequence[str]) -> int:
    """A bound on the length of the longest line of `data` (a cell is no longer than its line,
    a character no shorter than a byte): cheap when every line is short enough for
    `fast.csv_columns.Block.of` (then that limit), exact otherwise. A line of 2s - 1 bytes or more
    would hold one of the windows [ks, ks + s) whole, so a line break in each bounds them."""
    allowed = min(
        (rules.max_value_bytes - 3) // 6,
        ((rules.max_line_bytes - 257) // 6 - names_size(header)) // max(1, len(header)),
    )
    step = (allowed + 2) // 2
    if step > 0 and all(
        data.find(b"\n", at, at + step) >= 0 for at in range(0, len(data) - step + 1, step)
    ):
        return allowed
    return max(map(len, data.split(b"\n")))


def no_controls(data: bytes, codec: str) -> bool:
    """Whether no cell of a chunk (in `codec`) holds a character below U+0020 (each such
    character being its one byte below 0x20)."""
    return codec in _PLAIN_CODECS and not data.translate(None, _NOT_CONTROL)

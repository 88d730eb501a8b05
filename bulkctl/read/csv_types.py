"""CSV column types, decided per column from every value (the one definition of the rule).

A cell guessed on its own made one column mixed (`zip`: numbers, and `"00983"` strings), so a
first pass reads every value of a column and decides the column's type; the second pass
converts every value of it alike. A column is

- `int` when every non-empty value is an integer in canonical spelling: `0` or
  `-?[1-9][0-9]*`, within the signed 64-bit range (no `+`, leading zeros, spaces, `-0`);
- `float` when every non-empty value is such an integer or a canonical decimal
  `-?(0|[1-9][0-9]*).[0-9]+` and at least one has the point; or when every value has an
  exponent, `-?(0|[1-9][0-9]*)(.[0-9]+)?[eE][+-]?[0-9]+` (an exponent anywhere else makes
  the column text: `50454e32` among hex ids is an id, not 5.0454e+32); every value finite;
- `bool` when every non-empty value is `true` or `false` (lowercase);
- `str` otherwise, and when it has no value at all.

The id column, `collection`, and columns named by `--type` are not inferred; `--no-infer`
infers nothing. The pass gives each column a byte of flags (`cell_flags`, `column_flags`;
the C `csv_kinds` computes the same bits), chunk results are merged with `merge`, and
`decide` turns the merged flags into the types the converters use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

INT = 1  # every value is a canonical int within 64 bits
DECIMAL = 2  # every value is a canonical int or decimal (finite)
EXPONENT = 4  # every value has an exponent (finite)
BOOL = 8  # every value is true or false
SOME = 16  # the column has a non-empty value (merged with OR; the others with AND)
ALL = INT | DECIMAL | EXPONENT | BOOL  # the flags of a column with no value yet

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
KINDS = ("str", "int", "float", "bool")

_INT = r"(?:0|-?[1-9][0-9]*)"
_DEC = r"-?(?:0|[1-9][0-9]*)\.[0-9]+"
_EXP = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][+-]?[0-9]+"
INT_CELL = re.compile(_INT)
DECIMAL_CELL = re.compile(rf"{_INT}|{_DEC}")
EXPONENT_CELL = re.compile(_EXP)
_INTS = re.compile(rf"(?:{_INT}\n)*{_INT}")
_DECIMALS = re.compile(rf"(?:(?:{_DEC}|{_INT})\n)*(?:{_DEC}|{_INT})")
_EXPONENTS = re.compile(rf"(?:{_EXP}\n)*{_EXP}")
_BOOLS = frozenset({"true", "false"})
_SAFE_DIGITS = 18  # an int of at most 18 digits is within 64 bits


def cell_flags(cell: str) -> int:
    """The flags of one non-empty cell (the reference the column-wise code is tested by)."""
    flags = SOME
    if INT_CELL.fullmatch(cell) and INT64_MIN <= int(cell) <= INT64_MAX:
        flags |= INT | DECIMAL
    elif DECIMAL_CELL.fullmatch(cell) and "." in cell and math.isfinite(float(cell)):
        flags |= DECIMAL
    if EXPONENT_CELL.fullmatch(cell) and math.isfinite(float(cell)):
        flags |= EXPONENT
    if cell in _BOOLS:
        flags |= BOOL
    return flags


def column_flags(cells: Sequence[str]) -> int:
    """The flags of a column's cells (empty cells count for nothing), a column at a time."""
    filled = [cell for cell in cells if cell]
    if not filled:
        return ALL
    flags = SOME
    first = filled[0]
    if first[0] in "-0123456789":
        joined = "\n".join(filled)
        longest = max(map(len, filled))
        if _INTS.fullmatch(joined):
            if longest <= _SAFE_DIGITS or all(_in_range(cell) for cell in filled):
                flags |= INT | DECIMAL
        elif _DECIMALS.fullmatch(joined) and (
            longest <= _SAFE_DIGITS or all(cell_flags(cell) & DECIMAL for cell in filled)
        ):
            flags |= DECIMAL
        if _EXPONENTS.fullmatch(joined) and all(map(math.isfinite, map(float, filled))):
            flags |= EXPONENT
    elif first in _BOOLS and _BOOLS.issuperset(filled):
        flags |= BOOL
    return flags


def _in_range(cell: str) -> bool:
    return len(cell) <= _SAFE_DIGITS or INT64_MIN <= int(cell) <= INT64_MAX


def merge(flags: bytes | None, more: bytes) -> bytes:
    """Two parts' flags as one (AND for each property, OR for SOME)."""
    if flags is None:
        return more
    return bytes((a & b & ALL) | ((a | b) & SOME) for a, b in zip(flags, more, strict=True))


def kind_of(flags: int) -> str:
    """The type a column's merged flags give it."""
    if not flags & SOME:
        return "str"
    if flags & INT:
        return "int"
    if flags & (DECIMAL | EXPONENT):
        return "float"
    if flags & BOOL:
        return "bool"
    return "str"


def inferred_columns(
    header: Sequence[str], id_field: str, types: Mapping[str, str], infer: bool
) -> list[bool]:
    """Which columns the pass decides: not the id, `collection`, or a `--type` column."""
    return [
        infer and name != id_field and name != "collection" and name not in types for name in header
    ]


def decide(header: Sequence[str], flags: bytes | None, inferred: Iterable[bool]) -> dict[str, str]:
    """Each inferred column's type from its merged flags (no flags: no rows, all `str`)."""
    kinds: dict[str, str] = {}
    for at, (name, chosen) in enumerate(zip(header, inferred, strict=True)):
        if chosen:
            kinds[name] = "str" if flags is None else kind_of(flags[at])
    return kinds


def describe(
    header: Sequence[str], kinds: Mapping[str, str], id_field: str, types: Mapping[str, str]
) -> str:
    """The `-v` line: every column and its type, and why where it is not inferred."""
    parts = []
    for name in header:
        if name in types:
            parts.append(f"{name}={types[name]} (--type)")
        elif name in kinds:
            parts.append(f"{name}={kinds[name]}")
        elif name == id_field:
            parts.append(f"{name}=str (the id)")
        elif name == "collection":
            parts.append(f"{name}=str (the collection)")
        else:
            parts.append(f"{name}=str (--no-infer)")
    return ", ".join(parts)

"""Byte sizes as users write them: `512MB` is 10^6-based, `512MiB` 2^20-based."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Parse `64MB`, `1.5GiB` or `1000` into bytes; raise ValueError with the accepted forms."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size: write a number with an optional unit, "
            "e.g. 64MB (10^6 bytes a MB) or 64MiB (2^20 bytes a MiB)"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(count: float) -> str:
    """Human size with decimal units, matching how sizes are written on the command line."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - loop always returns


def counted(count: int, noun: str) -> str:
    """`1 request`, `2 requests`: a count with its noun, in the plural unless it is one."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"

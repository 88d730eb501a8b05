"""gzip members for parts: the user's level (0-9, as gzip counts) mapped onto ISA-L's levels.

A part is a concatenation of complete gzip members (RFC 1952 allows it; every gzip reader
decodes them as one stream). Each member is compressed on its own, so members can be made in
any thread or process and a part's bytes still depend only on its lines and the level.

ISA-L (python-isal) compresses 5-10x faster than zlib and releases the GIL. It has levels
0-3 only, and its 0 still compresses, so the mapping is explicit:

    level 0     no compression (stored blocks, through zlib: nothing to gain from ISA-L)
    level 1     ISA-L 0  (fastest, least ratio)
    levels 2-3  ISA-L 1
    levels 4-6  ISA-L 2  (the default, 6: about zlib 6's speed class ratio, 10x its speed)
    levels 7-9  ISA-L 3  (best ratio, half ISA-L 2's speed)

The gzip header ISA-L writes has mtime 0, no file name and no flags, so the bytes never depend
on the clock.
"""

from __future__ import annotations

import zlib

from isal import isal_zlib

GZIP_WBITS = 31  # gzip framing
_ISAL_LEVEL = (None, 0, 1, 1, 2, 2, 2, 3, 3, 3)  # index: our level; None: stored via zlib


def check_level(level: int) -> int:
    """`level` when it is 0 to 9; a ValueError otherwise."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise ValueError(f"compression level must be 0 to 9, not {level!r}")
    return level


def isal_level(level: int) -> int | None:
    """The ISA-L level our level maps to (None: stored, no compression)."""
    return _ISAL_LEVEL[check_level(level)]


def gzip_member(data: bytes | bytearray | memoryview, level: int) -> bytes:
    """One complete gzip member holding `data`, compressed at our `level` (0-9)."""
    mapped = _ISAL_LEVEL[level]
    if mapped is None:
        return zlib.compress(data, 0, wbits=GZIP_WBITS)
    return isal_zlib.compress(data, mapped, wbits=GZIP_WBITS)


def gunzip(data: bytes) -> bytes:
    """Decode a concatenation of gzip members (what a part, or a piece of one, holds)."""
    out: list[bytes] = []
    while data:
        inflater = isal_zlib.decompressobj(GZIP_WBITS)
        out.append(inflater.decompress(data))
        out.append(inflater.flush())
        if not inflater.eof:
            raise ValueError("truncated gzip member")
        data = inflater.unused_data
    return b"".join(out)

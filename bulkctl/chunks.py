"""Inputs cut into chunks: the units of work that worker processes take, in input order.

A chunk's boundaries depend only on the input's bytes, never on how reads or pipes deliver
them nor on how many workers there are: an NDJSON chunk ends with the line that holds its
byte `CHUNK_BYTES - 1` (or at the end of the input). Since lane members are compressed a
chunk at a time, that is what keeps parts byte-identical whatever the worker count.

Memory stays bounded: a chunk is at most `CHUNK_BYTES` plus one line, and a line longer than
the record limit (plus slack) is never held whole: it becomes a `too long` item, as
`bulkctl.sources.read_ndjson` would make it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bulkctl.jsonsplit import PREVIEW_CHARS, SLACK, preview, too_long
from bulkctl.records import RawItem

CHUNK_BYTES = 1 << 20
_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class LinesTask:
    """A newline-aligned piece of NDJSON from one source (`restart`: its first piece).

    Its lines are numbered from 1 where it starts: the main process, which does not count
    lines, adds the lines of the source's earlier pieces (`relative`).
    """

    source: str
    data: bytes
    restart: bool = False
    relative: bool = True


@dataclass(frozen=True, slots=True)
class ItemsTask:
    """Items the main process already read (each with its size in input bytes).

    `relative`: numbered like a LinesTask's lines (a line over the limit between two).
    """

    items: list[tuple[RawItem, int]]
    restart: bool = False
    relative: bool = False


def ndjson_tasks(
    read: Callable[[int], bytes], name: str, limit: int, chunk_bytes: int | None = None
) -> Iterator[LinesTask | ItemsTask]:
    """The NDJSON read with `read(n)` as chunks; lines over the limit become error items.

    A chunk ends with the line that holds its byte `chunk_bytes - 1`; when that line is
    longer than the limit (plus slack) it is not kept but becomes an error item of its own.
    Both depend on the bytes alone, never on how reads deliver them.
    """
    if chunk_bytes is None:
        chunk_bytes = CHUNK_BYTES
    cap = limit + SLACK
    mark = chunk_bytes - 1
    buf = bytearray()
    eof = False
    restart = True
    while True:
        if len(buf) <= mark and not eof:
            eof = not _fill(read, buf)
            continue
        if len(buf) <= mark:  # the input's last chunk
            if buf:
                yield LinesTask(name, bytes(buf), restart)
            return
        start = buf.rfind(b"\n", 0, mark) + 1  # the line that holds byte `mark`
        end = buf.find(b"\n", mark)
        while end < 0 and len(buf) - start <= cap and not eof:
            searched = len(buf)
            eof = not _fill(read, buf)
            end = buf.find(b"\n", searched)
        if end < 0 and len(buf) - start <= cap:  # the input ends inside that line
            yield LinesTask(name, bytes(buf), restart)
            return
        if end >= 0 and end - start <= cap:
            data = bytes(buf[: end + 1])
            del buf[: end + 1]
            yield LinesTask(name, data, restart)
            restart = False
            continue
        # That line is longer than any record may be: never keep it whole.
        if start:
            yield LinesTask(name, bytes(buf[:start]), restart)
            restart = False
        head = bytes(buf[start : start + PREVIEW_CHARS * 4])
        error = too_long("line", cap, limit)
        item = RawItem(name, 1, None, None, error, None, preview(head))
        yield ItemsTask([(item, 0)], restart, relative=True)
        restart = False
        found = _skip_line(read, buf, start)
        if found is None:
            return
        del buf[:found]


def _fill(read: Callable[[int], bytes], buf: bytearray) -> bool:
    """Append the next read to buf; False at the end of the input."""
    more = read(_READ)
    buf += more
    return bool(more)


def _skip_line(read: Callable[[int], bytes], buf: bytearray, start: int) -> int | None:
    """Drop the line starting at buf[start] up to its newline; where buf's rest begins.

    None: the input ended inside the line. Otherwise buf holds only what follows the line's
    newline from the returned offset (0 after a refill).
    """
    newline = buf.find(b"\n", start)
    while newline < 0:
        del buf[:]
        more = read(_READ)
        if not more:
            return None
        buf += more
        newline = buf.find(b"\n")
    return newline + 1


def batched_items(
    items: Iterator[RawItem], sizes: Callable[[RawItem], int], chunk_bytes: int | None = None
) -> Iterator[ItemsTask]:
    """Items grouped into tasks of about `chunk_bytes` input bytes (by `sizes`), in order."""
    if chunk_bytes is None:
        chunk_bytes = CHUNK_BYTES
    batch: list[tuple[RawItem, int]] = []
    total = 0
    for item in items:
        size = sizes(item)
        batch.append((item, size))
        total += size + 1
        if total >= chunk_bytes:
            yield ItemsTask(batch)
            batch = []
            total = 0
    if batch:
        yield ItemsTask(batch)

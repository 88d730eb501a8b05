"""Inputs cut into chunks: the units of work that worker processes take, in input order.

A chunk's boundaries depend only on the input's bytes, never on how reads or pipes deliver
them nor on how many workers there are: an NDJSON chunk ends with the line that holds its
byte `CHUNK_BYTES - 1` (or at the end of the input). Since lane members are compressed a
chunk at a time, that is what keeps parts byte-identical whatever the worker count.

Memory stays bounded: a chunk is at most `CHUNK_BYTES` plus one line, and a line longer than
the record limit (plus slack) is never held whole: it becomes a `too long` item, as
`bulkctl.read.read.ndjson.read_ndjson` would make it.

A plain regular file need not pass through the main process at all (`FileTasks`): a small
read around each chunk's mark finds where the chunk ends, and the task says only where it
lies (`FileSpan`), for the process that checks it to read. Wherever that small read cannot
settle it (a long line, the end of the input), that chunk is cut from its bytes by the very
code `ndjson_tasks` runs, so the chunks are the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bulkctl.errors import InputError
from bulkctl.read.json_array import PREVIEW_CHARS, SLACK, preview, too_long
from bulkctl.records import RawItem

CHUNK_BYTES = 1 << 20
PROBE = 64 * 1024  # bytes read either side of a chunk's mark to find the line that ends it
_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class FileSpan:
    """Where a chunk lies in a regular file, and which file (device, inode) that was."""

    path: str
    offset: int
    length: int
    device: int
    inode: int

    def read(self, name: str) -> bytes:
        """The chunk's bytes; an InputError if the file was replaced or no longer holds them."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise self._changed(name) from None
        except OSError as exc:
            raise self._failed(name, exc) from None
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (self.device, self.inode):
                raise self._changed(name)
            data = os.pread(fd, self.length, self.offset)
        except OSError as exc:
            raise self._failed(name, exc) from None
        finally:
            os.close(fd)
        if len(data) != self.length or not data.endswith(b"\n"):
            raise self._changed(name)
        return data

    def _changed(self, name: str) -> InputError:
        return InputError(
            f"{name}: the file changed while it was read (bytes {self.offset:,} to "
            f"{self.offset + self.length:,} are not what they were)",
            hint="run again when nothing is writing to it",
        )

    def _failed(self, name: str, exc: OSError) -> InputError:
        return InputError(
            f"{name}: reading failed after {self.offset:,} bytes: {exc.strerror or exc}; "
            "check the file or device"
        )


@dataclass(frozen=True, slots=True)
class LinesTask:
    """A newline-aligned piece of NDJSON from one source (`restart`: its first piece).

    Its bytes are `data` or, when `span` is set, that part of a file, which the process that
    checks the piece reads itself (`content`), so the main process never copies them.
    Its lines are numbered from 1 where it starts: the main process, which does not count
    lines, adds the lines of the source's earlier pieces (`relative`).
    """

    source: str
    data: bytes
    restart: bool = False
    relative: bool = True
    span: FileSpan | None = None

    def content(self) -> bytes:
        """The piece's bytes (an InputError when its file changed: see `FileSpan.read`)."""
        return self.data if self.span is None else self.span.read(self.source)


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
    cutter = _Cutter(read, name, limit, CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    restart = True
    while not cutter.done:
        for task in cutter.chunk(restart):
            restart = False
            yield task


class FileTasks:
    """The tasks `ndjson_tasks` makes of a regular file, most of them spans (never read here).

    `pread(size, offset)` reads the file; `path` and its `device` and `inode` let the process
    that checks a span open it again, and tell if it is still the same file. `offset` is
    where the next chunk starts (the bytes handed out so far, for progress).
    """

    def __init__(
        self,
        pread: Callable[[int, int], bytes],
        path: str,
        device: int,
        inode: int,
        name: str,
        limit: int,
        chunk_bytes: int | None = None,
        probe: int = PROBE,
    ) -> None:
        self.pread = pread
        self.path = path
        self.device = device
        self.inode = inode
        self.name = name
        self.limit = limit
        self.chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        self.probe = probe
        self.offset = 0

    def __iter__(self) -> Iterator[LinesTask | ItemsTask]:
        mark = self.chunk_bytes - 1
        cap = self.limit + SLACK
        restart = True
        while True:
            start = self.offset
            length = _plain_chunk(self.pread, start, mark, cap, self.probe)
            if length is not None:
                self.offset += length
                span = FileSpan(self.path, start, length, self.device, self.inode)
                yield LinesTask(self.name, b"", restart, span=span)
                restart = False
                continue
            # Not settled by the probe: this one chunk as ndjson_tasks cuts it, from its bytes.
            cutter = _Cutter(_reader(self.pread, start), self.name, self.limit, self.chunk_bytes)
            for task in cutter.chunk(restart):
                restart = False
                yield task
            self.offset = start + cutter.offset
            if cutter.done:
                return


def _plain_chunk(
    pread: Callable[[int, int], bytes], start: int, mark: int, cap: int, probe: int
) -> int | None:
    """The length of the chunk at `start` when the line that holds its byte `mark` is no
    longer than `cap` and lies wholly within `probe` bytes either side of the mark; else None.

    Then `ndjson_tasks` would end the chunk with that line too: it holds byte `mark`, so the
    input does not end before it, and it is not too long.
    """
    low = max(0, mark - probe)  # the window, from the chunk's start
    window = pread(mark + probe - low, start + low)
    at = mark - low
    line = window.rfind(b"\n", 0, at) + 1
    if line == 0 and low > 0:  # the line starts before the window
        return None
    end = window.find(b"\n", at)
    if end < 0 or end - line > cap:
        return None
    return low + end + 1


def _reader(pread: Callable[[int, int], bytes], offset: int) -> Callable[[int], bytes]:
    """Sequential reads, with `pread`, from `offset` on."""

    def read(size: int) -> bytes:
        nonlocal offset
        data = pread(size, offset)
        offset += len(data)
        return data

    return read


class _Cutter:
    """`ndjson_tasks`' state between chunks: bytes read and not yet cut, and where they start."""

    def __init__(self, read: Callable[[int], bytes], name: str, limit: int, chunk_bytes: int):
        self.read = read
        self.name = name
        self.limit = limit
        self.cap = limit + SLACK
        self.mark = chunk_bytes - 1
        self.buf = bytearray()
        self.eof = False
        self.done = False  # the input is all cut
        self.offset = 0  # the input bytes before buf[0]

    def chunk(self, restart: bool) -> Iterator[LinesTask | ItemsTask]:
        """The next chunk's tasks, the first with `restart`; `done` is set after the last."""
        buf, mark, cap, name = self.buf, self.mark, self.cap, self.name
        while len(buf) <= mark and not self.eof:
            self.eof = not _fill(self.read, buf)
        if len(buf) <= mark:  # the input's last chunk
            yield from self._last(restart)
            return
        start = buf.rfind(b"\n", 0, mark) + 1  # the line that holds byte `mark`
        end = buf.find(b"\n", mark)
        while end < 0 and len(buf) - start <= cap and not self.eof:
            searched = len(buf)
            self.eof = not _fill(self.read, buf)
            end = buf.find(b"\n", searched)
        if end < 0 and len(buf) - start <= cap:  # the input ends inside that line
            yield from self._last(restart)
            return
        if end >= 0 and end - start <= cap:
            yield LinesTask(name, self._take(end + 1), restart)
            return
        # That line is longer than any record may be: never keep it whole.
        if start:
            yield LinesTask(name, self._take(start), restart)
            restart = False
        head = bytes(buf[: PREVIEW_CHARS * 4])
        error = too_long("line", cap, self.limit)
        item = RawItem(name, 1, None, None, error, None, preview(head))
        yield ItemsTask([(item, 0)], restart, relative=True)
        self._skip_line()

    def _last(self, restart: bool) -> Iterator[LinesTask]:
        self.done = True
        if self.buf:
            yield LinesTask(self.name, self._take(len(self.buf)), restart)

    def _take(self, size: int) -> bytes:
        """The first `size` bytes of buf, dropped from it."""
        data = bytes(self.buf[:size])
        del self.buf[:size]
        self.offset += size
        return data

    def _skip_line(self) -> None:
        """Drop the line buf starts with, up to its newline (`done` if the input ends first)."""
        buf = self.buf
        newline = buf.find(b"\n")
        while newline < 0:
            self.offset += len(buf)
            del buf[:]
            more = self.read(_READ)
            if not more:
                self.done = True
                return
            buf += more
            newline = buf.find(b"\n")
        del buf[: newline + 1]
        self.offset += newline + 1


def _fill(read: Callable[[int], bytes], buf: bytearray) -> bool:
    """Append the next read to buf; False at the end of the input."""
    more = read(_READ)
    buf += more
    return bool(more)


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

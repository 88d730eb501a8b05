"""One input's bytes as read: gzip inflated on the fly, raw bytes counted, the head kept.

Truncated or corrupt gzip becomes an InputError saying how far it got; the first bytes read
(to spot gzip, or to sniff the format) are served again, so a pipe loses nothing.
"""

from __future__ import annotations

import io
import os
import stat
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from bulkctl.errors import InputError
from bulkctl.read.json_array import BOM

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 64 * 1024
NEWLINE = 10


class Decoded(io.RawIOBase):
    """The decompressed bytes of one input, counting the raw bytes taken from disk.

    The first bytes read (to spot gzip, or to sniff the format) are kept and served again,
    so a pipe loses nothing. Truncated or corrupt gzip becomes an InputError saying how far
    it got, in bytes and lines.
    """

    def __init__(self, name: str, file: BinaryIO, *, owns: bool) -> None:
        super().__init__()
        self.name = name
        self.raw_bytes = 0  # read from another thread for progress: a plain int is safe
        self._file = file
        self._owns = owns
        self._read: Callable[[int], bytes] = getattr(file, "read1", file.read)
        self._produced = 0
        self._newlines = 0
        first = self._read_raw(2)
        if len(first) == 1:
            first += self._read_raw(1)
        self.compressed = first == GZIP_MAGIC
        self._zin = first if self.compressed else b""
        self._inflater: Any = zlib.decompressobj(31) if self.compressed else None
        self._head = memoryview(b"" if self.compressed else first)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed and self._owns:
            self._file.close()
        super().close()

    def read_head(self, least: int, line_max: int) -> bytes:
        """Read ahead, and keep for later, `least` bytes and (up to `line_max`) the first line."""
        got = bytes(self._head)
        self._head = memoryview(b"")
        while len(got) < least or (len(got) < line_max and NEWLINE not in content(got)):
            more = self.read(CHUNK)
            if not more:
                break
            got += more
        self._head = memoryview(got)
        return got

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        size = len(buffer)
        data = self._read_raw(size) if self._inflater is None else self._inflate(size)
        n = len(data)
        buffer[:n] = data
        return n

    def file_id(self) -> tuple[int, int] | None:
        """(device, inode) when the input is a plain (not gzip) regular file: see `read_at`."""
        if self.compressed:
            return None
        try:
            info = os.fstat(self._file.fileno())
        except OSError:  # no file descriptor (io.UnsupportedOperation is an OSError)
            return None
        return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None

    def read_at(self, size: int, offset: int) -> bytes:
        """Up to `size` raw bytes of a regular file from `offset` (its position is kept)."""
        try:
            return os.pread(self._file.fileno(), size, offset)
        except OSError as exc:
            raise InputError(
                f"{self.name}: reading failed after {offset:,} bytes: "
                f"{exc.strerror or exc}; check the file or device"
            ) from exc

    def _read_raw(self, size: int) -> bytes:
        try:
            data = self._read(size)
        except OSError as exc:
            raise InputError(
                f"{self.name}: reading failed after {self.raw_bytes:,} bytes: "
                f"{exc.strerror or exc}; check the file or device"
            ) from exc
        self.raw_bytes += len(data)
        return data

    def _inflate(self, want: int) -> bytes:
        """Up to `want` decompressed bytes; members may follow each other (zero padding too)."""
        while True:
            if self._inflater.eof:
                self._zin = self._zin.lstrip(b"\0")
                if not self._zin:
                    self._zin = self._read_raw(CHUNK)
                    if not self._zin:
                        return b""
                    continue
                self._inflater = zlib.decompressobj(31)
            data = self._zin or self._read_raw(CHUNK)
            try:
                out: bytes = self._inflater.decompress(data, want)
            except zlib.error as exc:
                raise self._gzip_error(f"the gzip data is corrupt ({exc})", "is damaged") from None
            if self._inflater.eof:
                self._zin = self._inflater.unused_data
            else:
                self._zin = self._inflater.unconsumed_tail
            if out:
                self._produced += len(out)
                self._newlines += out.count(b"\n")
                return out
            if not data:
                raise self._gzip_error("the gzip stream is truncated", "is incomplete")

    def _gzip_error(self, what: str, state: str) -> InputError:
        return InputError(
            f"{self.name}: {what} after {self._produced:,} decompressed bytes "
            f"(line {self._newlines + 1}); the file {state}: copy or download it again"
        )


def open_path(path: str, name: str) -> tuple[Decoded, os.stat_result]:
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the Decoded
    except FileNotFoundError:
        raise InputError(f"{name}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory; give the files in it instead") from None
    except OSError as exc:
        raise InputError(
            f"{name}: cannot be opened ({exc.strerror or exc}); check that it exists and "
            "is readable"
        ) from None
    try:
        return Decoded(name, file, owns=True), os.fstat(file.fileno())
    except BaseException:
        file.close()
        raise


def content(head: bytes) -> bytes:
    """The head without a BOM and leading whitespace."""
    if head.startswith(BOM):
        head = head[len(BOM) :]
    return head.lstrip(b" \t\r\n")

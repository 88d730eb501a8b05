"""Streaming input readers: paths and stdin in, `RawItem`s (value + file:line[:index]) out.

Each input is opened once up front (so a missing file fails before any record is read), its
gzip-ness is taken from its magic bytes (other compressed formats are refused by name:
`bulkctl.read.magic`) and its format from its name or first bytes. Reading
is streamed: gzip is inflated chunk by chunk, NDJSON is read line by line, JSON goes through
`bulkctl.read.json_array`, CSV/TSV through `bulkctl.read.csv_rows`. Nothing is ever held whole.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from bulkctl.errors import InputError, UsageError
from bulkctl.exactjson import exact_item
from bulkctl.read.chunks import FileTasks, ItemsTask, LinesTask, batched_items, ndjson_tasks
from bulkctl.read.csv_chunks import CsvTask, ErrorTask, csv_tasks
from bulkctl.read.csv_chunks import _header as csv_header
from bulkctl.read.csv_rows import TYPE_NAMES, CsvSettings, check_encoding, read_csv
from bulkctl.read.json_array import BOM, SLACK, parse_error, preview, read_json, too_long
from bulkctl.read.magic import refuse_compressed
from bulkctl.records import RawItem

if TYPE_CHECKING:
    from bulkctl.read.csv_typing import Run

FORMATS = ("auto", "ndjson", "json", "csv", "tsv")
_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024
_TEXT_PROBE = 8 * 1024
_NEWLINE = 10
_UNKNOWN_SIZE = 1 << 62
_SPOOL_CHUNK = 1 << 20


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


class _Decoded(io.RawIOBase):
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
        self.compressed = first == _GZIP_MAGIC
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
        while len(got) < least or (len(got) < line_max and _NEWLINE not in _content(got)):
            more = self.read(_CHUNK)
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
                    self._zin = self._read_raw(_CHUNK)
                    if not self._zin:
                        return b""
                    continue
                self._inflater = zlib.decompressobj(31)
            data = self._zin or self._read_raw(_CHUNK)
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


class Source:
    """One opened input: what it is, how far reading got, and its items."""

    def __init__(
        self,
        name: str,
        stream: _Decoded,
        options: ReadOptions,
        *,
        path: str | None,
        size: int | None,
        format: str,
        format_reason: str,
    ) -> None:
        self.name = name
        self.format = format
        self.format_reason = format_reason
        self.compressed = stream.compressed
        self.size = size
        self._options = options
        self._path = path  # set when the file can be opened again; else `stream` is kept
        self._kept: _Decoded | None = None if path is not None else stream
        self._current: _Decoded | None = None
        self._spooled: BinaryIO | None = None  # stdin or a pipe, copied to be read twice
        self._kinds: dict[str, str] | None = None  # CSV: the columns' decided types
        self.columns = ""  # CSV: each column's type, for `-v` (once decided)

    def __repr__(self) -> str:
        return f"Source({self.name!r}, format={self.format!r}, compressed={self.compressed})"

    def bytes_read(self) -> int:
        """Raw (on-disk, compressed) bytes consumed so far, for progress bars."""
        current = self._current
        return current.raw_bytes if current is not None else 0

    def close(self) -> None:
        """Release a kept stream that will not be read (stdin, a pipe), or its spooled copy."""
        if self._kept is not None:
            self._kept.close()
            self._kept = None
        if self._spooled is not None:
            self._spooled.close()
            self._spooled = None

    def needs_types(self) -> bool:
        """Whether a first pass must decide the CSV columns' types (`bulkctl.read.csv_typing`)."""
        return self.format in ("csv", "tsv") and self._options.infer and self._kinds is None

    def decide_types(self, run: Run | None = None) -> None:
        """The first pass over a CSV (`run`: where its chunks are typed, e.g. the workers);
        standard input and pipes are spooled to a temporary file first, to be read again."""
        from bulkctl.read.csv_types import describe
        from bulkctl.read.csv_typing import decide_types, run_here

        if self._path is None:
            self._spool()
        spans = self._span_types(run or run_here)
        if spans is not None:
            header, kinds = spans
        else:
            header, kinds = decide_types(self._csv_tasks(), run or run_here)
        self._kinds = kinds
        options = self._options
        if header:
            self.columns = describe(header, kinds, options.id_field, options.types)

    def _span_types(self, run: Run) -> tuple[tuple[str, ...], dict[str, str]] | None:
        """The first pass over a plain regular file in spans its workers read themselves
        (`csvtyping.SpanTask`); None where it does not apply or the C pass gave up."""
        from bulkctl.native import native
        from bulkctl.read.csv_typing import decide_spans, span_tasks

        settings = self._csv_settings()
        delimiter = settings.delimiter
        plain = codecs.lookup(settings.encoding).name in ("utf-8", "utf-8-sig")
        if (
            self._path is None
            or self.size is None
            or native() is None
            or not plain
            or not delimiter.isascii()
            or delimiter in '"\r\n'
        ):
            return None
        buffered = self._open()
        consumed = 0

        def readline(limit: int) -> bytes:
            nonlocal consumed
            line = buffered.readline(limit)
            consumed += len(line)
            return line

        try:
            found = buffered.raw.file_id()
            if found is None:
                return None
            header, _ = csv_header(readline, self.name, settings)
        finally:
            buffered.close()
        if header is None:
            return (), {}
        tasks = span_tasks(self._path, *found, consumed, self.size, settings, len(header))
        kinds = decide_spans(tasks, header, settings, run)
        return None if kinds is None else (header, kinds)

    def _spool(self) -> None:
        """Copy a stream that can be read once (decompressed) to an unnamed temporary file."""
        import shutil
        import tempfile

        stream = self._kept
        if stream is None:
            raise InputError(f"{self.name}: standard input or a pipe can be read only once")
        self._kept = None
        self._current = stream
        try:
            spool = tempfile.TemporaryFile(prefix="bulkctl-")  # noqa: SIM115 - kept open
        except OSError as exc:
            raise _spool_error(self.name, exc) from None
        self._spooled = spool
        try:
            with stream:
                shutil.copyfileobj(stream, spool, _SPOOL_CHUNK)
            spool.flush()
        except OSError as exc:
            raise _spool_error(self.name, exc) from None

    def items(self) -> Iterator[RawItem]:
        """Read the input from the start, yielding one RawItem per record; closes it after."""
        if self.needs_types():
            self.decide_types()
        buffered = self._open()
        try:
            yield from self._read(buffered)
        finally:
            buffered.close()

    def tasks(self) -> Iterator[LinesTask | ItemsTask | CsvTask | ErrorTask]:
        """Read the input from the start as chunks of work (`bulkctl.read.chunks`); closes it after.

        NDJSON and CSV/TSV come as raw chunks of whole lines, for worker processes to parse
        (`bulkctl.read.chunks`, `bulkctl.read.csv_chunks`); JSON as items read here, in batches. The
        chunks of a plain NDJSON file are mostly places in it, for the workers to read.
        """
        buffered = self._open()
        try:
            if self.format == "ndjson":
                yield from self._ndjson_tasks(buffered)
            elif self.format == "json":
                limit = self._options.max_record_bytes
                items = read_json(buffered.read, self.name, limit=limit, defer=True)
                yield from batched_items(items, _item_size)
            else:
                settings = self._csv_settings()
                yield from csv_tasks(buffered.readline, buffered.read, self.name, settings)
        finally:
            buffered.close()

    def _csv_tasks(self) -> Iterator[CsvTask | ErrorTask]:
        """A CSV's chunks (as `tasks` makes them), for the first pass."""
        buffered = self._open()
        try:
            settings = self._csv_settings()
            yield from csv_tasks(buffered.readline, buffered.read, self.name, settings)
        finally:
            buffered.close()

    def _ndjson_tasks(
        self, buffered: io.BufferedReader[_Decoded]
    ) -> Iterator[LinesTask | ItemsTask]:
        """Chunks of bytes read here; of a plain regular file, chunks the workers read."""
        limit = self._options.max_record_bytes
        stream = buffered.raw
        found = stream.file_id() if self._path is not None and hasattr(os, "pread") else None
        if self._path is None or found is None:
            yield from ndjson_tasks(buffered.read, self.name, limit)
            return
        cut = FileTasks(stream.read_at, self._path, *found, self.name, limit)
        for task in cut:
            stream.raw_bytes = cut.offset  # progress: the bytes handed out
            yield task
        stream.raw_bytes = cut.offset

    def _csv_settings(self) -> CsvSettings:
        options = self._options
        return CsvSettings(
            delimiter=options.delimiter or ("\t" if self.format == "tsv" else ","),
            encoding=options.encoding,
            id_field=options.id_field,
            types=dict(options.types),
            infer=options.infer,
            limit=options.max_record_bytes,
            kinds=self._kinds,
            need_id=options.need_id,
            need_collection=options.need_collection,
        )

    def _open(self) -> io.BufferedReader[_Decoded]:
        if self._path is not None:
            stream, _ = _open_path(self._path, self.name)
        elif self._spooled is not None:
            copy = os.fdopen(os.dup(self._spooled.fileno()), "rb", buffering=0)
            copy.seek(0)
            stream = _Decoded(self.name, copy, owns=True)
        elif self._kept is not None:
            stream, self._kept = self._kept, None
        else:
            raise InputError(f"{self.name}: standard input or a pipe can be read only once")
        self._current = stream
        return io.BufferedReader(stream, _CHUNK)

    def _read(self, buffered: io.BufferedReader[_Decoded]) -> Iterator[RawItem]:
        options = self._options
        if self.format == "ndjson":
            return read_ndjson(buffered.readline, self.name, options.max_record_bytes)
        if self.format == "json":
            return read_json(buffered.read, self.name, limit=options.max_record_bytes)
        return read_csv(buffered.readline, self.name, self._csv_settings())


def _spool_error(name: str, exc: OSError) -> InputError:
    import tempfile

    return InputError(
        f"{name}: cannot copy the input to a temporary file to decide the CSV column types "
        f"({exc.strerror or exc}); free space in {tempfile.gettempdir()} (or set TMPDIR), or "
        "pass --no-infer"
    )


def open_sources(
    paths: Sequence[str], options: ReadOptions, *, stdin: BinaryIO | None = None
) -> list[Source]:
    """Open and sniff every input before any record is read; "-" is standard input."""
    _check_options(options)
    if list(paths).count("-") > 1:
        raise UsageError('"-" (standard input) may be given only once')
    sources: list[Source] = []
    try:
        for path in paths:
            sources.append(_open_source(path, options, stdin))
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def read_items(sources: Sequence[Source]) -> Iterator[RawItem]:
    """Every item of every source, in order."""
    for source in sources:
        yield from source.items()


def _item_size(item: RawItem) -> int:
    """The input bytes an item took, or a size no fast path takes (unknown)."""
    return item.size if item.size is not None else _UNKNOWN_SIZE


def read_ndjson(readline: Callable[[int], bytes], name: str, limit: int) -> Iterator[RawItem]:
    """One item a non-blank line; kept lean, since this loop bounds validation speed."""
    loads = orjson.loads
    cap = limit + SLACK
    lines = iter(partial(readline, cap + 1), b"")
    lineno = 0
    for raw in lines:
        lineno += 1
        if len(raw) > cap and raw[-1] != _NEWLINE:
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
    while chunk := readline(_CHUNK):
        if chunk[-1] == _NEWLINE:
            return


def _check_options(options: ReadOptions) -> None:
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


def _open_source(path: str, options: ReadOptions, stdin: BinaryIO | None) -> Source:
    if path == "-":
        name = "<stdin>"
        stream = _Decoded(name, stdin if stdin is not None else sys.stdin.buffer, owns=False)
        reopen, size = None, None
    else:
        name = path
        stream, info = _open_path(path, name)
        regular = stat.S_ISREG(info.st_mode)
        reopen, size = (path, info.st_size) if regular else (None, None)
    try:
        fmt, reason = _resolve_format(stream, name, options, stdin=path == "-")
    except BaseException:
        stream.close()
        raise
    if reopen is not None:
        stream.close()
    return Source(name, stream, options, path=reopen, size=size, format=fmt, format_reason=reason)


def _open_path(path: str, name: str) -> tuple[_Decoded, os.stat_result]:
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the _Decoded
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
        return _Decoded(name, file, owns=True), os.fstat(file.fileno())
    except BaseException:
        file.close()
        raise


def _resolve_format(
    stream: _Decoded, name: str, options: ReadOptions, *, stdin: bool
) -> tuple[str, str]:
    """Look at the first bytes (always, to refuse binary and compressed files) and decide
    the format; `stdin`: the input is standard input (for the fix a refusal suggests)."""
    by_name = _format_from_name(name) if options.format == "auto" else None
    need_line = options.format == "auto" and by_name is None
    line_max = options.max_record_bytes + SLACK if need_line else 0
    head = stream.read_head(_TEXT_PROBE, line_max)
    refuse_compressed(name, head, stdin=stdin, in_gzip=stream.compressed)
    nul = head.find(b"\0", 0, _TEXT_PROBE)
    if nul >= 0:
        hint = " (it looks like UTF-16: convert it to UTF-8)" if head[:2] in _UTF16 else ""
        raise InputError(
            f"{name}: does not look like text (NUL byte at offset {nul}){hint}; is it the "
            "right file, or compressed in a format other than gzip?"
        )
    if options.format != "auto":
        return options.format, f"from --format {options.format}"
    if by_name is not None:
        return by_name
    return _sniff(head, cut=len(head) >= line_max)


_UTF16 = (b"\xff\xfe", b"\xfe\xff")


def _format_from_name(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    base = lower[:-3] if lower.endswith(".gz") else lower
    for suffix, fmt in _SUFFIXES.items():
        if base.endswith(suffix):
            return fmt, f"from the name {lower[len(base) - len(suffix) :]}"
    return None


def _sniff(head: bytes, *, cut: bool) -> tuple[str, str]:
    """Decide from the first bytes; `cut` says the head stopped before the first line ended."""
    content = _content(head)
    if not content:
        return "ndjson", "from the first bytes: the input is empty"
    first = content[:1]
    line_end = content.find(b"\n")
    line = content if line_end < 0 else content[:line_end]
    if first == b"[":
        return "json", "from the first bytes: '[' starts a JSON array"
    if first == b"{":
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line_end < 0 and cut:
                return "ndjson", "from the first bytes: a very long first line starting with '{'"
            return "json", "from the first bytes: a JSON object over several lines"
        if isinstance(value, dict) and isinstance(value.get("objects"), list):
            return "json", "from the first bytes: an Objects API body"
        return "ndjson", "from the first bytes: the first line is one JSON object"
    if b"\t" in line and b"," not in line:
        return "tsv", "from the first bytes: the first line has tabs and no commas"
    return "csv", "from the first bytes: not JSON, so CSV"


def _content(head: bytes) -> bytes:
    """The head without a BOM and leading whitespace."""
    if head.startswith(BOM):
        head = head[len(BOM) :]
    return head.lstrip(b" \t\r\n")

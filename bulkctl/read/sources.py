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
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

from bulkctl.errors import InputError, UsageError
from bulkctl.read.chunks import FileTasks, ItemsTask, LinesTask, batched_items, ndjson_tasks
from bulkctl.read.csv_chunks import CsvTask, ErrorTask, csv_tasks
from bulkctl.read.csv_chunks import _header as csv_header
from bulkctl.read.csv_rows import CsvSettings, read_csv
from bulkctl.read.decoded import CHUNK, Decoded, open_path
from bulkctl.read.json_array import read_json
from bulkctl.read.ndjson import read_ndjson
from bulkctl.read.options import FORMATS, ReadOptions, check_options
from bulkctl.read.sniff import resolve_format
from bulkctl.records import RawItem

if TYPE_CHECKING:
    from bulkctl.read.csv_typing import Run

__all__ = ["FORMATS", "ReadOptions", "Source", "open_sources", "read_items"]

_UNKNOWN_SIZE = 1 << 62
_SPOOL_CHUNK = 1 << 20


class Source:
    """One opened input: what it is, how far reading got, and its items."""

    def __init__(
        self,
        name: str,
        stream: Decoded,
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
        self._kept: Decoded | None = None if path is not None else stream
        self._current: Decoded | None = None
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
        (`read.csv_typing.SpanTask`); None where it does not apply or the C pass gave up."""
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
        self, buffered: io.BufferedReader[Decoded]
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

    def _open(self) -> io.BufferedReader[Decoded]:
        if self._path is not None:
            stream, _ = open_path(self._path, self.name)
        elif self._spooled is not None:
            copy = os.fdopen(os.dup(self._spooled.fileno()), "rb", buffering=0)
            copy.seek(0)
            stream = Decoded(self.name, copy, owns=True)
        elif self._kept is not None:
            stream, self._kept = self._kept, None
        else:
            raise InputError(f"{self.name}: standard input or a pipe can be read only once")
        self._current = stream
        return io.BufferedReader(stream, CHUNK)

    def _read(self, buffered: io.BufferedReader[Decoded]) -> Iterator[RawItem]:
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
    check_options(options)
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


def _open_source(path: str, options: ReadOptions, stdin: BinaryIO | None) -> Source:
    if path == "-":
        name = "<stdin>"
        stream = Decoded(name, stdin if stdin is not None else sys.stdin.buffer, owns=False)
        reopen, size = None, None
    else:
        name = path
        stream, info = open_path(path, name)
        regular = stat.S_ISREG(info.st_mode)
        reopen, size = (path, info.st_size) if regular else (None, None)
    try:
        fmt, reason = resolve_format(stream, name, options, stdin=path == "-")
    except BaseException:
        stream.close()
        raise
    if reopen is not None:
        stream.close()
    return Source(name, stream, options, path=reopen, size=size, format=fmt, format_reason=reason)

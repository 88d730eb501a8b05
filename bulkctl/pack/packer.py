"""Records → gzip parts spooled to disk, each under the target's limits.

Limits are the target's (`bulkctl.send.remote.Limits`): uncompressed bytes a part (always),
and optionally records a part, bytes of the file as sent, one collection a part, and plain
(not gzip) files.

Every record goes to a lane chosen by a stable hash of (collection, id), so all versions of one
object share a lane and keep their input order there; lanes then upload in parallel without
changing the API's per-id outcome (see `bulkctl.pack.parts`).

A part is a concatenation of gzip members (`bulkctl.pack.compress`: ISA-L, levels mapped from
0-9), each compressed on its own: lines added one at a time (`add`) are buffered per lane and
become a member every ~1 MiB; a block of lines packed elsewhere (`add_block`: a chunk's lines
of each lane, compressed by a worker) is appended as the member it already is, and only cut
open when a part boundary falls inside it (when parts hold one collection each, its lanes
come plain and are added line by line, as by `add`). Members depend only on the lines and
the level, so parts are byte-identical for identical input and settings, whatever process
made them: a retry, a resume or a second dry run sends exactly the same bytes. The gzip header
has mtime 0 and no file name. Memory stays bounded at about one chunk (plus one line) per lane.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

from bulkctl.errors import BulkctlError, LocalStateError, UsageError
from bulkctl.pack.blocks import Block, lines_in_order
from bulkctl.pack.compress import check_level, gunzip, gzip_member
from bulkctl.pack.lanes import lane_base
from bulkctl.pack.lanes import lane_of as lanes_lane_of
from bulkctl.pack.parts import MIN_PART_SIZE, Part
from bulkctl.pack.spool import SPOOL_PREFIX, default_base, remove_empty_spool_dirs, write_marker

CHUNK_SIZE = 1 << 20  # bytes of raw lines buffered per lane before they are compressed
# Room kept under a limit on the compressed file: deflate may grow incompressible data a
# little, plus each member's header and trailer.
FILE_SLACK = 4 * CHUNK_SIZE
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def lane_of(collection: str, record_id: str, lanes: int) -> int:
    """The lane of one object (the rule is `bulkctl.pack.lanes`)."""
    return lanes_lane_of(lane_base(collection), record_id, lanes)


def _spool_error(path: Path, exc: OSError) -> LocalStateError:
    """A local disk problem (full, read-only), not the API's: exit 6, naming the directory."""
    reason = exc.strerror or str(exc)
    return LocalStateError(
        f"cannot write spooled part {path}: {reason}",
        hint=f"free space in {path.parent.parent}, or choose another --spool-dir",
    )


class _HashingWriter:
    """A file opened for writing that hashes and counts what passes through, so no re-read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()
        self.size = 0
        try:
            self._file: IO[bytes] = path.open("wb")
        except OSError as exc:
            raise _spool_error(path, exc) from exc

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.sha256.update(data)
        self.size += len(data)
        try:
            self._file.write(data)
        except OSError as exc:
            raise _spool_error(self.path, exc) from exc

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise _spool_error(self.path, exc) from exc


class _OpenPart:
    """The part a lane is currently filling: raw lines waiting in `buffer`, the rest on disk."""

    def __init__(
        self, path: Path, lane: int, lane_seq: int, level: int, collection: str, compress: bool
    ) -> None:
        self.lane = lane
        self.lane_seq = lane_seq
        self.collection = collection
        self.records = 0
        self.bytes_uncompressed = 0
        self.buffer = bytearray()
        self.out = _HashingWriter(path)
        self.level: int | None = level if compress else None

    def flush_buffer(self) -> None:
        """Write what is buffered as one member (plain lines when not compressing)."""
        if self.buffer:
            level = self.level
            data = bytes(self.buffer) if level is None else gzip_member(self.buffer, level)
            self.out.write(data)
            self.buffer.clear()

    def append(self, member: bytes, raw_bytes: int, records: int) -> None:
        """Append lines already encoded as a member (or plain, when not compressing)."""
        self.flush_buffer()
        self.out.write(member)
        self.bytes_uncompressed += raw_bytes
        self.records += records

    def file_bytes(self, more: int) -> int:
        """An upper bound of the file's size once `more` raw bytes are added and it is closed."""
        pending = len(self.buffer) + more
        if self.level is None:
            return self.out.size + pending
        return self.out.size + pending + pending // 1000 + FILE_SLACK

    def finish(self, number: int) -> Part:
        self.flush_buffer()
        self.out.close()
        return Part(
            number=number,
            lane=self.lane,
            lane_seq=self.lane_seq,
            path=self.out.path,
            records=self.records,
            bytes_uncompressed=self.bytes_uncompressed,
            bytes_compressed=self.out.size,
            sha256=self.out.sha256.hexdigest(),
        )

    def discard(self) -> None:
        """Close and delete an unfinished part (after an error); it was never a whole part."""
        self.buffer.clear()
        try:
            self.out.close()
        finally:
            self.out.path.unlink(missing_ok=True)


class Packer:
    """Packs lines into per-lane gzip parts of at most `part_size` uncompressed bytes.

    `add` returns the parts it closed (so `--stream` can upload them at once); `close` returns
    the rest. A part's size counts each line plus its newline. Optional limits: `max_records`
    lines a part, `max_file_bytes` of the file as written (gzip), `one_collection` (a part
    holds lines of one collection only), and `compress=False` for plain files. Used as a
    context manager, it deletes unfinished part files when the block raises.
    """

    def __init__(
        self,
        spool_dir: Path,
        part_size: int,
        lanes: int,
        compression_level: int = 6,
        prefix: str = "part",
        *,
        max_records: int | None = None,
        max_file_bytes: int | None = None,
        one_collection: bool = False,
        compress: bool = True,
        suffix: str = ".ndjson.gz",
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(
                f"part size {part_size} bytes is too small: it must be at least "
                f"{MIN_PART_SIZE} bytes (1MB) so that any allowed object fits in one part"
            )
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        check_level(compression_level)
        if not prefix or "/" in prefix or os.sep in prefix:
            raise ValueError(f"prefix must be a plain file name prefix, not {prefix!r}")
        if max_records is not None and max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        if max_file_bytes is not None and max_file_bytes < MIN_PART_SIZE + FILE_SLACK:
            raise ValueError(f"max_file_bytes {max_file_bytes} is too small")
        if "/" in suffix or os.sep in suffix:
            raise ValueError(f"suffix must be a plain file name suffix, not {suffix!r}")
        self.max_records = max_records
        self.max_file_bytes = max_file_bytes
        self.one_collection = one_collection
        self.compress = compress
        self.suffix = suffix
        self._limited = max_records is not None or max_file_bytes is not None or one_collection
        self.spool_dir = spool_dir
        self.part_size = part_size
        self.lanes = lanes
        self.compression_level = compression_level
        self.prefix = prefix
        self._open: dict[int, _OpenPart] = {}
        self._bases: dict[str, int] = {}  # collection -> its lane_base
        self._next_seq = [0] * lanes
        self._closed = 0

    def add(self, collection: str, record_id: str, line: bytes) -> list[Part]:
        """Append one line (without its newline) to its lane; return the part this closed."""
        size = len(line) + 1
        if size > self.part_size or b"\n" in line:
            self._refuse(line)
        base = self._bases.get(collection)
        if base is None:
            base = self._bases[collection] = lane_base(collection)
        closed = self._add_to_lane(lanes_lane_of(base, record_id, self.lanes), collection, line)
        return [] if closed is None else [closed]

    def _add_to_lane(self, lane: int, collection: str, line: bytes) -> Part | None:
        """A checked line into its lane's part, which it may close first (returned)."""
        size = len(line) + 1
        closed = None
        current = self._open.get(lane)
        if current is not None and (
            current.bytes_uncompressed + size > self.part_size
            or (self._limited and self._full(current, collection, size))
        ):
            closed = self._finish(lane)
            current = None
        if current is None:
            current = self._start(lane, collection)
        buffer = current.buffer
        buffer += line
        buffer += b"\n"
        current.records += 1
        current.bytes_uncompressed += size
        if len(buffer) >= CHUNK_SIZE:
            current.flush_buffer()
        return closed

    def add_block(self, block: Block) -> list[Part]:
        """Append a chunk's lines, packed per lane elsewhere; return the parts this closed.

        Each lane's lines arrive as one member (`block.lanes`), appended whole when they fit
        in the lane's part; otherwise they are decoded and cut line by line as `add` would
        cut them, and parts close in the order `add` would close them (`block.order` gives
        the lane of each line in input order). Not for `max_file_bytes`.

        With `one_collection`, the lanes must be plain lines with each line's collection
        (`bulkctl.pack.blocks`): they are added one by one in input order, as by `add`, so
        the parts are byte for byte those `add` makes of the same lines.
        """
        if self.max_file_bytes is not None:
            raise ValueError("add_block does not apply max_file_bytes")
        if self.one_collection:
            return self._add_lines(block)
        events: list[tuple[int, int, bytes, int, int]] = []  # ordinal, lane, member, raw, n
        for lane, member in enumerate(block.lanes):
            if member is None:
                continue
            raw, count = block.lane_bytes[lane], block.lane_records[lane]
            current = self._open.get(lane)
            if self._fits(current, raw, count):
                if current is None:
                    current = self._start(lane, "")
                current.append(member, raw, count)
                continue
            pieces = self._cut(current, gunzip(member) if self.compress else member)
            first, rest = pieces[0], pieces[1:]
            if first[2]:
                if current is None:
                    current = self._start(lane, "")
                current.append(self._member(first[1]), len(first[1]), first[2])
            if rest:
                where = [n for n, value in enumerate(block.order) if value == lane]
                for start, data, lines in rest:
                    events.append((where[start], lane, self._member(data), len(data), lines))
        closed: list[Part] = []
        for _, lane, member, raw, count in sorted(events, key=lambda event: event[0]):
            if lane in self._open:
                closed.append(self._finish(lane))
            self._start(lane, "").append(member, raw, count)
        return closed

    def _add_lines(self, block: Block) -> list[Part]:
        """A block's lines one by one, in input order (one collection a part)."""
        closed: list[Part] = []
        add, limit = self._add_to_lane, self.part_size
        for lane, collection, line in lines_in_order(block):
            if len(line) >= limit:
                self._refuse(line)
            part = add(lane, collection, line)
            if part is not None:
                closed.append(part)
        return closed

    def _fits(self, current: _OpenPart | None, raw: int, count: int) -> bool:
        fill, records = (0, 0) if current is None else (current.bytes_uncompressed, current.records)
        if fill + raw > self.part_size:
            return False
        return self.max_records is None or records + count <= self.max_records

    def _cut(self, current: _OpenPart | None, data: bytes) -> list[tuple[int, bytes, int]]:
        """Cut a lane's lines where `add` would start new parts: (first line, bytes, lines)."""
        pieces: list[tuple[int, bytes, int]] = []
        has_part = current is not None
        fill = current.bytes_uncompressed if current is not None else 0
        records = current.records if current is not None else 0
        start = first = position = index = 0
        while position < len(data):
            end = data.index(b"\n", position) + 1
            size = end - position
            if size > self.part_size:
                self._refuse(data[position : end - 1])
            full = self.max_records is not None and records >= self.max_records
            if has_part and (fill + size > self.part_size or full):
                pieces.append((first, data[start:position], index - first))
                start, first, fill, records = position, index, 0, 0
            has_part = True
            fill += size
            records += 1
            position = end
            index += 1
        pieces.append((first, data[start:], index - first))
        return pieces

    def _member(self, data: bytes) -> bytes:
        return gzip_member(data, self.compression_level) if self.compress else data

    def close(self) -> list[Part]:
        """Close every open part, in lane order; lanes that got no record yield no part."""
        return [self._finish(lane) for lane in sorted(self._open)]

    def abort(self) -> None:
        """Drop every unfinished part file; parts already returned are left alone."""
        open_parts = list(self._open.values())
        self._open.clear()
        for part in open_parts:
            part.discard()

    def __enter__(self) -> Packer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()

    def _refuse(self, line: bytes) -> NoReturn:
        if b"\n" in line:
            raise ValueError("a line must not contain a newline: it would become two records")
        raise ValueError(
            f"a line of {len(line) + 1} bytes (with its newline) is larger than the part size "
            f"of {self.part_size} bytes"
        )

    def _full(self, current: _OpenPart, collection: str, size: int) -> bool:
        """The optional limits: records, one collection, bytes of the file as written."""
        if self.max_records is not None and current.records >= self.max_records:
            return True
        if self.one_collection and current.collection != collection:
            return True
        limit = self.max_file_bytes
        return limit is not None and current.file_bytes(size) > limit

    def _start(self, lane: int, collection: str) -> _OpenPart:
        seq = self._next_seq[lane]
        self._next_seq[lane] = seq + 1
        path = self.spool_dir / f"{self.prefix}-{lane:02d}-{seq:05d}{self.suffix}"
        part = _OpenPart(path, lane, seq, self.compression_level, collection, self.compress)
        self._open[lane] = part
        return part

    def _finish(self, lane: int) -> Part:
        self._closed += 1
        return self._open.pop(lane).finish(self._closed)


def write_manifest(parts: Sequence[Part], out_dir: Path, /, **summary: Any) -> Path:
    """Write `out_dir/manifest.json` (the run summary and every part) for `push --dry-run --out`.

    Part files must lie under `out_dir` and are named relative to it, so the directory can be
    moved as a whole. The summary sits under its own key, so any summary field name is allowed.
    """
    root = out_dir.resolve()
    entries = []
    for part in sorted(parts, key=lambda p: p.number):
        try:
            name = part.path.resolve().relative_to(root).as_posix()
        except ValueError:
            raise ValueError(f"part {part.path} is not inside {out_dir}") from None
        entries.append(
            {
                "file": name,
                "number": part.number,
                "lane": part.lane,
                "lane_seq": part.lane_seq,
                "records": part.records,
                "bytes_uncompressed": part.bytes_uncompressed,
                "bytes_compressed": part.bytes_compressed,
                "sha256": part.sha256,
            }
        )
    document = {"manifest_version": MANIFEST_VERSION, "summary": summary, "parts": entries}
    target = out_dir / MANIFEST_NAME
    scratch = out_dir / f".{MANIFEST_NAME}.tmp"
    try:
        scratch.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(scratch, target)
    except OSError as exc:
        raise BulkctlError(
            f"cannot write {target}: {exc.strerror or exc}", hint="check the --out directory"
        ) from exc
    return target


def remove_parts(parts: Sequence[Part], *, directories: bool = False) -> int:
    """Delete spooled part files (missing ones are fine); return the bytes freed. With
    `directories`, spool directories left with nothing of anyone's go too."""
    freed = 0
    for part in parts:
        try:
            size = part.path.stat().st_size
            part.path.unlink()
        except FileNotFoundError:
            continue
        freed += size
    if directories:
        remove_empty_spool_dirs(part.path.parent for part in parts)
    return freed


class SpoolDir:
    """A private temporary directory for one push's parts, removed on exit unless kept.

    Whether to keep it is often known only at the end (an interrupted push keeps its parts for
    `resume`), so `keep` is an attribute the caller may set inside the block. It is marked
    with `job` of `store` (`bulkctl.pack.spool`), so `resume` and `jobs --prune` find it even
    if the job store never recorded a part in it.
    """

    def __init__(
        self,
        base: Path | None = None,
        *,
        prefix: str = SPOOL_PREFIX,
        keep: bool = False,
        job: str | None = None,
        store: Path | None = None,
    ) -> None:
        self.base = base if base is not None else default_base()
        self.prefix = prefix
        self.keep = keep
        self.job = job
        self.store = store
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The directory itself; only valid inside the `with` block."""
        if self._path is None:
            raise RuntimeError("the spool directory exists only inside its `with` block")
        return self._path

    def __enter__(self) -> SpoolDir:
        if not self.base.is_dir():
            raise UsageError(
                f"spool directory {self.base} does not exist",
                hint="create it or choose another --spool-dir",
            )
        try:
            self._path = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.base))
            write_marker(self._path, self.job, self.store)
        except OSError as exc:
            if self._path is not None:
                shutil.rmtree(self._path, ignore_errors=True)
                self._path = None
            raise LocalStateError(
                f"cannot create a spool directory in {self.base}: {exc.strerror or exc}",
                hint=f"free space in {self.base} or fix its permissions, or choose another "
                "--spool-dir",
            ) from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        path, self._path = self._path, None
        if path is not None and not self.keep:
            shutil.rmtree(path, ignore_errors=True)

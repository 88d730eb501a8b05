"""Progress displays, swappable: rich bars on a terminal, plain lines for cron, nothing at -q.

The core calls a small set of methods; it never imports rich. Every display writes to
standard error only. Plain displays write whole lines: no carriage returns, no colour.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bulkctl.console import Console
from bulkctl.sizes import format_bytes

if TYPE_CHECKING:
    from bulkctl.parts import Part
    from bulkctl.sources import Source
    from bulkctl.validation import Tally


class ReadProgress(Protocol):
    """Told how reading goes; `tick` is called every few thousand records."""

    def tick(self, tally: Tally) -> None: ...

    def close(self, tally: Tally) -> None: ...


class UploadProgress(Protocol):
    """Told how uploading goes; matches the session's event hook."""

    def session_started(self, sync_id: str) -> None: ...

    def part_started(self, part: Part) -> None: ...

    def part_progress(self, part: Part, bytes_sent: int) -> None: ...

    def part_done(self, part: Part) -> None: ...

    def retry(self, event: Any) -> None: ...

    def keep_alive(self) -> None: ...

    def finishing(self, error: str) -> None: ...


def _bytes_read(sources: Sequence[Source]) -> int:
    return sum(source.bytes_read() for source in sources)


def _known_total(sources: Sequence[Source]) -> int | None:
    sizes = [source.size for source in sources]
    return None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)


class NullReadProgress:
    def tick(self, tally: Tally) -> None:
        pass

    def close(self, tally: Tally) -> None:
        pass


class PlainReadProgress:
    """For logs: a line when reading starts and one when it ends."""

    def __init__(self, console: Console, sources: Sequence[Source]) -> None:
        self.console = console
        self.started = time.monotonic()
        for source in sources:
            size = f", {format_bytes(source.size)}" if source.size is not None else ""
            gz = " gzip" if source.compressed else ""
            console.info(f"reading {source.name} ({source.format}{gz}{size})")

    def tick(self, tally: Tally) -> None:
        pass

    def close(self, tally: Tally) -> None:
        elapsed = time.monotonic() - self.started
        self.console.info(
            f"read {tally.records:,} records ({tally.valid:,} valid, {tally.rejected:,} rejected) "
            f"in {elapsed:.1f} s"
        )


class RichReadProgress:
    """A bar over the input's bytes (open-ended on stdin) with record and reject counts."""

    def __init__(self, console: Console, sources: Sequence[Source]) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.sources = sources
        self.bar = Progress(
            TextColumn("reading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console.rich(),
            transient=True,
        )
        self.task = self.bar.add_task("read", total=_known_total(sources), counts="")
        self.bar.start()

    def tick(self, tally: Tally) -> None:
        self.bar.update(
            self.task,
            completed=_bytes_read(self.sources),
            counts=f"{tally.records:,} records, {tally.rejected:,} rejected",
        )

    def close(self, tally: Tally) -> None:
        self.tick(tally)
        self.bar.stop()


def read_progress(console: Console, sources: Sequence[Source]) -> ReadProgress:
    """Pick the display for reading: rich on a terminal, plain lines otherwise, none at -q."""
    if console.quiet:
        return NullReadProgress()
    if console.show_progress:
        return RichReadProgress(console, sources)
    return PlainReadProgress(console, sources)

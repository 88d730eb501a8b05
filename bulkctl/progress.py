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

    def pacing(self, part: Part, seconds: float) -> None: ...

    def finishing(self, error: str) -> None: ...

    def close(self) -> None: ...


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


def describe_retry(event: Any) -> str:
    """`retrying upload of part 3 in 1.2 s (HTTP 503; attempt 2 of 8)` from a retry event."""
    what = getattr(event, "request", "request")
    delay = getattr(event, "delay", 0.0)
    reason = getattr(event, "reason", "")
    attempt = getattr(event, "attempt", "?")
    limit = getattr(event, "max_attempts", None)
    of = f" of {limit}" if limit else ""
    return f"retrying {what} in {delay:.1f} s ({reason}; attempt {attempt}{of} failed)"


class NullUploadProgress:
    def session_started(self, sync_id: str) -> None:
        pass

    def part_started(self, part: Part) -> None:
        pass

    def part_progress(self, part: Part, bytes_sent: int) -> None:
        pass

    def part_done(self, part: Part) -> None:
        pass

    def retry(self, event: Any) -> None:
        pass

    def keep_alive(self) -> None:
        pass

    def pacing(self, part: Part, seconds: float) -> None:
        pass

    def finishing(self, error: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainUploadProgress(NullUploadProgress):
    """For logs: a line per session step and per part, never a carriage return."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.done = 0

    def session_started(self, sync_id: str) -> None:
        self.console.info(f"session {sync_id} open")

    def part_done(self, part: Part) -> None:
        self.done += 1
        attempts = f", {part.attempts} attempts" if part.attempts > 1 else ""
        self.console.info(
            f"part {part.number} uploaded (lane {part.lane}): {part.records:,} records, "
            f"{format_bytes(part.bytes_uncompressed)} → {format_bytes(part.bytes_compressed)}"
            f"{attempts}"
        )

    def retry(self, event: Any) -> None:
        self.console.info(describe_retry(event))

    def keep_alive(self) -> None:
        self.console.detail("keep-alive sent")

    def pacing(self, part: Part, seconds: float) -> None:
        self.console.info(
            f"waiting {seconds:.0f} s before sending part {part.number} (the API's minimum "
            "interval between sends, --min-interval)"
        )

    def finishing(self, error: str) -> None:
        if error:
            self.console.info(f"ending the session with an error: {error}")
        else:
            self.console.info("finishing the session")


class RichUploadProgress(PlainUploadProgress):
    """A bar over all parts' bytes and one per part in flight; retries print above the bars."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console.rich(),
            transient=True,
        )
        self.total = self.bar.add_task("uploading", total=None)
        self.tasks: dict[int, Any] = {}
        self.sent: dict[int, int] = {}
        self.bar.start()

    def session_started(self, sync_id: str) -> None:
        self.bar.console.print(f"session {sync_id} open")

    def part_started(self, part: Part) -> None:
        self.tasks[part.number] = self.bar.add_task(
            f"  part {part.number}", total=part.bytes_compressed
        )
        task = self.bar.tasks[self.total]
        self.bar.update(self.total, total=(task.total or 0) + part.bytes_compressed)

    def part_progress(self, part: Part, bytes_sent: int) -> None:
        task = self.tasks.get(part.number)
        if task is not None:
            before = self.sent.get(part.number, 0)
            self.sent[part.number] = bytes_sent
            self.bar.update(task, completed=bytes_sent)
            self.bar.advance(self.total, max(0, bytes_sent - before))

    def part_done(self, part: Part) -> None:
        task = self.tasks.pop(part.number, None)
        if task is not None:
            before = self.sent.pop(part.number, 0)
            self.bar.advance(self.total, max(0, part.bytes_compressed - before))
            self.bar.remove_task(task)

    def retry(self, event: Any) -> None:
        self.bar.console.print(describe_retry(event))

    def finishing(self, error: str) -> None:
        self.bar.stop()
        if error:
            self.console.info(f"ending the session with an error: {error}")

    def close(self) -> None:
        self.bar.stop()


def upload_progress(console: Console, summary: Any = None) -> UploadProgress:
    """Pick the display for uploading, like `read_progress`."""
    if console.quiet:
        return NullUploadProgress()
    if console.show_progress:
        return RichUploadProgress(console)
    return PlainUploadProgress(console)

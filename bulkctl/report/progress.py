"""Progress displays, swappable: rich bars on a terminal, plain lines for cron, nothing at -q.

The core calls a small set of methods; it never imports rich. Every display writes to
standard error only. Plain displays write whole lines: no carriage returns, no colour.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bulkctl.console import Console
from bulkctl.sizes import counted, format_bytes

if TYPE_CHECKING:
    from bulkctl.check.validate import Tally
    from bulkctl.pack.parts import Part
    from bulkctl.read.sources import Source


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
    """A bar over the input's bytes with record and reject counts, elapsed time and an ETA.

    The ETA needs the input's size: standard input and pipes get none (and a pulsing bar).
    """

    def __init__(self, console: Console, sources: Sequence[Source]) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

        from bulkctl.report.rich_columns import BytesColumn, NoteColumn, TimesColumn

        self.sources = sources
        self.bar = Progress(
            TextColumn("reading"),
            BarColumn(),
            BytesColumn(),
            TransferSpeedColumn(),
            NoteColumn(),
            TimesColumn(),
            console=console.rich(),
            transient=True,
        )
        self.task = self.bar.add_task("read", total=_known_total(sources), note="")
        self.bar.start()

    def tick(self, tally: Tally) -> None:
        self.bar.update(
            self.task,
            completed=_bytes_read(self.sources),
            note=f"{tally.records:,} records, {tally.rejected:,} rejected",
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
        self.sync_id: str | None = None

    def _session(self) -> str:
        return f"session {self.sync_id}" if self.sync_id else "the session"

    def session_started(self, sync_id: str) -> None:
        self.sync_id = sync_id
        self.console.info(f"session {sync_id} open")

    def part_done(self, part: Part) -> None:
        self.done += 1
        attempts = f", {part.attempts} attempts" if part.attempts > 1 else ""
        if part.requests_acked:  # sent as requests, each applied when accepted
            self.console.info(
                f"part {part.number} applied (lane {part.lane}): {part.records:,} records in "
                f"{counted(part.requests_acked, 'request')}, "
                f"{format_bytes(part.bytes_uncompressed)}"
            )
            return
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
            self.console.info(f"ending {self._session()} with an error: {error}")
        else:
            self.console.info(f"finishing {self._session()}")


class RichUploadProgress(PlainUploadProgress):
    """A bar over all parts and one per part in flight; retries print above the bars.

    A part counts as uploaded only when its answer came: bytes written to the connection may
    still sit in buffers while the server reads them. So the overall bar counts the bytes of
    answered parts, and a part whose bytes are all written says it waits for the answer
    (its bar pulses) instead of showing 100%. Finishing a session (seconds, for a large one)
    shows a spinner.
    """

    def __init__(self, console: Console, parts: Sequence[Part] | None = None) -> None:
        super().__init__(console)
        from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

        from bulkctl.report.rich_columns import BytesColumn, NoteColumn, TimesColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            BytesColumn(),
            TransferSpeedColumn(),
            TimesColumn(),
            NoteColumn(),
            console=console.rich(),
            transient=True,
        )
        # Every part to send, when they were all packed before (else streamed: no end known).
        self.count = None if parts is None else len(parts)
        total = None if parts is None else sum(p.bytes_compressed for p in parts)
        self.total = self.bar.add_task("uploading", total=total, note="")
        self.tasks: dict[int, Any] = {}
        self.waiting: set[int] = set()  # parts whose bytes are written, answers not come
        self.spinner: Any = None
        self.bar.start()

    def session_started(self, sync_id: str) -> None:
        self.sync_id = sync_id
        self.bar.console.print(f"session {sync_id} open")

    def _count(self) -> None:
        of = f" of {self.count:,}" if self.count is not None else ""
        self.bar.update(self.total, note=f"{self.done:,}{of} parts answered")

    def part_started(self, part: Part) -> None:
        self.tasks[part.number] = self.bar.add_task(
            f"  part {part.number}", total=part.bytes_compressed, note="sending"
        )
        self._count()

    def part_progress(self, part: Part, bytes_sent: int) -> None:
        task = self.tasks.get(part.number)
        if task is None:
            return
        waiting = part.number in self.waiting
        if bytes_sent >= part.bytes_compressed and not waiting:
            # Written is not received: only the answer says the server has it. A row with no
            # end pulses and shows no percentage; its elapsed time is the wait.
            self._replace(part, total=None, completed=bytes_sent, note="waiting for the answer")
        elif bytes_sent < part.bytes_compressed and waiting:  # a retry starts again from 0
            self._replace(part, total=part.bytes_compressed, completed=bytes_sent, note="sending")
        else:
            self.bar.update(task, completed=bytes_sent)

    def _replace(self, part: Part, **task: Any) -> None:
        self.waiting.symmetric_difference_update({part.number})
        self.bar.remove_task(self.tasks[part.number])
        self.tasks[part.number] = self.bar.add_task(f"  part {part.number}", **task)

    def part_done(self, part: Part) -> None:
        self.done += 1
        self.waiting.discard(part.number)
        task = self.tasks.pop(part.number, None)
        if task is not None:
            self.bar.remove_task(task)
        self.bar.advance(self.total, part.bytes_compressed)
        self._count()

    def retry(self, event: Any) -> None:
        self.bar.console.print(describe_retry(event))

    def finishing(self, error: str) -> None:
        self.bar.stop()
        if error:
            self.console.info(f"ending {self._session()} with an error: {error}")
            text = f"ending {self._session()} with an error …"
        else:
            text = f"finishing {self._session()} …"
        self.spinner = self.bar.console.status(text)
        self.spinner.start()

    def close(self) -> None:
        self.bar.stop()
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None


def upload_progress(console: Console, parts: Sequence[Part] | None = None) -> UploadProgress:
    """Pick the display for uploading, like `read_progress`; `parts`: all to send, if known."""
    if console.quiet:
        return NullUploadProgress()
    if console.show_progress:
        return RichUploadProgress(console, parts)
    return PlainUploadProgress(console)

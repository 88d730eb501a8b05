"""Inputs → valid encoded lines: the reading half shared by `validate` and `push`.

Opens the sources (as the target wants them read), streams every record through the target's
rules, writes rejects, keeps the tally and the reading progress, and applies `--on-invalid`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from bulkctl.console import Console
from bulkctl.errors import InvalidRecordsError
from bulkctl.progress import read_progress
from bulkctl.records import ShapeOptions
from bulkctl.rejects import RejectsFile
from bulkctl.sources import ReadOptions, Source, open_sources, read_items
from bulkctl.targets import get_target
from bulkctl.validation import Rejection, Tally, valid_lines

if TYPE_CHECKING:
    from bulkctl.targets.base import Target

TICK_EVERY = 4096  # records between progress updates


@dataclass(frozen=True)
class ReadSettings:
    """Everything `validate` and `push` share about reading and checking input."""

    paths: tuple[str, ...]
    target: str = "segment-bulk"
    target_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. seg_fields (xandr)
    read: ReadOptions = field(default_factory=ReadOptions)
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    on_invalid: str = "fail"  # fail | skip
    rejects: Path | None = None
    fail_fast: bool = False  # stop at the first rejection (push --stream in fail mode)


class InputRun:
    """One pass over the inputs; use as a context manager, then iterate `lines()` once."""

    def __init__(
        self,
        settings: ReadSettings,
        console: Console,
        *,
        stdin: BinaryIO | None = None,
        target: Target | None = None,
    ) -> None:
        self.settings = settings
        self.console = console
        if target is None:
            target = get_target(settings.target, settings.target_options)
        self.target = target
        self.tally = Tally()
        read = target.prepare_read(settings.read)
        self.sources: list[Source] = open_sources(settings.paths, read, stdin=stdin)
        for source in self.sources:
            console.detail(f"{source.name}: format {source.format} ({source.format_reason})")
        self._stack = ExitStack()
        self.rejects = RejectsFile(settings.rejects)

    def __enter__(self) -> InputRun:
        self._stack.enter_context(self.rejects)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _on_reject(self, rejection: Rejection) -> None:
        self.rejects.write(rejection)
        if self.console.verbose or self.tally.rejected <= 10:
            self.console.info(rejection.describe())
        elif self.tally.rejected == 11:
            self.console.info("… more rejections not shown (see --rejects or -v)")
        if self.settings.fail_fast:
            raise InvalidRecordsError(
                f"{rejection.describe().splitlines()[0]}",
                hint="fix the record, or pass --on-invalid skip to leave invalid records out",
            )

    def lines(self) -> Iterator[tuple[str, str, bytes]]:
        """Valid (collection, id, line) in input order; progress updated as they stream."""
        progress = read_progress(self.console, self.sources)
        tally = self.tally
        next_tick = TICK_EVERY
        try:
            for item in valid_lines(
                read_items(self.sources),
                self.settings.shape,
                self.target,
                tally,
                self._on_reject,
            ):
                yield item
                if tally.records >= next_tick:
                    next_tick = tally.records + TICK_EVERY
                    progress.tick(tally)
        finally:
            progress.close(tally)

    def check_rejections(self) -> None:
        """After reading: under `--on-invalid fail` any rejection fails the run."""
        rejected = self.tally.rejected
        if rejected and self.settings.on_invalid == "fail":
            raise InvalidRecordsError(
                f"{rejected:,} of {self.tally.records:,} records are invalid; nothing was sent",
                hint=_rejects_hint(self.settings.rejects),
            )


def _rejects_hint(rejects: Path | None) -> str:
    where = f"every rejection is in {rejects}" if rejects else "--rejects FILE lists them all"
    return f"{where}; fix them, or pass --on-invalid skip to send the valid ones"

"""Inputs → valid encoded lines: the reading half shared by `validate` and `push`.

Opens the sources (as the target wants them read), streams every record through the target's
rules, writes rejects, keeps the tally and the reading progress, and applies `--on-invalid`.

Targets with object rules (`object_rules`, e.g. segment-bulk) take the chunked path
(`blocks`): the input is cut into chunks (`bulkctl.read.chunks`) that worker processes parse, check
and pack per lane (`bulkctl.fast.lines`, `bulkctl.fast.workers`), and the results are merged back in
input order (`bulkctl.fast.merge`), so everything reported is what one process would report.
Other targets go record by record (`lines`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from bulkctl.check.rejects import RejectsFile
from bulkctl.check.validate import Rejection, Tally, valid_lines
from bulkctl.console import Console
from bulkctl.errors import InputError, InvalidRecordsError
from bulkctl.read.sources import ReadOptions, Source, open_sources
from bulkctl.records import ShapeOptions
from bulkctl.report.progress import read_progress
from bulkctl.targets import build

if TYPE_CHECKING:
    from bulkctl.check.rules import ObjectRules
    from bulkctl.fast.dispatch import ChunkTask
    from bulkctl.fast.state import ChunkResult, WorkContext
    from bulkctl.read.csv_typing import Run
    from bulkctl.records import RawItem
    from bulkctl.targets.base import Target

TICK_EVERY = 4096  # records between progress updates
POOL_MIN_BYTES = 4 << 20  # smaller inputs are checked in this process: forking costs more
_BYTES_A_RECORD = 200  # a guess, only to size the duplicate-id table up front


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
    workers: int | None = None  # processes that parse and check; None: the usable CPUs
    allow_empty: bool = False  # no records at all is a success, not an upstream failure


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
        if target is None:  # validate: the target's rules, no remote
            target = build(settings.target, settings.target_options).target
        self.target = target
        self.tally = Tally()
        read = target.prepare_read(settings.read)
        rules: ObjectRules | None = getattr(target, "object_rules", None)
        if rules is not None:  # objects: certain from a CSV header alone (before any row)
            need_collection = settings.shape.collection is None
            read = replace(read, need_id=True, need_collection=need_collection)
        self._read = read
        self.sources: list[Source] = open_sources(settings.paths, read, stdin=stdin)
        for source in self.sources:
            console.detail(f"{source.name}: format {source.format} ({source.format_reason})")
        self._stack = ExitStack()
        self.rejects = RejectsFile(settings.rejects)
        self._rules = None if target.unique_lines else rules
        self.records_by_source = [0] * len(self.sources)  # input records each source held

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
                self._counted_items(),
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

    def _counted_items(self) -> Iterator[RawItem]:
        """Every source's items, noting how many records each held (`records_by_source`).

        When a source's items are exhausted, every one of them was counted in the tally:
        `valid_lines` asks for the next item only after counting the previous one.
        """
        tally = self.tally
        for index, source in enumerate(self.sources):
            before = tally.records
            yield from source.items()
            self.records_by_source[index] = tally.records - before

    def _owned_tasks(self, owners: deque[int]) -> Iterator[ChunkTask]:
        """Every source's chunks of work, noting in `owners` the source of each, in order."""
        for index, source in enumerate(self.sources):
            for task in source.tasks():
                owners.append(index)
                yield task

    def empty_sources(self) -> list[str]:
        """After reading: the names of the inputs that held no record at all."""
        return [s.name for s, n in zip(self.sources, self.records_by_source, strict=True) if not n]

    def check_records(self) -> None:
        """After reading: no records at all fails the run (exit 1) unless `allow_empty`.

        In cron an empty input is almost always an upstream failure, so it is not a silent
        success. When only some inputs are empty each is named in a warning; the run goes on.
        """
        empty = self.empty_sources()
        if not empty:
            return
        names = ", ".join(empty)
        if self.tally.records:
            for name in empty:
                self.console.warn(f"no records in {name}")
        elif self.settings.allow_empty:
            self.console.info(f"no records in {names} (allowed by --allow-empty)")
        else:
            raise InputError(
                f"no records in {names}",
                hint="check what produced it; pass --allow-empty when an empty input is expected",
            )

    @property
    def chunked(self) -> bool:
        """Whether records take the chunked path (`blocks`): the target has object rules."""
        return self._rules is not None

    def check_all(self) -> None:
        """Read and check every record, encoding no more than the checks need (validate)."""
        if self._rules is not None:
            for _ in self.blocks(pack=False):
                pass
        else:
            for _ in self.lines():
                pass
        self.check_records()

    def blocks(
        self, *, pack: bool = True, lanes: int = 1, level: int | None = 6
    ) -> Iterator[ChunkResult]:
        """Valid lines a chunk at a time, packed per lane (`lanes` by id, gzip `level`).

        When the target's parts hold one collection each, lanes are plain lines with each
        line's collection (`bulkctl.fast.state.WorkContext.one_collection`).

        Each result is yielded after its counts and hints are merged and before its
        rejections are told, so under fail-fast the lines before the first invalid record
        are packed, as `lines` would pack them. Results come in input order whatever the
        number of workers, and so do rejections, hints and counts.
        """
        from bulkctl.fast.dispatch import check_chunk, process, runs_here
        from bulkctl.fast.merge import Merger
        from bulkctl.fast.state import WorkContext

        rules = self._rules
        if rules is None:
            raise ValueError("blocks() needs a target with object rules (see `chunked`)")
        target, tally = self.target, self.tally
        context = WorkContext(
            target=target,
            rules=rules,
            shape=self.settings.shape,
            hints=target.object_hints,
            pack=pack,
            lanes=lanes,
            level=level,
            fail_fast=self.settings.fail_fast,
            limit=self._read.max_record_bytes,
            one_collection=target.limits.one_collection_per_part,
        )
        owners: deque[int] = deque()  # the source of each task not yet merged, in order
        tasks: Iterable[ChunkTask] = self._owned_tasks(owners)
        with ExitStack() as stack:
            workers = self._workers()
            from bulkctl.native import describe

            where = f"in {workers} worker processes" if workers > 1 else "in this process"
            self.console.detail(f"records are checked {where}: {describe()}")
            results: Iterator[tuple[ChunkTask, ChunkResult]]
            if workers > 1:
                from bulkctl.fast.workers import Pool

                pool = stack.enter_context(Pool(process, context, workers))
                self._decide_types(lambda passes: pool.map(passes, runs_here))
                # (a chunk of the second pass gives a ChunkResult: `fast.dispatch`)
                results = cast(
                    "Iterator[tuple[ChunkTask, ChunkResult]]", pool.map(tasks, runs_here)
                )
            else:
                self._decide_types(None)
                results = ((task, check_chunk(context, task)) for task in tasks)
            # After the fork: the workers need not carry the duplicate-id table's pages.
            known = [source.size for source in self.sources if source.size is not None]
            expected = sum(known) // _BYTES_A_RECORD  # room for the keys at once
            merger = Merger(tally, target.object_hints, self._on_reject, expected)
            progress = read_progress(self.console, self.sources)
            try:
                counted = self.records_by_source
                for result in _rejoined(results, context):
                    merger.counts(result)
                    counted[owners.popleft()] += result.records
                    if pack:
                        yield result
                    merger.rejections(result)
                    if result.error is not None:
                        raise InputError(result.error)
                    progress.tick(tally)
            finally:
                progress.close(tally)

    def _decide_types(self, run: Run | None) -> None:
        """The first pass over each CSV whose column types are inferred (`run`: in the
        workers), before any of its rows is converted; `-v` lists the types."""
        for source in self.sources:
            if source.needs_types():
                started = time.monotonic()
                source.decide_types(run)
                took = time.monotonic() - started
                if source.columns:
                    self.console.detail(
                        f"{source.name}: column types ({took:.2f} s first pass): {source.columns}"
                    )

    def _workers(self) -> int:
        """How many worker processes to fork: 1 (none) for small or unsplittable inputs."""
        from bulkctl.fast.workers import can_fork, usable_cpus

        wanted = self.settings.workers or usable_cpus()
        if wanted <= 1 or not can_fork():
            return 1
        splittable = [s for s in self.sources if s.format != "json"]
        if not splittable:
            return 1
        sizes = [s.size for s in splittable]
        compressed = any(source.compressed for source in splittable)
        known = all(size is not None for size in sizes) and not compressed
        if known and sum(size or 0 for size in sizes) < POOL_MIN_BYTES:
            return 1
        return wanted

    def check_rejections(self) -> None:
        """After reading: under `--on-invalid fail` any rejection fails the run."""
        rejected = self.tally.rejected
        if rejected and self.settings.on_invalid == "fail":
            raise InvalidRecordsError(
                f"{rejected:,} of {self.tally.records:,} records are invalid; nothing was sent",
                hint=_rejects_hint(self.settings.rejects),
            )


def _rejoined(
    results: Iterator[tuple[ChunkTask, ChunkResult]], context: WorkContext
) -> Iterator[ChunkResult]:
    """Results in order; a CSV chunk whose last row went on past its end is read again joined
    to the next chunk (whose own result, read from the middle of a row, is dropped)."""
    from bulkctl.fast.dispatch import check_chunk
    from bulkctl.read.chunks import ItemsTask, LinesTask
    from bulkctl.read.csv_chunks import CsvTask, rejoin

    unfinished: tuple[CsvTask, ChunkResult] | None = None
    base = 0  # lines of the source before an NDJSON chunk (its lines are counted from 1)
    for task, result in results:
        if unfinished is not None:
            before, cut = unfinished
            unfinished = None
            if isinstance(task, CsvTask) and task.source == before.source:
                task = rejoin(before, cut, task)
                result = check_chunk(context, task)
        if isinstance(task, LinesTask | ItemsTask) and task.relative:
            if task.restart:
                base = 0
            if base:
                for rejection, _ in result.rejections:
                    rejection.line += base
            base += result.lines
        yield result
        if result.bad_end and isinstance(task, CsvTask):
            unfinished = task, result


def _rejects_hint(rejects: Path | None) -> str:
    where = f"every rejection is in {rejects}" if rejects else "--rejects FILE lists them all"
    return f"{where}; fix them, or pass --on-invalid skip to send the valid ones"

"""Which function checks which task: what a worker process (or the main process) runs.

Every task the readers cut (`bulkctl.read.chunks`, `bulkctl.read.csv_chunks`,
`bulkctl.read.csv_typing`) comes here, so one `Pool` runs both CSV passes and every format.
A task's kind decides its result's: a `TypeTask` or `SpanTask` (the CSV first pass) gives
a `TypeResult`, every other task a `ChunkResult`.
"""

from __future__ import annotations

from bulkctl.errors import InputError
from bulkctl.fast.csv_chunk import csv_chunk
from bulkctl.fast.lines import items_chunk, ndjson_chunk
from bulkctl.fast.state import ChunkResult, WorkContext
from bulkctl.read.chunks import ItemsTask, LinesTask
from bulkctl.read.csv_chunks import CsvTask, ErrorTask
from bulkctl.read.csv_typing import SpanTask, TypeResult, TypeTask, type_task

ChunkTask = LinesTask | ItemsTask | CsvTask | ErrorTask  # the second pass: records checked
Task = ChunkTask | TypeTask | SpanTask


def process(ctx: WorkContext, task: Task) -> ChunkResult | TypeResult:
    """One task, in whichever process runs it."""
    if isinstance(task, TypeTask | SpanTask):
        return type_task(task)
    return check_chunk(ctx, task)


def check_chunk(ctx: WorkContext, task: ChunkTask) -> ChunkResult:
    """One chunk of the second pass: its records checked (and packed, when pushing)."""
    if isinstance(task, LinesTask):
        try:
            data = task.content()  # a span of a regular file is read here, not in the parent
        except InputError as exc:  # the file changed under the run
            return ChunkResult(error=str(exc))
        result = ndjson_chunk(ctx, task.source, 1, data)
        result.lines = data.count(b"\n")
        return result
    if isinstance(task, CsvTask):
        return csv_chunk(ctx, task)
    if isinstance(task, ErrorTask):
        return ChunkResult(error=task.message)
    result = items_chunk(ctx, task.items)
    result.lines = len(task.items) if task.relative else 0
    return result


def runs_here(task: Task) -> bool:
    """Items a reader made are checked where they are: shipping them costs more than that
    (pickling an item takes longer than checking it, even a JSON element still in bytes)."""
    return isinstance(task, ItemsTask | ErrorTask)


__all__ = ["ChunkTask", "Task", "check_chunk", "process", "runs_here"]

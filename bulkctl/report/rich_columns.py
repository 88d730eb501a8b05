"""The columns of bulkctl's progress bars: every number labelled, nothing claimed before it is so.

Imported only by the rich displays in `report.progress`, when a person is watching: rich costs
startup time that cron runs should not pay. A task whose `total` is None has no known end (a
part whose bytes are all written and whose answer has not come, standard input): it shows no
percentage and no ETA, and its bar pulses.
"""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.text import Text

from bulkctl.sizes import format_bytes


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


class BytesColumn(ProgressColumn):
    """`12.0 MB of 40.0 MB, 30%` when the end is known, else `12.0 MB`."""

    def render(self, task: Task) -> Text:
        done = format_bytes(int(task.completed))
        if task.total is None:
            return Text(done)
        percent = int(100 * task.completed / task.total) if task.total else 100
        return Text(f"{done} of {format_bytes(int(task.total))}, {percent}%")


class TimesColumn(ProgressColumn):
    """`elapsed 0:00:03, ETA 0:00:09`; the ETA only when the end is known and a rate measured."""

    def render(self, task: Task) -> Text:
        text = f"elapsed {_clock(task.elapsed or 0.0)}"
        remaining = task.time_remaining
        if task.total is not None and remaining is not None and not task.finished:
            text += f", ETA {_clock(remaining)}"
        return Text(text)


class NoteColumn(ProgressColumn):
    """The task's `note` field: counts, or what a part is waiting for."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("note", "")))

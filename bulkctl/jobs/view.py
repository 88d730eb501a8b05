"""What `jobs` and `status` show about stored jobs, and which spooled parts `jobs --prune` frees.

Plain functions over `JobRow`/`PartRow`: the CLI modules only parse options and print what
these return. The store has no column for a pruned part, so whether a part's file is still
there is read from the disk (`on_disk`) instead.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bulkctl.jobs.state import (
    DIED,
    ENDED_STATUSES,
    applies_each_request,
    job_summary,
    parse_time,
    resume_hint,
    shown_status,
)
from bulkctl.jobs.store import JobRow, JobStore, PartRow
from bulkctl.pack.packer import MANIFEST_NAME
from bulkctl.pack.spool import (
    default_base,
    find_spool_dirs,
    remove_empty_spool_dirs,
    remove_spool_dir,
)
from bulkctl.sizes import counted, format_bytes

# Ended so that no command will read the job's parts again (`resume` may want the others').
DONE_STATUSES = frozenset({"finished", "aborted", "dry_run"})
# Targets whose API has no way to ask for a job's state: `status` shows what the store holds.
NO_STATUS_ENDPOINT = {
    "segment-bulk": "the Bulk API has no status endpoint; this is what bulkctl recorded",
}
# What `status` leaves out of the options line: the owner's start time means nothing to a reader.
HIDDEN_OPTIONS = frozenset({"pid_start"})
SHA_PREFIX = 12

JOB_COLUMNS = ("job", "target", "started", "status", "records", "rejected", "parts", "remote id")
PART_COLUMNS = (
    "part",
    "lane",
    "seq",
    "records",
    "raw",
    "gz",
    "sha256",
    "part id",
    "attempts",
    "status",
    "file",
)


# -- times -------------------------------------------------------------------------------------


def local_time(stamp: str | None, *, seconds: bool = True) -> str:
    """A store timestamp in the local time zone, `2026-11-22 14:03[:07]`; `-` for none."""
    if not stamp:
        return "-"
    return parse_time(stamp).astimezone().strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def format_duration(seconds: float) -> str:
    """`4.2 s`, `3 min 07 s`, `2 h 05 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# -- one job and its parts -----------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    """A job with its parts as read at one moment; what `status` shows and `--wait` polls."""

    job: JobRow
    parts: list[PartRow] = field(default_factory=list)
    acked: dict[int, tuple[int, int]] | None = None  # request-based: per part, requests, records

    @property
    def status(self) -> str:
        """The status shown: `died` when the store says running but its process is gone."""
        return shown_status(self.job)

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def percent(self) -> float | None:
        """Share of the parts' compressed bytes uploaded, while uploading; else None."""
        if self.status != "uploading" or not self.parts:
            return None
        total = sum(p.bytes_compressed for p in self.parts)
        done = sum(p.bytes_compressed for p in self.parts if p.status == "uploaded")
        return 100.0 * done / total if total else None

    def as_dict(self) -> dict[str, Any]:
        """The job in the `push --json` vocabulary, with its parts as `part_list`."""
        summary = job_summary(self.job, self.parts, self.acked)
        return summary | {"part_list": [part_dict(p) for p in self.parts]}


def read_snapshot(store: JobStore, ref: str) -> JobSnapshot:
    """The job `ref` (local id, remote id or `last`) and its parts, fresh from the store."""
    job = store.get_job(ref)
    acked = store.acknowledged(job.id) if applies_each_request(job.target) else None
    return JobSnapshot(job, store.list_parts(job.id), acked)


def part_dict(part: PartRow) -> dict[str, Any]:
    """A part as JSON, with `on_disk`: whether its spooled file still exists."""
    return part.as_dict() | {"on_disk": part.path.exists()}


def job_cells(job: JobRow, *, grouped: bool, spooled: int = 0) -> list[str]:
    """One row of the `jobs` table; `grouped` puts thousands separators in the counts.

    A push records its part count when it ends; `spooled` (the parts the store lists) shows
    how far one that is running, or was killed, got.
    """
    count = "{:,}" if grouped else "{}"
    return [
        job.id,
        job.target,
        local_time(job.created_at, seconds=False),
        shown_status(job),
        count.format(job.records),
        count.format(job.rejected),
        count.format(max(job.parts, spooled)),
        job.remote_id or "-",
    ]


def part_cells(part: PartRow, *, grouped: bool) -> list[str]:
    """One row of the parts table of `status`."""
    count = "{:,}" if grouped else "{}"
    return [
        str(part.number),
        str(part.lane),
        str(part.lane_seq),
        count.format(part.records),
        format_bytes(part.bytes_uncompressed),
        format_bytes(part.bytes_compressed),
        part.sha256[:SHA_PREFIX],
        part.part_id or "-",
        str(part.attempts),
        part.status,
        "on disk" if part.path.exists() else "gone",
    ]


def job_fields(snapshot: JobSnapshot) -> list[tuple[str, str]]:
    """The key/value block of `status`: everything the store knows about the job."""
    job = snapshot.job
    options = " ".join(f"{k}={v}" for k, v in _flat_options(job.options))
    status = snapshot.status
    if status != job.status:
        status += f" (recorded: {job.status})"
    rows = [
        ("job", job.id),
        ("target", job.target),
        ("endpoint", job.endpoint or "-"),
        ("inputs", ", ".join(job.inputs) or "-"),
        ("options", options or "-"),
        ("status", status + _percent(snapshot.percent)),
        ("remote id", job.remote_id or "-"),
        ("records", f"{job.records:,} ({job.valid:,} valid, {job.rejected:,} rejected)"),
        ("parts", _parts_summary(snapshot)),
        (
            "bytes",
            f"{format_bytes(job.bytes_uncompressed)} raw, {format_bytes(job.bytes_sent)} sent",
        ),
        ("started", local_time(job.created_at)),
        ("updated", local_time(job.updated_at)),
        ("finished", _finished(job)),
        ("error", job.error or "-"),
    ]
    if snapshot.acked is not None:
        records = sum(records for _, records in snapshot.acked.values())
        requests = sum(count for count, _ in snapshot.acked.values())
        at = next(n for n, row in enumerate(rows) if row[0] == "records") + 1
        rows.insert(
            at,
            (
                "applied",
                f"{records:,} of {counted(job.valid, 'record')} ({counted(requests, 'request')})",
            ),
        )
    if snapshot.status in (DIED, "interrupted") or (
        snapshot.acked is not None and snapshot.status == "failed"
    ):
        rows.append(("resume", resume_hint(job, snapshot.parts, snapshot.acked)))
    note = NO_STATUS_ENDPOINT.get(job.target)
    if note:
        rows.append(("note", note))
    return rows


def _flat_options(options: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Options as `name=value` pairs, nested ones as `read.format=csv`; unset ones left out."""
    pairs: list[tuple[str, str]] = []
    for name, value in sorted(options.items()):
        if value is None or value == {} or name in HIDDEN_OPTIONS:
            continue
        if isinstance(value, dict):
            pairs.extend(_flat_options(value, f"{prefix}{name}."))
        elif isinstance(value, bool):
            pairs.append((prefix + name, str(value).lower()))
        else:
            pairs.append((prefix + name, str(value)))
    return pairs


def _percent(percent: float | None) -> str:
    return "" if percent is None else f" ({percent:.0f}%)"


def _parts_summary(snapshot: JobSnapshot) -> str:
    parts = snapshot.parts
    if not parts:
        return f"{snapshot.job.parts:,}"
    uploaded = sum(1 for p in parts if p.status == "uploaded")
    on_disk = sum(1 for p in parts if p.path.exists())
    return f"{len(parts):,} ({uploaded:,} uploaded, {on_disk:,} on disk)"


def _finished(job: JobRow) -> str:
    if not job.finished_at:
        return "-"
    took = (parse_time(job.finished_at) - parse_time(job.created_at)).total_seconds()
    return f"{local_time(job.finished_at)} (took {format_duration(max(took, 0.0))})"


# -- output ------------------------------------------------------------------------------------


def print_table(
    stream: TextIO, columns: Sequence[str], rows: Sequence[Sequence[str]], *, terminal: bool
) -> None:
    """A rich table on a terminal; otherwise tab-separated lines under a header line.

    On a narrow terminal cells wrap rather than lose text, except the first column (the job id
    or part number), which stays whole on one line.
    """
    if terminal:
        from rich.console import Console as RichConsole
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for index, name in enumerate(columns):
            if index == 0:
                widest = max((len(row[0]) for row in rows), default=0)
                table.add_column(name, no_wrap=True, min_width=max(widest, len(name)))
            else:
                table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*row)
        RichConsole(file=stream, highlight=False, no_color="NO_COLOR" in os.environ).print(table)
        return
    for row in (columns, *rows):
        stream.write("\t".join(_cell(value) for value in row) + "\n")


def print_fields(
    stream: TextIO, rows: Sequence[tuple[str, str]], *, columns: int | None = None
) -> None:
    """`key  value` lines with the values lined up.

    With `columns` (a terminal's width) a long value is wrapped between words, its further
    lines indented under the first, rather than cut mid-word by the terminal.
    """
    width = max((len(key) for key, _ in rows), default=0)
    room = None if columns is None else max(columns - width - 2, 20)
    for key, value in rows:
        lines = [value]
        if room is not None and len(value) > room:
            wrapped = textwrap.wrap(value, room, break_long_words=False, break_on_hyphens=False)
            lines = wrapped or lines
        stream.write(f"{key:<{width}}  {lines[0]}\n")
        for line in lines[1:]:
            stream.write(f"{'':<{width}}  {line}\n")


def _cell(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")


# -- prune ---------------------------------------------------------------------------------------


@dataclass
class PruneResult:
    """What `jobs --prune` removed and what it left on purpose."""

    files: int = 0
    bytes_freed: int = 0
    jobs: list[str] = field(default_factory=list)  # ids of jobs that lost at least one file
    directories: int = 0  # emptied spool directories removed
    kept_unfinished: int = 0  # files of jobs `resume` may still want (younger than the cut-off)
    kept_out: int = 0  # files of `push --dry-run --out`: the user's, never touched
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pruned_parts": self.files,
            "bytes_freed": self.bytes_freed,
            "jobs": self.jobs,
            "directories_removed": self.directories,
            "kept_unfinished": self.kept_unfinished,
            "kept_out": self.kept_out,
            "errors": self.errors,
        }

    def describe(self, older_than_days: float) -> str:
        """`pruned 12 parts of 3 jobs, freed 1.2 GB` and what was kept."""
        text = (
            f"pruned {counted(self.files, 'part')} of {counted(len(self.jobs), 'job')}, "
            f"freed {format_bytes(self.bytes_freed)}"
        )
        if self.kept_unfinished:
            text += (
                f"; kept {counted(self.kept_unfinished, 'part')} of "
                f"unfinished jobs active in the last {older_than_days:g} days"
            )
        if self.kept_out:
            parts = "part" if self.kept_out == 1 else "parts"
            text += f"; left {self.kept_out:,} --dry-run --out {parts}"
        return text


def is_user_output(job: JobRow) -> bool:
    """A dry run's parts may sit in the user's `--out` directory: never prune those.

    Only a dry run that recorded `out_dir` as null is known to have spooled to a temporary
    directory; any other dry run (finished or not) is treated as one with `--out`.
    """
    dry = job.status == "dry_run" or bool(job.options.get("dry_run"))
    if not dry:
        return False
    return not ("out_dir" in job.options and job.options["out_dir"] is None)


def prunable(job: JobRow, cutoff: datetime) -> bool:
    """Whether a job's spooled parts may go: it is done, or it was last active before `cutoff`.

    Failed, interrupted and still-running jobs keep their parts for `resume` until then.
    """
    if is_user_output(job):
        return False
    return job.status in DONE_STATUSES or parse_time(job.updated_at) < cutoff


def prune_parts(
    store: JobStore,
    *,
    older_than_days: float,
    target: str | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Delete the spooled part files `prunable` allows, then their emptied spool directories."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    result = PruneResult()
    directories: set[Path] = set()
    for job in store.list_jobs(limit=None, target=target):
        parts = [p for p in store.list_parts(job.id) if p.path.is_file()]
        if not parts:
            continue
        if not prunable(job, cutoff):
            if is_user_output(job):
                result.kept_out += len(parts)
            else:
                result.kept_unfinished += len(parts)
            continue
        removed = 0
        for part in parts:
            if (part.path.parent / MANIFEST_NAME).exists():
                result.kept_out += 1  # an --out directory whatever the store says
                continue
            freed = _remove(part.path, result.errors)
            if freed is not None:
                removed += 1
                result.bytes_freed += freed
                directories.add(part.path.parent)
        if removed:
            result.files += removed
            result.jobs.append(job.id)
    result.directories = remove_empty_spool_dirs(directories)
    _prune_unrecorded(store, cutoff, target, result)
    return result


def _prune_unrecorded(
    store: JobStore, cutoff: datetime, target: str | None, result: PruneResult
) -> None:
    """Spool directories whose files the store does not list (a push killed while packing, a
    job `resume` started afresh, a store moved aside): found by their marker on disk."""
    jobs = {job.id: job for job in store.list_jobs(limit=None)}
    bases = {default_base()} | {
        Path(job.options["spool_dir"]) for job in jobs.values() if job.options.get("spool_dir")
    }
    for info in find_spool_dirs(bases):
        if not info.of_store(store.path):
            continue  # another BULKCTL_HOME's: its own prune decides
        job = jobs.get(info.job) if info.job is not None else None
        if target is not None and (job is None or job.target != target):
            continue
        if job is not None and (is_user_output(job) or not prunable(job, cutoff)):
            continue
        if (job is None or job.status not in DONE_STATUSES) and info.in_use():
            continue  # a push still running in another process
        if job is None and info.mtime >= cutoff.timestamp():
            continue
        files, freed = remove_spool_dir(info.path, result.errors)
        result.files += files
        result.bytes_freed += freed
        result.directories += not info.path.exists()
        if files and job is not None and job.id not in result.jobs:
            result.jobs.append(job.id)


def _remove(path: Path, errors: list[str]) -> int | None:
    """Delete one file; its size, or None when it was gone already or could not be removed."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        errors.append(f"cannot remove {path}: {exc.strerror or exc}")
        return None
    return size

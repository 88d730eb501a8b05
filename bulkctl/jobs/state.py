"""What state a stored job is in, in the words every `--json` and table uses.

The store holds what the push last wrote. Two states are worked out when a job is read,
never written: `died` (the store says the push is still running, but the process that runs it
is gone — killed, or its pipe closed — so nothing will change it again) and
`finished_with_rejections` (the session was applied, but records were left out under
`--on-invalid skip`). `job_summary` is the one vocabulary of a job — the keys of `push --json`
(CLI.md) — shared by `status --json` and `jobs --json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bulkctl.errors import RemoteJobFailedError
from bulkctl.jobs.store import FINAL_STATUSES, WITH_REJECTIONS, JobRow, PartRow
from bulkctl.processes import owner_running

# What a push records while it works: only these can have died.
RUNNING_STATUSES = frozenset({"created", "packing", "uploading"})
DIED = "died"
# A push that stopped (killed, Ctrl-C) records `interrupted`: nothing more will happen to it.
ENDED_STATUSES = FINAL_STATUSES | {"interrupted", DIED}
# Ended without doing what was asked: `status` exits 5 for these.
FAILED_STATUSES = frozenset({"failed", "interrupted", "aborted", DIED})


def died(job: JobRow) -> bool:
    """The store says running, yet the process that recorded it is gone.

    `finished_at` tells a push whose sending ended (a Xandr job's phase `uploading` is the
    API's word, written after the push finished) from one that was cut short.
    """
    if job.status not in RUNNING_STATUSES or job.finished_at:
        return False
    return owner_running(job.options) is False


def shown_status(job: JobRow) -> str:
    """The status to show: the stored one, or `died` / `finished_with_rejections`."""
    if died(job):
        return DIED
    return with_rejections(job.status, job.rejected)


def with_rejections(status: str, rejected: int) -> str:
    """`finished` (or Xandr's `completed`) with records left out is `..._with_rejections`."""
    if rejected and status in ("finished", "completed"):
        return status + WITH_REJECTIONS
    return status


def failure_of(job: JobRow, parts: Sequence[PartRow] = ()) -> RemoteJobFailedError | None:
    """The error `status` exits with (5) when the job ended failed or died; else None.

    A push that finished with records left out (`--on-invalid skip`) exited 1 itself; its job
    is done, so `status` exits 0 for it, and says `finished_with_rejections`.
    `parts` (the stored ones) let the message of a job that died say what `resume` can do.
    """
    status = shown_status(job)
    if status not in FAILED_STATUSES:
        return None
    reason = f": {job.error}" if job.error else ""
    if status == DIED:
        pid = job.options.get("pid")
        return RemoteJobFailedError(
            f"job {job.id} died while {job.status} (its process {pid} is gone){reason}",
            hint=resume_hint(job, parts),
        )
    hint = f"`bulkctl resume {job.id}` continues it" if status == "interrupted" else None
    return RemoteJobFailedError(f"job {job.id} ended {status}{reason}", hint=hint)


def rejections_text(rejected: int, records: int) -> str:
    """The error of a push that left rejected records out (`--on-invalid skip`)."""
    return f"{rejected:,} of {records:,} records were rejected and not sent"


def resume_hint(
    job: JobRow, parts: Sequence[PartRow], acked: dict[int, tuple[int, int]] | None = None
) -> str:
    """What `bulkctl resume JOB` would do for a job that stopped."""
    from bulkctl.jobs.resume_plan import describe_resume

    return describe_resume(job, list(parts), acked)


def applies_each_request(target: str) -> bool:
    """Whether the target sends parts as requests each applied on its own (no session)."""
    from bulkctl.errors import UsageError
    from bulkctl.targets import target_class

    try:
        return target_class(target).limits.batch is not None
    except UsageError:
        return False


def elapsed_s(job: JobRow) -> float:
    """Seconds from the job's start to its end (or the last time it was heard of)."""
    end = job.finished_at or job.updated_at
    seconds = (parse_time(end) - parse_time(job.created_at)).total_seconds()
    return round(max(seconds, 0.0), 3)


def job_summary(
    job: JobRow,
    parts: Sequence[PartRow] | None = None,
    acked: dict[int, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """A job in the `push --json` vocabulary (CLI.md's keys first), plus what the store adds.

    `recorded_status` is what the store holds when `status` says something else (`died`).
    `bytes_compressed` is known from the parts, when they are given.
    """
    summary: dict[str, Any] = {
        "job": job.id,
        "target": job.target,
        "remote_id": job.remote_id,
        "status": shown_status(job),
        "records": job.records,
        "valid": job.valid,
        "rejected": job.rejected,
        "parts": max(job.parts, len(parts or ())),
        "bytes_uncompressed": job.bytes_uncompressed,
        "bytes_sent": job.bytes_sent,
        "elapsed_s": elapsed_s(job),
        "error": job.error,
    }
    if summary["error"] is None and summary["status"].endswith(WITH_REJECTIONS):
        summary["error"] = rejections_text(job.rejected, job.records)
    if parts is not None:
        summary["bytes_compressed"] = sum(p.bytes_compressed for p in parts)
    if acked is not None:  # request-based: what the API accepted, request by request
        applied = sum(records for _, records in acked.values())
        summary["applied"] = applied
        summary["not_applied"] = max(job.valid - applied, 0)
    return summary | {
        "recorded_status": job.status,
        "endpoint": job.endpoint,
        "inputs": job.inputs,
        "options": job.options,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
    }


def parse_time(stamp: str) -> datetime:
    """A store timestamp (ISO-8601 UTC with `Z`) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)

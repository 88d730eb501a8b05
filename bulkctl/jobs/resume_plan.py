"""What `bulkctl resume JOB` would do, worked out from the job store and the spool alone.

`status` and `jobs` use it to say what resume would do; `bulkctl.run.resume` uses it to do
it. Nothing here sends or changes anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bulkctl.errors import UsageError
from bulkctl.jobs.store import JobRow, JobStore, PartRow
from bulkctl.pack.parts import Part
from bulkctl.processes import owner_running

DONE = frozenset({"finished", "dry_run", "completed"})
STDIN = "<stdin>"


@dataclass(frozen=True)
class ResumePlan:
    """What resume will do, worked out before anything is sent."""

    job: JobRow
    parts: list[Part]  # every part of the job, in number order
    spooled: bool  # the parts still to send are on disk and intact: no need to read the input
    problem: str | None  # why the spool cannot be used, when it cannot


def plan_resume(store: JobStore, ref: str, *, force: bool = False) -> ResumePlan:
    """Look at a job and its spool; raise a UsageError when it cannot or need not be resumed."""
    job = store.get_job(ref)
    if job.status in DONE or job.status.endswith("_with_rejections"):
        raise UsageError(f"job {job.id} is {job.status}: there is nothing to resume")
    pid = job.options.get("pid")
    running = job.status in ("packing", "uploading", "created")
    if not force and running and pid != os.getpid() and owner_running(job.options):
        raise UsageError(
            f"job {job.id} is {job.status} and its push (process {pid}) is still running",
            hint="wait for it (`bulkctl status JOB --wait`), or pass --force if that "
            "process is not bulkctl",
        )
    return _plan(job, store.list_parts(job.id), store.acknowledged(job.id))


def describe_resume(
    job: JobRow, rows: list[PartRow], acked: dict[int, tuple[int, int]] | None = None
) -> str:
    """What `bulkctl resume JOB` would do with a job that stopped, in one sentence."""
    try:
        plan = _plan(job, rows, acked or {})
    except UsageError as exc:
        return exc.message
    if plan.spooled:
        left = sum(1 for row in rows if not (_applied_as_sent(job) and _sent(row)))
        applied = sum(part.records_acked for part in plan.parts)
        rest = f" ({job.valid - applied:,} records not applied yet)" if applied else ""
        return (
            f"`bulkctl resume {job.id}` continues it from its {left:,} spooled "
            f"{'part' if left == 1 else 'parts'}{rest}, without reading the input again"
        )
    try:
        reread_paths(job)
    except UsageError as exc:
        return exc.message
    return f"`bulkctl resume {job.id}` reads its input again ({plan.problem})"


def _plan(job: JobRow, rows: list[PartRow], acked: dict[int, tuple[int, int]]) -> ResumePlan:
    """The plan for a job that is not running; a UsageError when resume must not touch it.

    For an API that applies what it accepts at once (xandr-bss jobs, request-based targets)
    what was accepted is never sent again: a part uploaded whole is skipped, a part of which
    the first requests were acknowledged goes on from the next one (`Part.requests_acked`).
    Only the rest needs to be on disk; when it is not, reading the input again would send
    what was applied a second time, so that is refused.
    """
    parts = [row.to_part() for row in rows]
    for part in parts:
        part.requests_acked, part.records_acked = acked.get(part.number, (0, 0))
    separate = _applied_as_sent(job)
    sent = [row for row in rows if _sent(row) or row.number in acked] if separate else []
    done = [row for row in sent if _sent(row)]
    if done and len(done) == len(rows) and job.options.get("packed"):
        if acked:
            raise UsageError(
                f"job {job.id} has nothing to resume: the API accepted every request",
                hint=f"`bulkctl status {job.id}` shows what was applied",
            )
        ids = ", ".join(str(row.part_id) for row in done)
        raise UsageError(
            f"job {job.id} has nothing to resume: every file was uploaded (remote jobs {ids})",
            hint=f"`bulkctl status {job.id} --wait` follows them until they are final",
        )
    problem = _spool_problem(job, [row for row in rows if not (separate and _sent(row))])
    if problem is not None and sent:
        if acked:
            applied = sum(records for _, records in acked.values())
            raise UsageError(
                f"job {job.id} cannot be resumed: {applied:,} of its records were applied "
                f"already and the rest cannot be sent from the spool ({problem}); reading the "
                "input again would send those records a second time",
                hint=f"`bulkctl status {job.id}` shows what was applied; push the rest again",
            )
        raise UsageError(
            f"job {job.id} cannot be resumed: {len(sent):,} of its files were uploaded already "
            f"and the rest cannot be sent from the spool ({problem}); reading the input again "
            "would upload those files a second time",
            hint=f"`bulkctl status {job.id}` lists the files sent; push the records not in "
            "them again",
        )
    return ResumePlan(job, parts, problem is None, problem)


def _applied_as_sent(job: JobRow) -> bool:
    """Whether the job's target applies what it accepts without a session to close: each
    uploaded part a job of its own (xandr-bss), or each request on its own (segment-objects)."""
    from bulkctl.targets import target_class

    try:
        cls = target_class(job.target)
    except UsageError:
        return False
    return cls.remote_jobs or cls.limits.batch is not None


def _sent(row: PartRow) -> bool:
    return bool(row.part_id) or row.status == "uploaded"


def _spool_problem(job: JobRow, rows: list[PartRow]) -> str | None:
    if not job.options.get("packed"):
        return "its input was not completely packed into parts"
    if not rows:
        return "it has no spooled parts"
    for row in rows:
        try:
            size = row.path.stat().st_size
        except OSError:
            return f"part {row.number} ({row.path}) is gone"
        if size != row.bytes_compressed or _sha256(row.path) != row.sha256:
            return f"part {row.number} ({row.path}) has changed since it was spooled"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parts_to_send(parts: list[Part], *, rejoined: bool, atomic: bool) -> list[Part]:
    """The parts to send, in an order that keeps every lane's parts in sequence.

    Into a rejoined session (or for an API whose parts are separate jobs): per lane, every part
    from the first one not acknowledged — a later part may have been acknowledged while an
    earlier one was not, and sending only the earlier one would put it after its successor.
    Into a new atomic session: all of them. A rejoined session whose parts were all
    acknowledged (the push was killed while finishing) still needs its finish, which the runner
    sends only after a part: the smallest lane tail goes again (a lane's last part applied twice
    ends as if applied once, since no later part holds its objects).
    """
    ordered = sorted(parts, key=lambda p: (p.lane, p.lane_seq))
    if atomic and not rejoined:
        chosen = ordered
    else:
        chosen = []
        behind: set[int] = set()
        for part in ordered:
            if part.lane in behind or not (part.part_id or part.uploaded):
                behind.add(part.lane)
                chosen.append(part)
        if atomic and not chosen and ordered:
            tails = {part.lane: part for part in ordered}  # each lane's last part
            chosen = [min(tails.values(), key=lambda p: (p.bytes_compressed, p.lane))]
    for part in chosen:  # what this run learns about them starts afresh
        part.part_id = None
        part.uploaded = False
        part.attempts = 0
        if atomic:  # a new session applies nothing of the old one
            part.requests_acked = part.records_acked = 0
    return chosen


def reread_paths(job: JobRow) -> tuple[str, ...]:
    """The inputs to read again, or a UsageError saying why they cannot be."""
    if STDIN in job.inputs or "-" in job.inputs:
        raise UsageError(
            f"job {job.id} read standard input and its spooled parts are not usable, so it "
            "cannot be resumed: run the push again with the data",
        )
    missing = [name for name in job.inputs if not Path(name).is_file()]
    if missing:
        raise UsageError(
            f"job {job.id} cannot be resumed: its spooled parts are not usable and its input "
            f"{', '.join(missing)} is gone"
        )
    return tuple(job.inputs)

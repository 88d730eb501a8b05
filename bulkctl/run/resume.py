"""`resume`: finish what an interrupted push left behind (killed, machine rebooted).

Two ways, chosen from what the job store and the disk still hold:

* The parts are all spooled and intact (sizes and sha256 as recorded): send them without
  reading the input again. For an atomic API (segment-bulk), when the push's session is still
  open the parts it has not acknowledged are sent into it — per lane, from the first part not
  acknowledged, so a lane's parts still arrive in order; when the session is gone a new one is
  started and every part is sent again. Sending a part twice is safe: the API merges objects by
  id, so an object applied twice ends as if applied once. For an API whose parts are separate
  jobs (xandr-bss), the parts not yet sent are sent.
* Otherwise the push is run again from its inputs, read the way the job recorded, under the
  same job id. An input read from standard input cannot be read again: that job cannot be
  resumed, and the error says so.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkctl.console import Console
from bulkctl.errors import BulkctlError, UsageError
from bulkctl.jobs.store import JobRow, JobStore, PartRow
from bulkctl.pack.parts import Part
from bulkctl.pack.spool import remove_empty_spool_dirs
from bulkctl.processes import owner, owner_running
from bulkctl.send.retry import RetryPolicy

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
    return _plan(job, store.list_parts(job.id))


def describe_resume(job: JobRow, rows: list[PartRow]) -> str:
    """What `bulkctl resume JOB` would do with a job that stopped, in one sentence."""
    try:
        plan = _plan(job, rows)
    except UsageError as exc:
        return exc.message
    if plan.spooled:
        left = sum(1 for row in rows if not (_separate_jobs(job) and row.part_id))
        return (
            f"`bulkctl resume {job.id}` continues it from its {left:,} spooled "
            f"{'part' if left == 1 else 'parts'}, without reading the input again"
        )
    try:
        reread_paths(job)
    except UsageError as exc:
        return exc.message
    return f"`bulkctl resume {job.id}` reads its input again ({plan.problem})"


def _plan(job: JobRow, rows: list[PartRow]) -> ResumePlan:
    """The plan for a job that is not running; a UsageError when resume must not touch it.

    For an API whose parts are separate jobs (xandr-bss) a part that was uploaded is never
    uploaded again: only the parts not sent need to be on disk, and when they are not, reading
    the input again would send the uploaded ones a second time, so that is refused.
    """
    parts = [row.to_part() for row in rows]
    separate = _separate_jobs(job)
    sent = [row for row in rows if row.part_id] if separate else []
    if sent and len(sent) == len(rows) and job.options.get("packed"):
        ids = ", ".join(str(row.part_id) for row in sent)
        raise UsageError(
            f"job {job.id} has nothing to resume: every file was uploaded (remote jobs {ids})",
            hint=f"`bulkctl status {job.id} --wait` follows them until they are final",
        )
    problem = _spool_problem(job, [row for row in rows if row not in sent])
    if problem is not None and sent:
        raise UsageError(
            f"job {job.id} cannot be resumed: {len(sent):,} of its files were uploaded already "
            f"and the rest cannot be sent from the spool ({problem}); reading the input again "
            "would upload those files a second time",
            hint=f"`bulkctl status {job.id}` lists the files sent; push the records not in "
            "them again",
        )
    return ResumePlan(job, parts, problem is None, problem)


def _separate_jobs(job: JobRow) -> bool:
    """Whether the job's target makes each uploaded part a job of its own (xandr-bss)."""
    from bulkctl.targets import target_class

    try:
        return target_class(job.target).remote_jobs
    except UsageError:
        return False


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
            if part.lane in behind or not part.part_id:
                behind.add(part.lane)
                chosen.append(part)
        if atomic and not chosen and ordered:
            tails = {part.lane: part for part in ordered}  # each lane's last part
            chosen = [min(tails.values(), key=lambda p: (p.bytes_compressed, p.lane))]
    for part in chosen:  # what this run learns about them starts afresh
        part.part_id = None
        part.attempts = 0
    return chosen


def claim(store: JobStore, job: JobRow, *, rereading: bool) -> None:
    """Record this process as the job's before sending: a second `resume` meanwhile is refused.

    When the input is read again its earlier parts are dropped, so the job is no longer
    packed until the new packing ends: a re-read cut short is not mistaken for a whole spool.
    """
    options = job.options | owner()
    if rereading:
        options["packed"] = False
    # Running again: until this run ends it has not finished (`status` tells it died otherwise).
    store.update_job(job.id, options=options, finished_at=None)


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


def read_settings_of(job: JobRow, paths: tuple[str, ...]) -> Any:
    """The ReadSettings a job was pushed with, from what the store recorded."""
    from bulkctl.read.sources import ReadOptions
    from bulkctl.records import ShapeOptions
    from bulkctl.run.inputs import ReadSettings
    from bulkctl.targets import target_class

    read: dict[str, Any] = job.options.get("read") or {}
    cls = target_class(job.target)
    return ReadSettings(
        paths=paths,
        target=job.target,
        target_options={k: v for k, v in job.options.items() if k in cls.options},
        read=ReadOptions(
            format=read.get("format", "auto"),
            id_field=read.get("id_field", "id"),
            delimiter=read.get("delimiter"),
            encoding=read.get("encoding", "utf-8"),
            types=read.get("types") or {},
            infer=read.get("infer", True),
        ),
        shape=ShapeOptions(collection=read.get("collection"), id_field=read.get("id_field", "id")),
        on_invalid=job.options.get("on_invalid", "fail"),
        rejects=Path(read["rejects"]) if read.get("rejects") else None,
        allow_empty=bool(read.get("allow_empty", False)),
    )


def rejoin(remote: Any, job: JobRow, policy: RetryPolicy, console: Console) -> bool:
    """Take over the job's open session when its API has sessions and it is still alive."""
    rejoin_session = getattr(remote, "rejoin", None)
    if not remote.atomic or not job.remote_id or rejoin_session is None:
        return False
    from bulkctl.jobs.remote import remote_call

    with remote_call(remote, policy, console) as call:
        try:
            return bool(rejoin_session(call, job.remote_id))
        except BulkctlError as exc:
            console.warn(f"cannot tell whether session {job.remote_id} is still open: {exc}")
            return False


def remove_spool_dirs(parts: list[Part]) -> None:
    """After a resumed push: the emptied spool directories go too (only bulkctl's own)."""
    remove_empty_spool_dirs(part.path.parent for part in parts)

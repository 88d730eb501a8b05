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

Which way, and which parts, is worked out from the store alone (`bulkctl.jobs.resume_plan`,
which `status` uses too to say what resume would do); this module does it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulkctl.console import Console
from bulkctl.errors import BulkctlError
from bulkctl.jobs.resume_plan import (
    DONE,
    ResumePlan,
    describe_resume,
    parts_to_send,
    plan_resume,
    reread_paths,
)
from bulkctl.jobs.store import JobRow, JobStore
from bulkctl.pack.parts import Part
from bulkctl.pack.spool import remove_empty_spool_dirs
from bulkctl.processes import owner
from bulkctl.send.remote import Remote, is_atomic
from bulkctl.send.retry import RetryPolicy

__all__ = [
    "DONE",
    "ResumePlan",
    "claim",
    "describe_resume",
    "parts_to_send",
    "plan_resume",
    "read_settings_of",
    "rejoin",
    "remove_spool_dirs",
    "reread_paths",
]


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


def read_settings_of(job: JobRow, paths: tuple[str, ...]) -> Any:
    """The ReadSettings a job was pushed with, from what the store recorded."""
    from bulkctl.read.options import ReadOptions
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


def rejoin(remote: Remote, job: JobRow, policy: RetryPolicy, console: Console) -> bool:
    """Take over the job's open session when its API has sessions and it is still alive."""
    rejoin_session = getattr(remote, "rejoin", None)
    if not is_atomic(remote) or not job.remote_id or rejoin_session is None:
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

"""`push` as a plain function: read → validate → pack → upload → record, for any caller.

Order of work (CLI.md, issue 3): by default the whole input is read, validated and packed
into spooled parts first, so an invalid record under `--on-invalid fail` means no session is
ever started. With `stream`, parts are uploaded while the input is still being read, and a
failure ends the open session with an error so nothing partial is applied.

Everything particular to one API comes from its target (`bulkctl.targets`): the record rules,
the limits the parts are packed to, and the `Remote` the runner drives. For targets with remote
jobs the push then learns the jobs' state, and with `wait` polls until they are final.
"""

from __future__ import annotations

__all__ = ["Push", "PushSettings", "PushSummary", "read_options_record"]

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bulkctl.console import Console
from bulkctl.errors import (
    ApiError,
    BulkctlError,
    CredentialsError,
    InterruptedError_,
    JobStoreError,
    LocalStateError,
)
from bulkctl.jobs.store import JobStore
from bulkctl.pack.packer import Packer, SpoolDir, remove_parts, write_manifest
from bulkctl.pack.parts import Part
from bulkctl.processes import owner
from bulkctl.run.inputs import InputRun, ReadSettings
from bulkctl.run.push_events import JobEvents
from bulkctl.run.push_requests import note_repeats, refuse_stream, rest_hint
from bulkctl.run.push_summary import PushSettings, PushSummary
from bulkctl.send.remote import JobsRemote, Limits, Remote, auth_key, is_atomic


class Push:
    """One push; `run()` does the work and leaves `summary` filled in whatever happens."""

    def __init__(self, settings: PushSettings, console: Console, store: JobStore) -> None:
        self.settings = settings
        self.console = console
        self.store = store
        self.summary = PushSummary(target=settings.read.target)
        self.input: InputRun | None = None
        self.target = settings.target
        self.remote: Remote | None = None
        self._sent = False  # every part was sent: what fails after is the wait, not the push
        self._uploading = False  # the runner was started: before, nothing can have been sent
        self._started = time.monotonic()

    def run(self) -> PushSummary:
        settings = self.settings
        try:
            if self._limits().batch is not None:
                self.summary.applied = 0
                refuse_stream(self.target.name, stream=settings.stream)
            if not settings.dry_run:
                self._connect()
            run = self.input = InputRun(settings.read, self.console, target=self.target)
        except BulkctlError as exc:
            self._fail("failed", str(exc))  # so --json still reports the error (CLI.md)
            raise
        try:
            self.summary.job = self._open_job(run)
        except BulkctlError as exc:
            self._fail("failed", str(exc), exc)
            raise
        self._guarded(lambda: self._run(run))
        return self.summary

    def _open_job(self, run: InputRun) -> str:
        """Record the job (resume: start it afresh, dropping what the new run supersedes)."""
        settings = self.settings
        if settings.resume_job is None:
            return self.store.create_job(
                target=settings.read.target,
                endpoint=self.summary.endpoint or "",
                inputs=[s.name for s in run.sources],
                options=self._options(),
            )
        job = settings.resume_job
        self._drop_superseded(job)
        self.store.delete_parts(job)
        self.store.update_job(job, status="created", error=None)
        return job

    def _drop_superseded(self, job: str) -> None:
        """Resume reads the input again: the earlier run's part files (recorded or not) go."""
        from bulkctl.pack.spool import default_base, remove_job_spools

        row = self.store.get_job(job)
        if row.options.get("out_dir"):
            return  # a --dry-run --out directory is the user's
        remove_parts([part.to_part() for part in self.store.list_parts(job)], directories=True)
        recorded = row.options.get("spool_dir")
        bases = {default_base(), self.settings.spool_dir or default_base()}
        remove_job_spools(job, self.store.path, bases | ({Path(recorded)} if recorded else set()))

    def send_stored(self, job: str, parts: list[Part], to_send: list[Part]) -> PushSummary:
        """For `resume`: send parts an earlier push spooled, without reading its input."""
        row = self.store.get_job(job)
        self.summary.stored_counts = {
            "records": row.records,
            "valid": row.valid,
            "rejected": row.rejected,
        }
        self.summary.job = job
        self.summary.parts = list(parts)
        self._connect()
        if self._limits().batch is not None:
            self.summary.applied = sum(p.records_acked for p in parts)
            self.summary.requests = sum(p.requests_acked for p in parts)
            note_repeats(self.remote, parts, self.console, self.summary.warnings)
        resend = parts if len(to_send) < len(parts) else None  # a session taken over
        self._guarded(
            lambda: self._upload(iter(to_send), streaming=False, resend=resend, known=to_send)
        )
        return self.summary

    def _guarded(self, work: Callable[[], None]) -> None:
        """Run the sending part of a push, recording how it ended whatever happens."""
        try:
            work()
        except KeyboardInterrupt:
            if self._sent:
                raise self._wait_ended("interrupted while waiting") from None
            text = self._interrupted_text()
            self._fail("interrupted", text)
            raise InterruptedError_(text) from None
        except BulkctlError as exc:
            if self._sent:
                self._note_error(str(exc))
                raise
            status = "interrupted" if isinstance(exc, InterruptedError_) else "failed"
            self._fail(status, str(exc), exc)
            raise
        finally:
            self.summary.elapsed_s = time.monotonic() - self._started

    def _interrupted_text(self) -> str:
        """What an interrupt outside the runner leaves (the runner says it for its own part).

        Before the runner started (reading, packing) nothing was sent and nothing opened.
        """
        if self._uploading:
            return "interrupted"
        if self.remote is None:
            return "interrupted while reading; nothing was sent (a dry run sends nothing)"
        return f"interrupted while reading; nothing was sent and no {self.remote.noun} was opened"

    def _connect(self) -> Remote:
        """The target's remote (built by the caller), its endpoint checked and recorded."""
        from bulkctl.redact import redact_url
        from bulkctl.send.http import check_endpoint

        remote = self.settings.remote
        if remote is None:
            raise BulkctlError("internal: no remote for a push")
        check_endpoint(remote.endpoint, allow_insecure_http=self.settings.allow_insecure_http)
        self.summary.endpoint = redact_url(remote.endpoint)
        self.remote = remote
        return remote

    def _wait_ended(self, why: str) -> InterruptedError_:
        text = f"{why}; the remote jobs go on: `bulkctl status {self.summary.job} --wait`"
        self._note_error(text)
        return InterruptedError_(text)

    def _note_error(self, error: str) -> None:
        """After the parts were sent: keep the remote status, record the error."""
        self.summary.error = error
        self._record_sent(error=error)

    def _record_sent(self, **changes: Any) -> None:
        """A store write after the data went out: its failure must not turn what the API
        accepted into a failed push, so it is a warning that says what happened."""
        if self.summary.job is None:
            return
        try:
            self.store.update_job(self.summary.job, **changes)
        except JobStoreError as exc:
            what = "was applied" if self.remote is None or is_atomic(self.remote) else "was sent"
            noun = self.remote.noun if self.remote is not None else "push"
            warning = (
                f"the data {what} ({noun} {self.summary.remote_id or '-'}, status "
                f"{self.summary.status}), but only its record could not be written: {exc}; "
                f"`bulkctl status {self.summary.job}` may show an earlier state"
            )
            self.summary.warnings.append(warning)
            self.console.warn(warning)

    def _options(self) -> dict[str, Any]:
        s = self.settings
        limits = self._limits()
        return {
            "lanes": 1 if limits.sequential else s.concurrency,
            "part_size": self._part_size(),
            "stream": s.stream,
            "dry_run": s.dry_run,
            "compression_level": s.compression_level,
            "on_invalid": s.read.on_invalid,
            "read": read_options_record(s.read),
            "out_dir": str(s.out_dir) if s.out_dir is not None else None,
            "spool_dir": str(s.spool_dir) if s.spool_dir is not None else None,
            **owner(),  # who runs it: `status` tells a push that died from a running one
            **{k: v for k, v in s.read.target_options.items() if v is not None},
            **(self.remote.job_options() if self.remote is not None else {}),
        }

    def _fail(self, status: str, error: str, cause: BaseException | None = None) -> None:
        """Note the failure in the summary and, unless the store is what failed, the store."""
        self.summary.status = status
        self.summary.error = error
        if self.summary.job is None or isinstance(cause, JobStoreError):
            return
        try:
            self.store.update_job(self.summary.job, status=status, error=error, **self._counts())
        except JobStoreError as exc:
            self.console.warn(f"this failure could not be recorded: {exc}")

    def _counts(self) -> dict[str, Any]:
        tally = self.input.tally if self.input else None
        records = {}
        if tally is not None:  # a resumed push reads no input: its stored counts stay
            records = {"records": tally.records, "valid": tally.valid, "rejected": tally.rejected}
        return records | {
            "parts": len(self.summary.parts),
            "bytes_uncompressed": sum(p.bytes_uncompressed for p in self.summary.parts),
            "bytes_sent": self.summary.bytes_sent,
        }

    def _run(self, run: InputRun) -> None:
        settings = self.settings
        keep_dir = settings.out_dir if settings.dry_run else None
        with (
            run,
            SpoolDir(settings.spool_dir, job=self.summary.job, store=self.store.path) as spool,
        ):
            directory = keep_dir or spool.path
            if keep_dir is not None:
                keep_dir.mkdir(parents=True, exist_ok=True)
            self.store.update_job(self.summary.job or "", status="packing")
            if settings.stream and not settings.dry_run:
                try:
                    self._upload(self._stream_parts(run, directory), streaming=True)
                except ApiError as exc:
                    if exc.hint and "resume JOB" in exc.hint and self.summary.job:
                        exc.hint = exc.hint.replace("resume JOB", f"resume {self.summary.job}")
                    raise
            else:
                parts = list(self._stream_parts(run, directory))
                run.check_rejections()
                self._mark_packed()
                if settings.dry_run:
                    self._dry_run(parts, keep_dir)
                    return
                batched = self._limits().batch is not None
                kept: tuple[type[BulkctlError], ...] = (ApiError, CredentialsError)
                if batched:  # what was applied stays: resume must find the rest on disk
                    kept += (InterruptedError_, LocalStateError)
                try:
                    note_repeats(self.remote, parts, self.console, self.summary.warnings)
                    self._upload(iter(parts), streaming=False, known=parts)
                except kept as exc:
                    if self._sent:  # every part was uploaded: what failed is the wait after
                        raise
                    if batched:
                        spool.keep = True
                        rest = rest_hint(self.summary, run.tally.valid, spool.path)
                        exc.hint = _join_hints(exc.hint, rest)
                        raise
                    # The API failed, not the input: keep the packed parts so `bulkctl resume`
                    # can send them later without the input (a piped dump cannot be re-read).
                    # Interrupts still remove them (issue 3); `jobs --prune` clears old ones.
                    spool.keep = True
                    exc.hint = _join_hints(
                        exc.hint,
                        f"the parts stay in {spool.path}: `bulkctl resume {self.summary.job}` "
                        "sends them again",
                    )
                    raise

    def _say_session_ended(self, exc: BulkctlError) -> None:
        """A local failure while sending: say what became of the session it cut short."""
        remote = self.remote
        if remote is not None and is_atomic(remote) and self.summary.remote_id:
            exc.message += (
                f"; {remote.noun} {self.summary.remote_id} was ended with an error, so nothing "
                "of it is applied"
            )
            exc.args = (exc.message,)

    def _mark_packed(self) -> None:
        """Every part is on disk: from here `resume` can send them without the input."""
        if self.summary.job is not None:
            job = self.store.get_job(self.summary.job)
            self.store.update_job(
                self.summary.job, options=job.options | {"packed": True}, **self._counts()
            )

    def _limits(self) -> Limits:
        return self.target.limits

    def _part_size(self) -> int:
        return self.settings.part_size or self._limits().max_part_bytes

    def _stream_parts(self, run: InputRun, directory: Path) -> Iterator[Part]:
        """Pack valid lines into parts, yielding each part as soon as it is closed."""
        settings = self.settings
        limits = self._limits()
        with Packer(
            directory,
            self._part_size(),
            1 if limits.sequential else settings.concurrency,
            settings.compression_level,
            max_records=limits.max_part_records,
            max_file_bytes=limits.max_file_bytes,
            one_collection=limits.one_collection_per_part,
            compress=limits.gzip,
            suffix=limits.file_suffix,
        ) as packer:
            if run.chunked and limits.max_file_bytes is None:
                # Workers parse, check and compress a chunk's lines per lane (bulkctl.fast.lines).
                level = settings.compression_level if limits.gzip else None
                for block in run.blocks(lanes=packer.lanes, level=level):
                    closed = packer.add_block(block)
                    if closed:
                        yield from self._record_parts(closed)
            else:
                add = packer.add
                for collection, record_id, line in run.lines():
                    closed = add(collection, record_id, line)
                    if closed:
                        yield from self._record_parts(closed)
            yield from self._record_parts(packer.close())
        run.check_records()  # before anything is opened: `run_session` waits for a first part

    def _record_parts(self, parts: list[Part]) -> list[Part]:
        self.summary.parts.extend(parts)
        if self.summary.job is not None:
            self.store.add_parts(self.summary.job, parts)
        return parts

    def _dry_run(self, parts: list[Part], out_dir: Path | None) -> None:
        self.summary.status = "dry_run"
        if out_dir is not None:
            write_manifest(parts, out_dir, **self._counts())
            self.summary.out_dir = str(out_dir)
        self.store.update_job(self.summary.job or "", status="dry_run", **self._counts())

    def _upload(
        self,
        parts: Iterator[Part],
        *,
        streaming: bool,
        resend: list[Part] | None = None,
        known: list[Part] | None = None,
    ) -> None:
        """Send the parts; `known`: all of them when packed before (the display's total)."""
        from bulkctl.report.progress import upload_progress
        from bulkctl.send.http import Deadlines, build_client
        from bulkctl.send.inflight import slots_for
        from bulkctl.send.session import run_session

        settings = self.settings
        remote = self.remote
        if remote is None:  # built in run() for every real push
            raise BulkctlError("internal: no remote for a push")
        progress = upload_progress(self.console, known)
        self._uploading = True
        events = JobEvents(
            self.summary, self.store, self.console, progress, delete_after_upload=streaming
        )
        self.store.update_job(self.summary.job or "", status="uploading")
        key = auth_key(remote)
        shared = slots_for(remote.endpoint, key, self.console.warn)
        try:
            with build_client(remote.auth) as client:
                result = run_session(
                    client,
                    remote,
                    parts,
                    concurrency=1 if self._limits().sequential else settings.concurrency,
                    policy=settings.retry,
                    events=events,
                    deadlines=Deadlines.from_env(),
                    resend=resend,
                    shared=shared,
                )
        except LocalStateError as exc:  # the spool disk filled up mid-stream, the store broke
            self._say_session_ended(exc)
            raise
        finally:
            events.flush()  # every acknowledged request recorded, however the run ended
            progress.close()
            if shared is not None:
                shared.close()
        if not result.parts:
            self.console.info(f"nothing was sent: no valid records, so no {remote.noun} was opened")
        self.summary.bytes_sent = result.bytes_sent
        if result.sync_id is not None:  # APIs without sessions (xandr) keep what they had
            self.summary.remote_id = result.sync_id
        self.summary.status = "finished"
        self._sent = True
        self._record_sent(status="finished", remote_id=self.summary.remote_id, **self._counts())
        remove_parts(self.summary.parts)
        if isinstance(remote, JobsRemote) and result.parts:
            ids = [p.part_id for p in result.parts if p.part_id]
            self._follow(remote, ids)

    def _follow(self, remote: JobsRemote, ids: list[str]) -> None:
        """Learn the remote jobs' state; with `wait`, poll until final (exit 5 if failed)."""
        from bulkctl.jobs.remote import (
            WaitLines,
            append_error_lines,
            fetch_all,
            remote_call,
            wait_for_jobs,
        )

        settings = self.settings
        with remote_call(remote, settings.retry, self.console) as call:
            if settings.wait:
                timeout = settings.wait_timeout
                if timeout is None:
                    timeout = self.target.wait_timeout
                label = f"{remote.noun} {ids[0]}" + (f" (+{len(ids) - 1})" if len(ids) > 1 else "")
                display = WaitLines(self.console, label)
                try:
                    state = wait_for_jobs(
                        call,
                        remote,
                        ids,
                        timeout=timeout or None,
                        interval=settings.wait_interval,
                        on_change=display,
                        job=self.summary.job,
                    )
                finally:
                    display.close()
            else:
                try:
                    state = fetch_all(call, remote, ids, None)
                except InterruptedError_:
                    raise
                except BulkctlError as exc:  # only a look: the upload itself succeeded
                    self.console.warn(f"the state of {remote.noun} {ids[0]} is unknown: {exc}")
                    return
        self.summary.status = state.outcome
        self.summary.remote = state.as_dict()
        self._record_sent(status=state.outcome)
        rejects = settings.read.rejects
        if state.final and rejects is not None and any(j.error_lines for j in state.jobs):
            append_error_lines(rejects, state)
        failure = state.failure(self.summary.job)
        if failure is not None:
            raise failure


def _join_hints(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def read_options_record(read: ReadSettings) -> dict[str, Any]:
    """How the input was read, for the job store: `resume` reads it again the same way."""
    options = read.read
    return {
        "format": options.format,
        "id_field": options.id_field,
        "delimiter": options.delimiter,
        "encoding": options.encoding,
        "types": dict(options.types),
        "infer": options.infer,
        "collection": read.shape.collection,
        "rejects": str(read.rejects) if read.rejects is not None else None,
        "allow_empty": read.allow_empty,
    }

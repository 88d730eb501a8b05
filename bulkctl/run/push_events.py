"""What the runner tells a push as it sends: progress on screen, acknowledgements in the store."""

from __future__ import annotations

import time
from typing import Any

from bulkctl.console import Console
from bulkctl.jobs.store import JobStore
from bulkctl.pack.batches import Batch
from bulkctl.pack.packer import remove_parts
from bulkctl.pack.parts import Part
from bulkctl.run.push_summary import PushSummary
from bulkctl.send.remote import SendResult

ACK_FLUSH_S = 0.05  # most seconds an acknowledged request waits to be recorded


class JobEvents:
    """Session events → the progress display, the push's summary and the job store."""

    def __init__(
        self,
        summary: PushSummary,
        store: JobStore,
        console: Console,
        progress: Any,
        *,
        delete_after_upload: bool,
    ) -> None:
        self.summary = summary
        self.store = store
        self.console = console
        self.progress = progress
        self.delete_after_upload = delete_after_upload
        self._acks: list[tuple[int, int, int, str | None]] = []
        self._flushed = time.monotonic()

    def session_started(self, sync_id: str) -> None:
        self.summary.remote_id = sync_id
        self.store.update_job(self.summary.job or "", remote_id=sync_id)
        self.progress.session_started(sync_id)

    def part_started(self, part: Part) -> None:
        self.progress.part_started(part)

    def part_progress(self, part: Part, bytes_sent: int) -> None:
        self.progress.part_progress(part, bytes_sent)

    def flush(self) -> None:
        """Write the acknowledged requests not recorded yet."""
        self._flushed = time.monotonic()
        if self._acks:
            acks, self._acks = self._acks, []
            self.store.add_requests(self.summary.job or "", acks)

    def part_done(self, part: Part) -> None:
        self.flush()
        if not part.requests_acked:  # a part sent as requests counted them one by one
            self.summary.bytes_sent += part.bytes_compressed
        self.store.mark_part_uploaded(
            self.summary.job or "", part.number, part.part_id or "", part.attempts
        )
        if self.delete_after_upload:
            remove_parts([part])
        self.progress.part_done(part)

    def request_done(self, part: Part, batch: Batch, result: SendResult) -> None:
        """The API accepted one request, so applied its records.

        Recorded in groups, at most `ACK_FLUSH_S` apart (and before its part is marked
        uploaded, and when the run ends however it ends): a process killed outright loses at
        most that much of the record, and `resume` sends those requests again, which the
        API's merge by id makes harmless.
        """
        records = batch.records if result.applied is None else result.applied
        self._acks.append((part.number, batch.index, records, result.remote_id))
        now = time.monotonic()
        if now - self._flushed >= ACK_FLUSH_S:
            self.flush()
        self.summary.applied = (self.summary.applied or 0) + records
        self.summary.bytes_sent += batch.size
        self.summary.requests += 1
        self.progress.part_progress(part, batch.through)

    def retry(self, event: Any) -> None:
        self.progress.retry(event)

    def keep_alive(self) -> None:
        self.progress.keep_alive()

    def pacing(self, part: Part, seconds: float) -> None:
        self.progress.pacing(part, seconds)

    def finishing(self, error: str) -> None:
        self.progress.finishing(error)

    def restarting(self, why: str) -> None:
        """Every part goes again in a new session: none counts as acknowledged any more."""
        self.console.warn(why)
        self.summary.bytes_sent = 0
        if self.summary.job is not None:
            self.store.reset_parts(self.summary.job)

"""Sending one spooled part as the many small requests of an API without sessions.

The part is cut into batches (`bulkctl.pack.batches`) and they go one after another, so a
lane never has two requests in flight and no request carries an id that a still-unanswered
one carries. Each accepted batch is reported (`on_batch`) the moment its answer arrives,
so the job store knows exactly which records were applied if a later one fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bulkctl.pack.batches import Batch, batches_of
from bulkctl.pack.parts import Part
from bulkctl.send.remote import BatchRemote, Call, ItemError, SendResult
from bulkctl.sizes import counted

OnBatch = Callable[[Batch, SendResult], None]


def send_batches(
    call: Call,
    remote: BatchRemote,
    part: Part,
    *,
    skip: int = 0,
    on_batch: OnBatch | None = None,
) -> SendResult:
    """Send the batches of `part` from the `skip`-th on; what the API answered to all of them.

    `applied` counts the records of the batches sent now.
    """
    applied = 0
    errors: list[ItemError] = []
    for batch in batches_of(part, remote.batching, skip=skip):
        result = remote.send_batch(call, batch)
        applied += batch.records if result.applied is None else result.applied
        errors.extend(result.errors)
        if on_batch is not None:
            on_batch(batch, result)
    return SendResult(None, applied, tuple(errors))


class Requests:
    """The requests a request-based remote accepted in one run, counted across lanes."""

    def __init__(self, remote: BatchRemote) -> None:
        self.remote = remote
        self._lock = threading.Lock()
        self.records = 0
        self.requests = 0

    def send(
        self, call: Call, part: Part, done: Callable[[Part, Batch, SendResult], None]
    ) -> SendResult:
        """Send what of `part` was not acknowledged before; `done` hears of each accepted one."""

        def acknowledged(batch: Batch, result: SendResult) -> None:
            records = batch.records if result.applied is None else result.applied
            with self._lock:
                self.records += records
                self.requests += 1
            part.requests_acked = batch.index + 1
            part.records_acked += records
            done(part, batch, result)

        return send_batches(
            call, self.remote, part, skip=part.requests_acked, on_batch=acknowledged
        )

    def note(self) -> str:
        """What a failed run leaves applied, for its error message."""
        with self._lock:
            records, requests = self.records, self.requests
        if not requests:
            return "no request was accepted, so nothing was applied"
        return (
            f"{counted(records, 'record')} in {counted(requests, 'accepted request')} "
            "were applied and stay"
        )

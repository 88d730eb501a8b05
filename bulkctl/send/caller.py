"""Every request of a run: retried within the policy, inside the limit on requests in flight.

The runner (`bulkctl.send.session`) and the remote-job commands (`bulkctl.jobs.remote`) send their
requests through one `Caller`, and hand targets a plain `call(spec) -> Reply` made by
`Caller.bind`; so targets never see retries, deadlines, the semaphore or cancellation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from bulkctl.errors import InterruptedError_
from bulkctl.send.http import Deadlines, Reply, RequestSpec, send
from bulkctl.send.inflight import MAX_IN_FLIGHT, AdaptiveLimit, SharedSlots
from bulkctl.send.lanes import POLL
from bulkctl.send.remote import Call
from bulkctl.send.retry import (
    RETRY_AFTER,
    Attempted,
    RetryableFailure,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    classify_status,
)

__all__ = ["Call", "CallLog", "Caller", "never"]


def never() -> bool:
    return False


@dataclass
class CallLog:
    """What the last request made through a bound call learned: for judging ambiguity."""

    label: str = ""
    status_code: int | None = None
    maybe_applied_before: bool = False


@dataclass
class Caller:
    """Sends `RequestSpec`s with `client`, retrying as `policy` says, at most 20 at once."""

    client: httpx.Client
    policy: RetryPolicy
    deadlines: Deadlines = field(default_factory=Deadlines)
    on_retry: Callable[[RetryEvent], None] = field(default=lambda event: None)
    slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_IN_FLIGHT)
    )
    uploads: AdaptiveLimit | None = None  # lowered on a 429 (requests carrying records)
    shared: SharedSlots | None = None  # the key's limit, shared with other processes
    wait_headers: Sequence[str] = RETRY_AFTER  # the remote's `rate_limit_headers`

    def request(
        self,
        spec: RequestSpec,
        deadline_s: float,
        stopped: Callable[[], bool],
        *,
        on_progress: Callable[[int], None] | None = None,
        on_attempt: Callable[[int], None] | None = None,
        answer_s: float | None = None,
        stop_if_pending: bool = False,
    ) -> Attempted[Reply]:
        """One request with its retries; the answer that ended them (a 2xx or a final status).

        `stop_if_pending`: an attempt that may land later is not retried (`OutcomePending`).
        """

        limit = self.uploads if spec.body_file is not None or spec.carries_data else None

        def attempt(number: int) -> Reply:
            if on_attempt is not None:
                on_attempt(number)
            window = limit.acquire(stopped) if limit is not None else 0
            throttled = False
            try:
                reply = self._send(spec, deadline_s, stopped, on_progress, answer_s)
                throttled = reply.status_code == 429
            finally:
                if limit is not None:
                    limit.release(window, throttled=throttled)
            failure = classify_status(
                reply.status_code, reply.headers, wait_headers=self.wait_headers
            )
            if failure is not None:
                raise RetryableFailure(failure)
            return reply

        def sleep(seconds: float) -> None:
            end = time.monotonic() + seconds
            while not stopped() and (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))

        return call_with_retries(
            attempt,
            policy=self.policy,
            label=spec.label,
            on_retry=self.on_retry,
            sleep=sleep,
            stopped=stopped,
            stop_if_pending=stop_if_pending,
        )

    def _send(
        self,
        spec: RequestSpec,
        deadline_s: float,
        stopped: Callable[[], bool],
        on_progress: Callable[[int], None] | None,
        answer_s: float | None,
    ) -> Reply:
        """One attempt, holding a place in this process's 20 and in the key's shared 20."""
        while not self.slots.acquire(timeout=POLL):
            if stopped():
                raise InterruptedError_("interrupted")
        try:
            slot = self.shared.acquire(stopped) if self.shared is not None else None
            try:
                return send(
                    self.client,
                    spec,
                    deadline_s=deadline_s,
                    stopped=stopped,
                    on_progress=on_progress,
                    answer_s=answer_s,
                )
            finally:
                if slot is not None and self.shared is not None:
                    self.shared.release(slot)
        finally:
            self.slots.release()

    def bind(
        self,
        stopped: Callable[[], bool] = never,
        *,
        upload_size: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_attempt: Callable[[int], None] | None = None,
        log: CallLog | None = None,
        stop_if_pending: bool = False,
    ) -> Call:
        """A `call(spec) -> Reply` for a target: requests with a body file get the upload
        deadline for `upload_size` bytes, progress and attempt counting (and, with
        `stop_if_pending`, no retry of an attempt that may land later); others the control
        deadline."""

        def call(spec: RequestSpec) -> Reply:
            with_file = spec.body_file is not None
            if with_file and upload_size is not None:
                deadline = self.deadlines.upload(upload_size)
                answer = self.deadlines.answer_for(upload_size)
            else:
                deadline = self.deadlines.control
                answer = self.deadlines.answer_for(None)
            if log is not None:
                log.label, log.status_code, log.maybe_applied_before = spec.label, None, False
            attempted = self.request(
                spec,
                deadline,
                stopped,
                on_progress=on_progress if with_file else None,
                on_attempt=on_attempt if with_file else None,
                answer_s=answer,
                stop_if_pending=stop_if_pending and with_file,
            )
            if log is not None:
                log.status_code = attempted.value.status_code
                log.maybe_applied_before = attempted.maybe_applied_before
            return attempted.value

        return call

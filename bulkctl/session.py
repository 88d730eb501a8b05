"""One Segment Bulk session: start → upload every part → finish, with keep-alive and retries.

Order: parts carry a `lane` and a `lane_seq`. A lane's parts are uploaded strictly one after
another in `lane_seq` order; different lanes go in parallel. Every version of one object lives
in one lane, so the API's per-id outcome is the input order at any concurrency.

Requests in flight: the API allows 20 at once per write key. One semaphore of 20 is held
around every request (uploads, keep-alive, start, finish), so the limit holds whatever the
threads do. Uploads run on at most min(concurrency, 19) worker threads, so a keep-alive always
finds a free slot even while 19 long uploads are in flight.

Failure: once a session has started, any failure (an upload that retries did not save, the
parts iterator raising, `cancel`, Ctrl-C) stops dispatching and ends the session with `finish`
and a non-empty `error`, so nothing partial is applied; then the error is raised.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ParamSpec, Protocol

import httpx

from bulkctl.errors import (
    ApiError,
    BulkctlError,
    InterruptedError_,
    OutcomeUnknownError,
    UsageError,
)
from bulkctl.httpclient import Deadlines, Reply, RequestSpec, check_endpoint, send
from bulkctl.parts import Part
from bulkctl.retry import (
    Attempted,
    RetriesExhausted,
    RetryableFailure,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    classify_status,
)
from bulkctl.targets import segment_bulk

P = ParamSpec("P")

MAX_IN_FLIGHT = 20  # the API's limit of simultaneous requests per write key
MAX_CONCURRENCY = 20
ERROR_TEXT_LIMIT = 500  # most characters of the `error` sent with a failed finish
_POLL = 0.2  # seconds the main thread waits at a time, so Ctrl-C is handled promptly


class SessionEvents(Protocol):
    """What a display learns about a session. Calls are serialized: never two at once."""

    def session_started(self, sync_id: str) -> None: ...
    def part_started(self, part: Part) -> None: ...
    def part_progress(self, part: Part, bytes_sent: int) -> None: ...  # restarts on a retry
    def part_done(self, part: Part) -> None: ...
    def retry(self, event: RetryEvent) -> None: ...
    def keep_alive(self) -> None: ...
    def finishing(self, error_text: str) -> None: ...  # "" on success


class NullEvents:
    """The do-nothing display, for quiet runs and tests: every method ignores its event."""

    def session_started(self, sync_id: str) -> None: ...
    def part_started(self, part: Part) -> None: ...
    def part_progress(self, part: Part, bytes_sent: int) -> None: ...
    def part_done(self, part: Part) -> None: ...
    def retry(self, event: RetryEvent) -> None: ...
    def keep_alive(self) -> None: ...
    def finishing(self, error_text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionResult:
    """A finished session: its id, the uploaded parts (by number) and the gzip bytes sent."""

    sync_id: str | None  # None when there were no parts, so no session was started
    parts: tuple[Part, ...]  # with part_id and attempts filled in
    bytes_sent: int  # gzip bytes of the uploaded parts, each counted once


class _Lanes:
    """Per-lane queues: a lane's next part is handed out only once its previous one is done."""

    def __init__(self, max_queued: int | None) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[int, deque[Part]] = {}
        self._ready: deque[int] = deque()  # lanes with a waiting part and no upload in flight
        self._busy: set[int] = set()
        self._last_seq: dict[int, int] = {}
        self._n_waiting = 0
        self._queued = 0  # added and not yet done
        self._max_queued = max_queued
        self._closed = False
        self._stopped = False

    def add(self, part: Part) -> None:
        with self._cond:
            last = self._last_seq.get(part.lane)
            if last is not None and part.lane_seq <= last:
                raise ValueError(
                    f"part {part.number} has lane_seq {part.lane_seq} after {last} in lane "
                    f"{part.lane}: a lane's parts must come in lane_seq order"
                )
            self._last_seq[part.lane] = part.lane_seq
            queue = self._waiting.setdefault(part.lane, deque())
            queue.append(part)
            if len(queue) == 1 and part.lane not in self._busy:
                self._ready.append(part.lane)
            self._n_waiting += 1
            self._queued += 1
            self._cond.notify_all()

    def take(self, stopped: Callable[[], bool]) -> Part | None:
        """The next part to upload, or None when there is nothing more to do."""
        with self._cond:
            while True:
                if self._stopped or stopped():
                    return None
                if self._ready:
                    lane = self._ready.popleft()
                    self._busy.add(lane)
                    self._n_waiting -= 1
                    return self._waiting[lane].popleft()
                if self._closed and self._n_waiting == 0:
                    return None
                self._cond.wait(_POLL)

    def done(self, part: Part) -> None:
        with self._cond:
            self._busy.discard(part.lane)
            if self._waiting[part.lane]:
                self._ready.append(part.lane)
            self._queued -= 1
            self._cond.notify_all()

    def has_room(self) -> bool:
        with self._cond:
            return self._max_queued is None or self._queued < self._max_queued

    def idle(self) -> bool:
        with self._cond:
            return self._queued == 0

    def wait(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


def _never() -> bool:
    return False


def _join(threads: Iterable[threading.Thread], timeout: float | None) -> None:
    """Join with short waits (Ctrl-C stays prompt); give up on stragglers after `timeout`."""
    end = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        while thread.is_alive() and (end is None or time.monotonic() < end):
            thread.join(_POLL)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BulkctlError):
        text = f"bulkctl: {exc.message}"
    else:
        text = f"bulkctl: internal error ({type(exc).__name__})"
    return text[:ERROR_TEXT_LIMIT]


class _Session:
    """The state of one run; `run_bulk_session` is its only user."""

    def __init__(
        self,
        client: httpx.Client,
        endpoint: str,
        *,
        workers: int,
        keep_alive_interval: float,
        policy: RetryPolicy,
        events: SessionEvents,
        cancel: threading.Event,
        deadlines: Deadlines,
        max_queued: int | None,
        abort_grace: float,
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._workers = workers
        self._keep_alive_interval = keep_alive_interval
        self._policy = policy
        self._events = events
        self._events_lock = threading.Lock()
        self._cancel = cancel
        self._deadlines = deadlines
        self._abort_grace = abort_grace
        self._lanes = _Lanes(max_queued)
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._halt = threading.Event()  # a failure happened: workers and keep-alive stop
        self._keep_alive_stop = threading.Event()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._uploaded: list[Part] = []
        self._sync_id = ""

    # -- the main thread ------------------------------------------------------------------

    def run(self, parts: Iterable[Part]) -> SessionResult:
        iterator = iter(parts)
        try:
            # Read up to the first part before starting: an input that fails early, or is
            # empty, sends nothing at all.
            first = next(iterator, None)
            if first is None:
                return SessionResult(None, (), 0)
            self._sync_id = self._start()
        except KeyboardInterrupt:
            raise InterruptedError_("interrupted before a session was started") from None
        threads: list[threading.Thread] = []
        try:
            self._emit(self._events.session_started, self._sync_id)
            threads = self._launch()
            self._dispatch(first, iterator)
            self._keep_alive_stop.set()  # no keep-alive may overtake the finish
            _join(threads, None)
        except BaseException as exc:
            replacement = self._abort(exc, threads)
            if replacement is exc:
                raise
            raise replacement from None
        self._finish()
        parts_done = tuple(sorted(self._uploaded, key=lambda p: p.number))
        return SessionResult(self._sync_id, parts_done, sum(p.bytes_compressed for p in parts_done))

    def _start(self) -> str:
        if self._cancel.is_set():
            raise InterruptedError_("interrupted before a session was started")
        # A retried start may leave an orphan session behind (an earlier attempt may have
        # opened one whose answer was lost). That is acceptable: it holds no parts, so
        # nothing can come of it, and the server lets it expire.
        spec = segment_bulk.start_request(self._endpoint)
        attempted = self._request(spec, self._deadlines.control, self._cancel.is_set)
        return segment_bulk.parse_start(attempted.value)

    def _launch(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._work, name=f"bulkctl-upload-{n}", daemon=True)
            for n in range(self._workers)
        ]
        threads.append(
            threading.Thread(target=self._keep_alive, name="bulkctl-keep-alive", daemon=True)
        )
        for thread in threads:
            thread.start()
        return threads

    def _dispatch(self, first: Part, rest: Iterator[Part]) -> None:
        for part in itertools.chain((first,), rest):
            self._check()
            self._lanes.add(part)
            self._wait_until(self._lanes.has_room)
        self._check()
        self._lanes.close()
        self._wait_until(self._lanes.idle)

    def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._check()
            self._lanes.wait(_POLL)

    def _check(self) -> None:
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise failure
        if self._cancel.is_set():
            raise InterruptedError_("interrupted")

    def _abort(self, exc: BaseException, threads: list[threading.Thread]) -> BaseException:
        """Stop everything, end the session with an error, and say what to raise."""
        self._fail(exc)
        self._keep_alive_stop.set()
        interrupted = isinstance(exc, (KeyboardInterrupt, InterruptedError_))
        text = "interrupted" if interrupted else _error_text(exc)
        _join(threads, self._abort_grace)
        self._emit(self._events.finishing, text)
        trouble = self._end_with_error(text)
        if interrupted:
            if trouble:
                return InterruptedError_(f"interrupted; {trouble}")
            return InterruptedError_(
                f"interrupted: session {self._sync_id} was ended with an error, "
                "so nothing of it is applied"
            )
        if trouble and isinstance(exc, BulkctlError):
            exc.message = f"{exc.message}; {trouble}"
            exc.args = (exc.message,)
        return exc

    def _end_with_error(self, text: str) -> str | None:
        """Send finish with a non-empty error; describe the failure to do so, if any."""
        spec = segment_bulk.finish_request(self._endpoint, self._sync_id, text)
        try:
            attempted = self._request(spec, self._deadlines.control, _never)
            segment_bulk.parse_finish(attempted.value, self._sync_id)
        except BulkctlError as exc:
            return (
                f"ending session {self._sync_id} with an error failed too ({exc.message}), "
                "so it was left open"
            )
        return None

    def _finish(self) -> None:
        """finish with an empty error; never report a success that was not seen."""
        self._emit(self._events.finishing, "")
        spec = segment_bulk.finish_request(self._endpoint, self._sync_id, "")
        unknown = (
            f"the finish request of session {self._sync_id} may or may not have been "
            "applied: outcome unknown"
        )
        hint = "check the warehouse before pushing again"
        try:
            attempted = self._request(spec, self._deadlines.control, self._cancel.is_set)
        except (KeyboardInterrupt, InterruptedError_):
            raise InterruptedError_(f"interrupted while finishing; {unknown}", hint=hint) from None
        except RetriesExhausted as exc:
            if exc.maybe_applied:
                raise OutcomeUnknownError(
                    f"{unknown} ({exc.message})", hint=hint, attempts=exc.attempts
                ) from None
            raise ApiError(
                f"{exc.message}; session {self._sync_id} was left unfinished",
                status_code=exc.status_code,
                attempts=exc.attempts,
            ) from None
        reply = attempted.value
        if not 200 <= reply.status_code <= 299 and attempted.maybe_applied_before:
            # An earlier attempt went out and its answer was lost; a refusal now (e.g. 400,
            # session already finished) may mean that attempt was applied.
            raise OutcomeUnknownError(
                f"{unknown} (an attempt got no answer, then HTTP {reply.status_code})",
                hint=hint,
                status_code=reply.status_code,
                attempts=attempted.attempts,
            )
        segment_bulk.parse_finish(reply, self._sync_id)

    def _emit(self, handler: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """Call one events method under a lock: displays need not be thread-safe."""
        with self._events_lock:
            handler(*args, **kwargs)

    # -- worker threads -------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """Record the first failure and stop workers and keep-alive."""
        with self._lock:
            if self._failure is None:
                self._failure = exc
        self._halt.set()
        self._lanes.stop()

    def _stopping(self) -> bool:
        return self._halt.is_set() or self._cancel.is_set()

    def _work(self) -> None:
        try:
            while (part := self._lanes.take(self._stopping)) is not None:
                self._upload(part)
                with self._lock:
                    self._uploaded.append(part)
                self._lanes.done(part)
        except InterruptedError_ as exc:
            if not self._halt.is_set():
                self._fail(exc)
        except BulkctlError as exc:
            self._fail(exc)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _upload(self, part: Part) -> None:
        self._emit(self._events.part_started, part)
        try:
            size = part.path.stat().st_size
        except OSError as exc:
            raise BulkctlError(
                f"cannot read spooled part {part.number} ({part.path}): {exc.strerror}"
            ) from None
        if size != part.bytes_compressed:
            raise BulkctlError(
                f"spooled part {part.number} ({part.path}) has {size} bytes instead of "
                f"{part.bytes_compressed}: it changed on disk"
            )

        def count(number: int) -> None:
            part.attempts += 1

        # Each attempt re-opens the spooled file and sends the identical bytes. Re-sending
        # after an ambiguous failure (sent, then no answer) is safe: the API merges objects
        # by id, so a part applied twice ends as if applied once, and this lane's next part
        # is not sent until this one succeeded, so no newer version can be overtaken.
        attempted = self._request(
            segment_bulk.upload_request(self._endpoint, self._sync_id, part),
            self._deadlines.upload(part.bytes_compressed),
            self._stopping,
            on_progress=lambda sent: self._emit(self._events.part_progress, part, sent),
            on_attempt=count,
        )
        part.part_id = segment_bulk.parse_upload(attempted.value, part)
        self._emit(self._events.part_done, part)

    def _keep_alive(self) -> None:
        spec = segment_bulk.keep_alive_request(self._endpoint, self._sync_id)

        def stopped() -> bool:
            return self._keep_alive_stop.is_set() or self._stopping()

        try:
            while not self._keep_alive_stop.wait(self._keep_alive_interval):
                if stopped():
                    return
                # Retried like any request; only when retries are exhausted (or the answer
                # is a refusal) does a keep-alive failure end the session.
                attempted = self._request(spec, self._deadlines.control, stopped)
                segment_bulk.parse_keep_alive(attempted.value, self._sync_id)
                self._emit(self._events.keep_alive)
        except InterruptedError_:
            return
        except BulkctlError as exc:
            if not stopped():
                self._fail(exc)
        except BaseException as exc:
            self._fail(exc)
            raise

    # -- every request --------------------------------------------------------------------

    def _request(
        self,
        spec: RequestSpec,
        deadline_s: float,
        stopped: Callable[[], bool],
        *,
        on_progress: Callable[[int], None] | None = None,
        on_attempt: Callable[[int], None] | None = None,
    ) -> Attempted[Reply]:
        def attempt(number: int) -> Reply:
            if on_attempt is not None:
                on_attempt(number)
            while not self._slots.acquire(timeout=_POLL):
                if stopped():
                    raise InterruptedError_("interrupted")
            try:
                reply = send(
                    self._client,
                    spec,
                    deadline_s=deadline_s,
                    stopped=stopped,
                    on_progress=on_progress,
                )
            finally:
                self._slots.release()
            failure = classify_status(reply.status_code, reply.headers)
            if failure is not None:
                raise RetryableFailure(failure)
            return reply

        def sleep(seconds: float) -> None:
            end = time.monotonic() + seconds
            while not stopped() and (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))

        return call_with_retries(
            attempt,
            policy=self._policy,
            label=spec.label,
            on_retry=lambda event: self._emit(self._events.retry, event),
            sleep=sleep,
            stopped=stopped,
        )


def run_bulk_session(
    client: httpx.Client,
    parts: Iterable[Part],
    *,
    endpoint: str = segment_bulk.DEFAULT_ENDPOINT,
    concurrency: int = 4,
    keep_alive_interval: float = 300.0,
    policy: RetryPolicy | None = None,
    events: SessionEvents | None = None,
    cancel: threading.Event | None = None,
    deadlines: Deadlines = Deadlines(),
    allow_insecure_http: bool = False,
    max_queued_parts: int | None = None,
    abort_grace: float = 5.0,
) -> SessionResult:
    """Upload `parts` in one Segment Bulk session and finish it; see the module docstring.

    `parts` may be a live iterator that yields parts while input is still being read (and may
    raise). Unless `max_queued_parts` says otherwise, a live iterator is held back while
    4 x the upload threads' worth of parts wait, so a streamed input is not all spooled at
    once; a sequence is dispatched freely. `cancel` (e.g. set on SIGTERM) ends the run like
    Ctrl-C. `abort_grace` bounds the wait for in-flight uploads before a failed session is
    ended. Raises the bulkctl error of the failure; see `SessionResult` for success.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(
            f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}"
        )
    if keep_alive_interval <= 0:
        raise UsageError("--keep-alive must be a positive number of seconds")
    check_endpoint(endpoint, allow_insecure_http=allow_insecure_http)
    workers = min(concurrency, MAX_IN_FLIGHT - 1)  # one slot stays free for keep-alive
    if max_queued_parts is None and not isinstance(parts, Sequence):
        max_queued_parts = 4 * workers
    session = _Session(
        client,
        endpoint,
        workers=workers,
        keep_alive_interval=keep_alive_interval,
        policy=policy if policy is not None else RetryPolicy(),
        events=events if events is not None else NullEvents(),
        cancel=cancel if cancel is not None else threading.Event(),
        deadlines=deadlines,
        max_queued=max_queued_parts,
        abort_grace=abort_grace,
    )
    return session.run(parts)

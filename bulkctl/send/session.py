"""The runner: drives any target's `Remote`: (open →) send every part (→ close).

A `SessionRemote` (`bulkctl.send.remote`) is opened before the first part, kept alive, and
closed after the last; any other remote only sends, each part on its own (a `BatchRemote`:
as small requests, acknowledged one by one, `bulkctl.send.requests`).

Order: parts carry a `lane` and a `lane_seq` (see `bulkctl.send.lanes`); a lane's parts are sent
strictly one after another, different lanes in parallel. A sequential target packs one lane
and gets one worker, and `Remote.min_interval` spaces the starts of its sends.

Requests in flight: at most `MAX_IN_FLIGHT` (20: Segment's limit per write key), one semaphore held
around every request (sends, keep-alive, open, close) by the `Caller`, and a slot of the key's
lock-file semaphore shared with other bulkctl processes (`bulkctl.send.inflight`). Sends run on at
most min(concurrency, 19) worker threads, so a keep-alive always finds a free slot; a 429
halves the uploads in flight, successes raise them slowly again.

Failure: once the remote is open, any failure (a send that retries did not save, the parts
iterator raising, `cancel`, Ctrl-C) stops dispatching and calls `close` with a non-empty
error. For an atomic remote (a Segment session) that means nothing partial is applied; for
one that applies each part as it arrives (Xandr jobs), the message says what was already sent.
Then the error is raised.

An upload sent whole that got no answer (a timeout, a connection dropped after the body, a
gateway's 502/504) may still be applied at any later time, after parts sent since; in one
session that could apply an old version of an object over a newer one. So for an atomic
remote it is not retried: the session is ended with an error (nothing of it is applied, and a
late landing finds it closed) and every part is sent again in a fresh session, at most
`MAX_SESSIONS` sessions in all. The API merges by id, so that is exact. Parts no longer on
disk (`--stream` removes each once sent) cannot be sent again: then the run fails.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import ParamSpec

import httpx

from bulkctl.errors import (
    ApiError,
    BulkctlError,
    InterruptedError_,
    OutcomeUnknownError,
    UsageError,
)
from bulkctl.pack.parts import Part
from bulkctl.send.caller import Caller, CallLog, never
from bulkctl.send.events import NullEvents, SessionEvents, SessionResult
from bulkctl.send.fresh_start import MAX_SESSIONS, fresh_start
from bulkctl.send.http import Deadlines
from bulkctl.send.inflight import MAX_IN_FLIGHT, AdaptiveLimit, SharedSlots
from bulkctl.send.lanes import POLL, Lanes, join_threads
from bulkctl.send.remote import BatchRemote, Remote, SendResult, SessionRemote, is_atomic
from bulkctl.send.requests import Requests
from bulkctl.send.retry import OutcomePending, RetriesExhausted, RetryPolicy

PACING_NOTICE = 1.0  # seconds: a shorter wait before a paced send is not worth a line

P = ParamSpec("P")

__all__ = ["NullEvents", "SessionEvents", "SessionResult", "run_session"]

ERROR_TEXT_LIMIT = 500  # most characters of the `error` sent with a failed close
IDS_SHOWN = 5  # remote ids named in a message about parts already sent


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BulkctlError):
        text = f"bulkctl: {exc.message}"
    else:
        text = f"bulkctl: internal error ({type(exc).__name__})"
    return text[:ERROR_TEXT_LIMIT]


class _Session:
    """The state of one run; `run_session` is its only user."""

    def __init__(
        self,
        caller: Caller,
        remote: Remote,
        *,
        workers: int,
        events: SessionEvents,
        cancel: threading.Event,
        max_queued: int | None,
        abort_grace: float,
    ) -> None:
        self._caller = caller
        self._remote = remote
        self._session = remote if isinstance(remote, SessionRemote) else None
        self._atomic = is_atomic(remote)
        self._workers = workers
        self._events = events
        self._events_lock = threading.Lock()
        caller.on_retry = lambda event: self._emit(self._events.retry, event)
        self._cancel = cancel
        self._abort_grace = abort_grace
        self._lanes = Lanes(max_queued)
        self._halt = threading.Event()  # a failure happened: workers and keep-alive stop
        self._keep_alive_stop = threading.Event()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._uploaded: list[Part] = []
        self._results: dict[int, SendResult] = {}  # by part number
        self._requests = Requests(remote) if isinstance(remote, BatchRemote) else None
        self._remote_id: str | None = None
        self._pace_lock = threading.Lock()
        self._last_sent: float | None = None  # monotonic time the previous send ended
        self.trouble: str | None = None  # why ending the session with an error failed
        self.seen: list[Part] = []  # every part taken from the iterator, in dispatch order
        self.stop_if_pending = False  # set by run_session when a fresh session can follow

    @property
    def remote_id(self) -> str | None:
        return self._remote_id

    # -- the main thread ------------------------------------------------------------------

    def run(self, parts: Iterable[Part]) -> SessionResult:
        iterator = iter(parts)
        try:
            # Read up to the first part before opening: an input that fails early, or is
            # empty, sends nothing at all.
            first = next(iterator, None)
            if first is None:
                return SessionResult(None, (), 0, {})
            self._remote_id = self._open()
        except KeyboardInterrupt:
            raise InterruptedError_("interrupted before a session was started") from None
        threads: list[threading.Thread] = []
        try:
            if self._remote_id is not None:
                self._emit(self._events.session_started, self._remote_id)
            threads = self._launch()
            self._dispatch(first, iterator)
            self._keep_alive_stop.set()  # no keep-alive may overtake the close
            join_threads(threads, None)
        except BaseException as exc:
            replacement = self._abort(exc, threads)
            if replacement is exc:
                raise
            raise replacement from None
        self._finish()
        parts_done = tuple(sorted(self._uploaded, key=lambda p: p.number))
        if self._remote_id is None and parts_done:
            self._remote_id = parts_done[0].part_id
        with self._lock:
            results = dict(self._results)
        return SessionResult(
            self._remote_id,
            parts_done,
            sum(p.bytes_compressed for p in parts_done),
            results,
            self._requests.records if self._requests is not None else 0,
        )

    def _open(self) -> str | None:
        if self._cancel.is_set():
            raise InterruptedError_("interrupted before a session was started")
        if self._session is None:
            return None
        return self._session.open(self._caller.bind(self._cancel.is_set))

    def _launch(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._work, name=f"bulkctl-upload-{n}", daemon=True)
            for n in range(self._workers)
        ]
        if self._session is not None and self._session.keep_alive_interval is not None:
            threads.append(
                threading.Thread(target=self._keep_alive, name="bulkctl-keep-alive", daemon=True)
            )
        for thread in threads:
            thread.start()
        return threads

    def _dispatch(self, first: Part, rest: Iterator[Part]) -> None:
        for part in itertools.chain((first,), rest):
            self._check()
            self.seen.append(part)
            self._lanes.add(part)
            self._wait_until(self._lanes.has_room)
        self._check()
        self._lanes.close()
        self._wait_until(self._lanes.idle)

    def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._check()
            self._lanes.wait(POLL)

    def _check(self) -> None:
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise failure
        if self._cancel.is_set():
            raise InterruptedError_("interrupted")

    def _abort(self, exc: BaseException, threads: list[threading.Thread]) -> BaseException:
        """Stop everything, close the remote with an error, and say what to raise."""
        self._fail(exc)
        self._keep_alive_stop.set()
        interrupted = isinstance(exc, (KeyboardInterrupt, InterruptedError_))
        text = "interrupted" if interrupted else _error_text(exc)
        join_threads(threads, self._abort_grace)
        if self._atomic:
            self._emit(self._events.finishing, text)
        trouble = self.trouble = self._end_with_error(text)
        if interrupted:
            if trouble:
                return InterruptedError_(f"interrupted; {trouble}")
            return InterruptedError_(f"interrupted: {self._what_stays()}")
        note = trouble if trouble or self._atomic else self._sent_note()
        if note and isinstance(exc, BulkctlError):
            exc.message = f"{exc.message}; {note}"
            exc.args = (exc.message,)
        return exc

    def _what_stays(self) -> str:
        remote = self._remote
        if self._atomic:
            return (
                f"{remote.noun} {self._remote_id} was ended with an error, so nothing of it "
                "is applied"
            )
        return self._sent_note() or f"no {remote.noun} was sent"

    def _sent_note(self) -> str:
        """For a remote that applies parts as they arrive: which were sent and stay."""
        if self._requests is not None:
            return self._requests.note()
        with self._lock:
            ids = [p.part_id or "?" for p in sorted(self._uploaded, key=lambda p: p.number)]
        if not ids:
            return ""
        shown = ", ".join(ids[:IDS_SHOWN]) + (" …" if len(ids) > IDS_SHOWN else "")
        noun = self._remote.noun if len(ids) == 1 else f"{self._remote.noun}s"
        return f"{len(ids)} {noun} already sent ({shown}) stay and are processed"

    def _end_with_error(self, text: str) -> str | None:
        """Close with a non-empty error; describe the failure to do so, if any."""
        if self._session is None:
            return None
        try:
            self._session.close(self._caller.bind(never), text)
        except BulkctlError as exc:
            noun, rid = self._remote.noun, self._remote_id
            if getattr(exc, "status_code", None) in (400, 404):
                # The API no longer knows it: expired (or ended), so nothing of it is applied.
                return f"{noun} {rid} is gone ({exc.message}), so nothing of it is applied"
            return (
                f"ending {noun} {rid} with an error failed too ({exc.message}), so it was "
                "left open; unfinished, nothing of it is applied and the API drops it when it "
                "expires"
            )
        return None

    def _finish(self) -> None:
        """close with an empty error; never report a success that was not seen."""
        session = self._session
        if session is None:
            return
        if self._atomic:
            self._emit(self._events.finishing, "")
        log = CallLog()
        noun, rid = self._remote.noun, self._remote_id
        hint = "check the warehouse before pushing again"

        def unknown() -> str:
            what = log.label or f"closing request of {noun} {rid}"
            return f"the {what} may or may not have been applied: outcome unknown"

        try:
            session.close(self._caller.bind(self._cancel.is_set, log=log), "")
        except (KeyboardInterrupt, InterruptedError_):
            raise InterruptedError_(
                f"interrupted while finishing; {unknown()}", hint=hint
            ) from None
        except RetriesExhausted as exc:
            if exc.maybe_applied:
                raise OutcomeUnknownError(
                    f"{unknown()} ({exc.message})", hint=hint, attempts=exc.attempts
                ) from None
            raise ApiError(
                f"{exc.message}; {noun} {rid} was left unfinished",
                status_code=exc.status_code,
                attempts=exc.attempts,
            ) from None
        except BulkctlError:
            if log.maybe_applied_before and log.status_code is not None:
                # An earlier attempt went out and its answer was lost; a refusal now (e.g.
                # 400, session already finished) may mean that attempt was applied.
                raise OutcomeUnknownError(
                    f"{unknown()} (an attempt got no answer, then HTTP {log.status_code})",
                    hint=hint,
                    status_code=log.status_code,
                ) from None
            raise

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
                self._send(part)
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

    def _pace(self, part: Part) -> None:
        """Wait until `min_interval` has passed since the previous send ended.

        Counting from its end (not its start) keeps every request of one send at least the
        interval away from every request of the next, whatever each send does inside. A wait
        long enough to notice is told (`pacing`), so a quiet minute is not taken for a hang.
        """
        interval = self._remote.min_interval
        if self._last_sent is None:
            return
        start = self._last_sent + interval
        if (wait := start - time.monotonic()) >= PACING_NOTICE:
            self._emit(self._events.pacing, part, wait)
        while (left := start - time.monotonic()) > 0:
            if self._stopping():
                raise InterruptedError_("interrupted")
            time.sleep(min(left, POLL))

    def _send(self, part: Part) -> None:
        problem = part.changed_on_disk()
        if problem is not None:
            raise BulkctlError(problem)
        if self._remote.min_interval <= 0:
            self._send_now(part)
            return
        with self._pace_lock:  # paced sends go one at a time
            self._pace(part)
            try:
                self._send_now(part)
            finally:
                self._last_sent = time.monotonic()

    def _send_now(self, part: Part) -> None:
        self._emit(self._events.part_started, part)

        def count(number: int) -> None:
            part.attempts += 1

        # Each attempt re-opens the spooled file and sends the identical bytes.
        call = self._caller.bind(
            self._stopping,
            stop_if_pending=self.stop_if_pending,
            upload_size=part.bytes_compressed,
            on_progress=lambda sent: self._emit(self._events.part_progress, part, sent),
            on_attempt=count,
        )
        if self._requests is not None:
            result = self._requests.send(
                call, part, lambda *done: self._emit(self._events.request_done, *done)
            )
        else:
            result = self._remote.send(call, part)
        part.part_id = result.remote_id
        with self._lock:
            self._results[part.number] = result
        self._emit(self._events.part_done, part)

    def _keep_alive(self) -> None:
        session = self._session
        if session is None:  # pragma: no cover - only launched for a session remote
            return
        interval = session.keep_alive_interval or 0.0

        def stopped() -> bool:
            return self._keep_alive_stop.is_set() or self._stopping()

        call = self._caller.bind(stopped)
        try:
            while not self._keep_alive_stop.wait(interval):
                if stopped():
                    return
                # Retried like any request; only when retries are exhausted (or the answer
                # is a refusal) does a keep-alive failure end the session.
                session.keep_alive(call)
                self._emit(self._events.keep_alive)
        except InterruptedError_:
            return
        except BulkctlError as exc:
            if not stopped():
                self._fail(exc)
        except BaseException as exc:
            self._fail(exc)
            raise


def run_session(
    client: httpx.Client,
    remote: Remote,
    parts: Iterable[Part],
    *,
    concurrency: int = 4,
    policy: RetryPolicy | None = None,
    events: SessionEvents | None = None,
    cancel: threading.Event | None = None,
    deadlines: Deadlines = Deadlines(),
    max_queued_parts: int | None = None,
    abort_grace: float = 5.0,
    resend: Sequence[Part] | None = None,
    shared: SharedSlots | None = None,
) -> SessionResult:
    """Send `parts` through `remote` (open, send each, close); see the module docstring.

    `shared`: the key's in-flight slots, shared with other processes (`bulkctl.send.inflight`).
    `resend`: what a fresh session must hold when `parts` are only the rest of a session
    taken over (resume); by default, the parts this run took.

    `parts` may be a live iterator that yields parts while input is still being read (and may
    raise). Unless `max_queued_parts` says otherwise, a live iterator is held back while
    4 x the send threads' worth of parts wait, so a streamed input is not all spooled at
    once; a sequence is dispatched freely. `cancel` (e.g. set on SIGTERM) ends the run like
    Ctrl-C. `abort_grace` bounds the wait for sends in flight before a failed run is closed.
    Raises the bulkctl error of the failure; see `SessionResult` for success.
    """
    if not 1 <= concurrency <= MAX_IN_FLIGHT:
        raise UsageError(f"--concurrency must be between 1 and {MAX_IN_FLIGHT}, not {concurrency}")
    interval = remote.keep_alive_interval if isinstance(remote, SessionRemote) else None
    if interval is not None and interval <= 0:
        raise UsageError("--keep-alive must be a positive number of seconds")
    workers = min(concurrency, MAX_IN_FLIGHT - 1)  # one slot stays free for keep-alive
    if max_queued_parts is None and not isinstance(parts, Sequence):
        max_queued_parts = 4 * workers
    caller = Caller(
        client,
        policy if policy is not None else RetryPolicy(),
        deadlines,
        uploads=AdaptiveLimit(workers),
        shared=shared,
        wait_headers=remote.rate_limit_headers,
    )
    shown = events if events is not None else NullEvents()
    stop = cancel if cancel is not None else threading.Event()
    rest = iter(parts)
    todo: Iterable[Part] = rest
    for number in range(1, MAX_SESSIONS + 1):
        session = _Session(
            caller,
            remote,
            workers=workers,
            events=shown,
            cancel=stop,
            max_queued=max_queued_parts,
            abort_grace=abort_grace,
        )
        session.stop_if_pending = is_atomic(remote)
        try:
            return session.run(todo)
        except OutcomePending as exc:
            ended = session.remote_id or "?"
            again = list(resend) if resend is not None else session.seen
            todo = fresh_start(exc, ended, again, number, rest if resend is None else ())
            if session.trouble:
                exc.message = f"{exc.message}; {session.trouble}"
            what = (
                ""
                if session.trouble
                else (f"; session {ended} was ended with an error, so nothing of it is applied")
            )
            shown.restarting(
                f"{exc.message}{what}; sending every part again in a new session "
                f"(session {number + 1} of at most {MAX_SESSIONS})"
            )
    raise AssertionError("unreachable")  # pragma: no cover - the last round raises

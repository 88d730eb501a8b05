"""Retrying one request: what is worth retrying, how long to wait, when to give up.

Kept free of HTTP plumbing and of any display: a request is a callable that either returns
or raises `RetryableFailure`; retry events go to a plain callable hook, so this module never
imports rich and tests can drive it with a fake clock and a fake sleep.

What is retried: connection errors, timeouts, a dropped connection (`RemoteProtocolError`),
HTTP 408, 429 and 5xx. What is not: any other 4xx (400, 401, 403, 413, ...), 3xx, a TLS
certificate that cannot be verified and a host name that does not resolve (retrying cannot
fix them). A connection that cannot be made (refused, unreachable) is retried only within
`connect_retry_time` (10 s unless `--max-retry-time` is given): a down endpoint fails fast.
A 429 spends retry time, not attempts: the limit it enforces frees up as requests end.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

import httpx

from bulkctl.errors import ApiError, InterruptedError_

T = TypeVar("T")

NO_BACKOFF_ENV = "BULKCTL_NO_BACKOFF"
CONNECT_RETRY_TIME = 10.0  # seconds: how long a connection that cannot be made is retried


def _backoff_off_from_env() -> bool:
    # Read when a policy is built, never at import, so tests can switch it per test.
    return os.environ.get(NO_BACKOFF_ENV) == "1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds and waits for retrying one request (`--max-attempts`, `--max-retry-time`).

    `max_retry_time` bounds the time spent retrying, counted from the first failure: a long
    upload's own duration must not use up the budget of its retries. A wait that would end
    past it is not started: the request gives up instead. `no_backoff` (env
    BULKCTL_NO_BACKOFF=1, read when the policy is built) computes every delay as usual and
    reports it, but does not sleep: the test mode.
    """

    max_attempts: int = 8
    max_retry_time: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 120.0
    no_backoff: bool = field(default_factory=_backoff_off_from_env)
    connect_retry_time: float = CONNECT_RETRY_TIME  # bounded by max_retry_time too

    @classmethod
    def from_options(cls, max_attempts: int, max_retry_time: float | None) -> RetryPolicy:
        """The policy of `--max-attempts` / `--max-retry-time` (None: not given).

        A `--max-retry-time` given also bounds retrying a connection that cannot be made,
        which otherwise gives up after `CONNECT_RETRY_TIME`.
        """
        if max_retry_time is None:
            return cls(max_attempts=max_attempts)
        return cls(
            max_attempts=max_attempts,
            max_retry_time=max_retry_time,
            connect_retry_time=max_retry_time,
        )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_retry_time < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry times must not be negative")

    def delay(self, failed_attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after attempt `failed_attempt` (1-based): Retry-After, else jitter.

        Retry-After gets jitter on top (up to half of it, at least `base_delay`): clients told
        the same second must not all come back in the same instant.
        """
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.retry_after_cap)
            return wait + rng.uniform(0.0, max(wait / 2, self.base_delay))
        ceiling = min(self.max_delay, self.base_delay * 2 ** (failed_attempt - 1))
        return rng.uniform(0.0, ceiling)  # full jitter


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one attempt failed, in words fit for a message, and what it implies."""

    reason: str  # e.g. "HTTP 503", "connection dropped before an answer"
    status_code: int | None = None
    retry_after: float | None = None
    # The request may have reached the server and been applied (sent, then no clear answer).
    maybe_applied: bool = False
    # The request was sent whole and no answer came (or a gateway's 502/504): the server may
    # still be working on it and apply it at any later time, after requests sent since.
    may_land_later: bool = False
    connect: bool = False  # no connection could be made (bounded by connect_retry_time)


class RetryableFailure(Exception):
    """Raised by an attempt whose failure is worth another try."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class OutcomePending(ApiError):
    """An attempt was sent whole and got no answer: it may still be applied at any time.

    Raised instead of retrying when the caller asked so (`stop_if_pending`): an upload into a
    session whose later parts would be overtaken by this one landing late.
    """

    def __init__(self, label: str, failure: Failure, attempts: int) -> None:
        super().__init__(
            f"{label} got no answer ({failure.reason}) and may still be applied later",
            status_code=failure.status_code,
            attempts=attempts,
        )
        self.label = label
        self.failure = failure


class RetriesExhausted(ApiError):
    """Retrying did not help; carries every failure so callers can judge ambiguity."""

    def __init__(self, label: str, failures: tuple[Failure, ...], *, gave_up: str = "") -> None:
        last = failures[-1]
        count = len(failures)
        message = f"{label} failed after {count} attempt{'s' if count != 1 else ''}: {last.reason}"
        if gave_up:
            message = f"{message} ({gave_up})"
        super().__init__(message, status_code=last.status_code, attempts=count)
        self.label = label
        self.failures = failures

    @property
    def maybe_applied(self) -> bool:
        """True when any attempt may have been applied by the server."""
        return any(f.maybe_applied for f in self.failures)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen: what request, which attempt failed, why, and the wait."""

    request: str  # e.g. "upload of part 3"
    attempt: int  # the attempt that just failed, 1-based
    max_attempts: int
    reason: str
    delay: float  # seconds the policy chose (Retry-After or jittered backoff)
    wait: float  # seconds actually waited: `delay`, or 0 with backoff off
    retry_after: float | None = None


RetryHook = Callable[[RetryEvent], None]


@dataclass(frozen=True, slots=True)
class Attempted(Generic[T]):
    """A successful result, with the attempts it took and the failures before it."""

    value: T
    attempts: int
    failures: tuple[Failure, ...] = ()

    @property
    def maybe_applied_before(self) -> bool:
        """True when an earlier, failed attempt may have been applied by the server."""
        return any(f.maybe_applied for f in self.failures)


def _no_event(event: RetryEvent) -> None:
    del event


def _never() -> bool:
    return False


_JITTER = random.Random()  # one for the process: seeding one costs ~0.1 ms a request


def call_with_retries(
    attempt: Callable[[int], T],
    *,
    policy: RetryPolicy,
    label: str,
    on_retry: RetryHook = _no_event,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    stopped: Callable[[], bool] = _never,
    rng: random.Random | None = None,
    stop_if_pending: bool = False,
) -> Attempted[T]:
    """Call `attempt(n)` until it returns, retrying on `RetryableFailure` within `policy`.

    Raises `RetriesExhausted` when attempts or retry time run out, `OutcomePending` for a
    failure that may land later when `stop_if_pending`, `InterruptedError_` when `stopped()`
    turns true between attempts; any other exception passes through untouched. A 429 does
    not count as an attempt (only retry time bounds it).
    """
    chooser = rng if rng is not None else _JITTER
    failures: list[Failure] = []
    first_failure_at: float | None = None
    number = counted = 0
    while True:
        number += 1
        if number > 1 and stopped():
            raise InterruptedError_("interrupted")
        try:
            value = attempt(number)
        except RetryableFailure as exc:
            failure = exc.failure
        else:
            return Attempted(value, number, tuple(failures))
        failures.append(failure)
        if stop_if_pending and failure.may_land_later:
            raise OutcomePending(label, failure, number)
        if first_failure_at is None:
            first_failure_at = clock()
        if failure.status_code != 429:
            counted += 1
        if counted >= policy.max_attempts:
            break
        delay = policy.delay(counted or 1, failure.retry_after, chooser)
        spent = clock() - first_failure_at + delay
        if spent > policy.max_retry_time:
            raise RetriesExhausted(
                label,
                tuple(failures),
                gave_up=f"waiting {delay:.1f} s more would pass the retry time of "
                f"{policy.max_retry_time:g} s",
            )
        budget = min(policy.connect_retry_time, policy.max_retry_time)
        if failure.connect and spent > budget:
            raise RetriesExhausted(
                label,
                tuple(failures),
                gave_up=f"no connection for {budget:g} s; --max-retry-time retries longer",
            )
        wait = 0.0 if policy.no_backoff else delay
        on_retry(
            RetryEvent(
                label, number, policy.max_attempts, failure.reason, delay, wait, failure.retry_after
            )
        )
        sleep(wait)
    if stopped():
        raise InterruptedError_("interrupted")
    raise RetriesExhausted(label, tuple(failures))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delay-seconds or HTTP-date), or None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def is_retryable_status(status_code: int) -> bool:
    """408, 429 and 5xx are worth retrying; every other status is an answer."""
    return status_code in (408, 429) or 500 <= status_code <= 599


RETRY_AFTER = ("retry-after",)  # the standard header; an API may name its own as well


def classify_status(
    status_code: int,
    headers: Mapping[str, str],
    now: datetime | None = None,
    wait_headers: Sequence[str] = RETRY_AFTER,
) -> Failure | None:
    """A `Failure` for a retryable HTTP status, None for a status that must not be retried.

    `wait_headers`: the headers, in order, whose value says when to try again (the first
    usable one counts): `Retry-After`, or an API's own such as Brevo's
    `x-sib-ratelimit-reset`, in seconds or as an HTTP date.
    """
    if not is_retryable_status(status_code):
        return None
    retry_after = None
    for name in wait_headers:
        retry_after = parse_retry_after(_header(headers, name.lower()), now)
        if retry_after is not None:
            break
    return Failure(
        reason=f"HTTP {status_code}",
        status_code=status_code,
        retry_after=retry_after,
        # A 5xx may come after the server did the work (e.g. a gateway timeout); 408 and 429
        # are refusals before any work. Behind a gateway's 502/504 the server may still be
        # working on the request.
        maybe_applied=status_code >= 500,
        may_land_later=status_code in (502, 504),
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup, also for plain dicts."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _caused_by_cert_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def does_not_resolve(exc: BaseException) -> bool:
    """True when the host name does not resolve (not a passing DNS hiccup: EAI_AGAIN is)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return current.errno != socket.EAI_AGAIN
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_transport_error(
    exc: httpx.TransportError, host: str = "", *, body_sent: bool | None = None
) -> Failure | None:
    """A `Failure` for a retryable network error, None for one retrying cannot fix.

    `host` (host:port) is named in the reason. `body_sent` says whether the whole request
    body went out (None: unknown, judged from the error's kind); a request whose body did not
    all go out cannot be applied, so it cannot land later either.
    """
    to = f" to {host}" if host else ""
    of = f" of {host}" if host else ""
    if isinstance(exc, httpx.ConnectError) and (
        _caused_by_cert_error(exc) or does_not_resolve(exc)
    ):
        return None
    if isinstance(
        exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
    ):
        # Nothing was sent: the request cannot have been applied.
        return Failure(reason=f"cannot connect{to}: {_describe(exc)}", connect=True)
    if isinstance(exc, httpx.WriteTimeout):
        # The body was not all sent, so the server cannot have acted on the request.
        return Failure(reason=f"timed out sending the request{to}")
    pending = body_sent is not False
    if isinstance(exc, httpx.TimeoutException):
        return Failure(
            reason=f"timed out waiting for the answer{of}",
            maybe_applied=pending,
            may_land_later=pending,
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.NetworkError)):
        if isinstance(exc, httpx.WriteError) and body_sent is None:
            pending = False
        return Failure(
            reason=f"connection{to} dropped: {_describe(exc)}",
            maybe_applied=pending,
            may_land_later=pending,
        )
    return None  # UnsupportedProtocol, LocalProtocolError: a setup problem or a bug


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__

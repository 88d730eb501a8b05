"""Retry policy, Retry-After parsing, what is retryable, and the retry loop (fake clock)."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bulkctl.errors import ApiError, InterruptedError_
from bulkctl.send.retry import (
    Failure,
    RetriesExhausted,
    RetryableFailure,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    classify_status,
    classify_transport_error,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when the code under test sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(failures: list[Failure], value: str = "ok") -> tuple[Callable[[int], str], list[int]]:
    """An attempt that raises the given failures in turn, then returns `value`."""
    calls: list[int] = []

    def attempt(number: int) -> str:
        calls.append(number)
        if failures:
            raise RetryableFailure(failures.pop(0))
        return value

    return attempt, calls


def test_backoff_switch_is_read_from_the_environment_when_a_policy_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BULKCTL_NO_BACKOFF=1 at construction time turns sleeping off; unset turns it on."""
    assert RetryPolicy().no_backoff is True  # conftest sets it for every test
    monkeypatch.delenv("BULKCTL_NO_BACKOFF")
    assert RetryPolicy().no_backoff is False


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    """Delay after attempt n is uniform in [0, min(max_delay, base * 2**(n-1))]."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter reaches near the ceiling


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    """Retry-After (capped at retry_after_cap) is the least delay, with up to half on top."""
    policy = RetryPolicy(retry_after_cap=120.0)
    rng = random.Random(1)
    delays = [policy.delay(1, 7.0, rng) for _ in range(200)]
    assert all(7.0 <= d <= 10.5 for d in delays)
    assert len(set(delays)) > 100  # jittered: lanes told the same second do not come back at once
    assert all(120.0 <= policy.delay(1, 10_000.0, rng) <= 180.0 for _ in range(50))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_seconds_and_http_date(header: str | None, expected: float | None) -> None:
    """Retry-After is read as delay-seconds or an HTTP-date; garbage is ignored."""
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    """408, 429 and every 5xx are retried; 5xx may have been applied, 408/429 not."""
    failure = classify_status(status, {"Retry-After": "3"}, NOW)
    assert failure is not None
    assert failure.status_code == status
    assert failure.retry_after == 3.0
    assert failure.maybe_applied is (status >= 500)


@pytest.mark.parametrize("status", [200, 201, 301, 307, 400, 401, 403, 404, 413, 422])
def test_statuses_that_are_answers(status: int) -> None:
    """2xx, 3xx and 4xx other than 408/429 are never retried."""
    assert classify_status(status, {}, NOW) is None


def _chained_connect_error(cause: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise httpx.ConnectError("connect failed") from inner
    except httpx.ConnectError as outer:
        return outer


def test_tls_certificate_errors_are_not_retried() -> None:
    """A ConnectError caused by SSLCertVerificationError is final; a plain one is retried."""
    cert = _chained_connect_error(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert classify_transport_error(cert) is None
    refused = classify_transport_error(_chained_connect_error(ConnectionRefusedError(111, "x")))
    assert refused is not None
    assert refused.maybe_applied is False


@pytest.mark.parametrize(
    ("exc", "maybe_applied"),
    [
        (httpx.ConnectTimeout("t"), False),
        (httpx.PoolTimeout("t"), False),
        (httpx.ReadTimeout("t"), True),
        (httpx.WriteTimeout("t"), False),
        (httpx.ReadError("r"), True),
        (httpx.RemoteProtocolError("Server disconnected"), True),
    ],
)
def test_network_errors_are_retried(exc: httpx.TransportError, maybe_applied: bool) -> None:
    """Timeouts and dropped connections are retried; ambiguous once the body was all sent."""
    failure = classify_transport_error(exc)
    assert failure is not None
    assert failure.maybe_applied is maybe_applied


def test_setup_errors_are_not_retried() -> None:
    """An unsupported scheme or a local protocol error cannot be fixed by retrying."""
    assert classify_transport_error(httpx.UnsupportedProtocol("ftp")) is None
    assert classify_transport_error(httpx.LocalProtocolError("bad")) is None


def test_loop_retries_until_success_and_reports_each_retry() -> None:
    """Two failures then success: three attempts, two events, the failures kept."""
    fake = FakeTime()
    events: list[RetryEvent] = []
    attempt, calls = failing([Failure("HTTP 503", 503), Failure("HTTP 500", 500)])
    result = call_with_retries(
        attempt,
        policy=RetryPolicy(no_backoff=False),
        label="upload of part 3",
        on_retry=events.append,
        clock=fake.clock,
        sleep=fake.sleep,
        rng=random.Random(3),
    )
    assert result.value == "ok"
    assert result.attempts == 3
    assert calls == [1, 2, 3]
    assert [e.attempt for e in events] == [1, 2]
    assert [e.reason for e in events] == ["HTTP 503", "HTTP 500"]
    assert all(e.request == "upload of part 3" for e in events)
    assert fake.sleeps == [e.delay for e in events]
    assert result.maybe_applied_before is False


def test_loop_without_backoff_reports_the_delay_but_does_not_wait() -> None:
    """Test mode: the event carries the computed Retry-After delay, the sleep is 0."""
    fake = FakeTime()
    events: list[RetryEvent] = []
    attempt, _ = failing([Failure("HTTP 429", 429, retry_after=7.0)])
    call_with_retries(
        attempt,
        policy=RetryPolicy(no_backoff=True),
        label="start",
        on_retry=events.append,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert 7.0 <= events[0].delay <= 10.5  # Retry-After plus jitter
    assert (events[0].wait, events[0].retry_after) == (0.0, 7.0)
    assert fake.sleeps == [0.0]


def test_loop_gives_up_after_max_attempts_naming_attempts_and_last_reason() -> None:
    """Exhaustion raises RetriesExhausted, an ApiError naming the request and attempts."""
    fake = FakeTime()
    attempt, calls = failing([Failure("HTTP 503", 503)] * 5)
    with pytest.raises(RetriesExhausted) as caught:
        call_with_retries(
            attempt,
            policy=RetryPolicy(max_attempts=3),
            label="upload of part 2",
            clock=fake.clock,
            sleep=fake.sleep,
        )
    assert isinstance(caught.value, ApiError)
    assert str(caught.value) == "upload of part 2 failed after 3 attempts: HTTP 503"
    assert caught.value.attempts == 3
    assert caught.value.status_code == 503
    assert calls == [1, 2, 3]


def test_loop_does_not_sleep_past_the_retry_time() -> None:
    """A wait that would end past max_retry_time is not started: the loop gives up."""
    fake = FakeTime()
    attempt, calls = failing([Failure("HTTP 429", 429, retry_after=50.0)] * 5)
    with pytest.raises(RetriesExhausted) as caught:
        call_with_retries(
            attempt,
            policy=RetryPolicy(max_retry_time=120.0, no_backoff=False),
            label="start",
            clock=fake.clock,
            sleep=fake.sleep,
        )
    # Each wait is 50 s plus jitter (up to 25 s): the one that would pass 120 s is not started.
    assert 1 <= len(fake.sleeps) <= 2
    assert all(50.0 <= wait <= 75.0 for wait in fake.sleeps)
    assert sum(fake.sleeps) <= 120.0
    assert calls == list(range(1, len(fake.sleeps) + 2))
    assert "retry time of 120 s" in str(caught.value)


def test_loop_counts_retry_time_from_the_first_failure() -> None:
    """A slow first attempt does not use up the retry budget of the request."""
    fake = FakeTime()
    failures = [Failure("timed out", maybe_applied=True)]

    def attempt(number: int) -> str:
        if number == 1:
            fake.now += 1000.0  # a long upload that then fails
            raise RetryableFailure(failures[0])
        return "ok"

    result = call_with_retries(
        attempt,
        policy=RetryPolicy(max_retry_time=300.0),
        label="x",
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert result.attempts == 2
    assert result.maybe_applied_before is True


def test_loop_stops_when_told_between_attempts() -> None:
    """A stop request during the wait ends the loop with InterruptedError_."""
    fake = FakeTime()
    attempt, calls = failing([Failure("HTTP 503", 503)] * 5)
    with pytest.raises(InterruptedError_):
        call_with_retries(
            attempt,
            policy=RetryPolicy(),
            label="x",
            clock=fake.clock,
            sleep=fake.sleep,
            stopped=lambda: bool(fake.sleeps),
        )
    assert calls == [1]


def test_loop_passes_other_errors_through_unretried() -> None:
    """Only RetryableFailure is retried; anything else propagates after one attempt."""
    calls: list[int] = []

    def attempt(number: int) -> str:
        calls.append(number)
        raise ApiError("HTTP 400")

    with pytest.raises(ApiError, match="HTTP 400"):
        call_with_retries(attempt, policy=RetryPolicy(), label="x")
    assert calls == [1]


def test_exhaustion_reports_whether_any_attempt_may_have_been_applied() -> None:
    """RetriesExhausted.maybe_applied is true when one failure was ambiguous."""
    exhausted = RetriesExhausted(
        "finish", (Failure("connection dropped", maybe_applied=True), Failure("HTTP 429", 429))
    )
    assert exhausted.maybe_applied is True
    assert RetriesExhausted("finish", (Failure("cannot connect"),)).maybe_applied is False

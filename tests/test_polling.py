"""poll_until_final: backoff, deadline, change reports; a real store updated from a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkctl.errors import ApiError, ExitStatus
from bulkctl.jobs.polling import WaitTimeoutError, poll_until_final
from bulkctl.jobs.store import JobStore
from bulkctl.jobs.view import JobSnapshot, read_snapshot


class FakeTime:
    """A clock that only moves when `sleep` is called, recording every pause."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def states(*values: str) -> Iterator[str]:
    """The given states in order, then the last one for ever."""
    yield from values
    while True:
        yield values[-1]


def test_a_final_first_state_returns_at_once() -> None:
    """When the first fetch is final, nothing sleeps and that state is returned."""
    fake = FakeTime()
    result = poll_until_final(
        lambda: "finished",
        lambda s: s == "finished",
        interval=2.0,
        timeout=10.0,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert result == "finished"
    assert fake.pauses == []


def test_pauses_grow_by_half_up_to_the_cap() -> None:
    """Between polls the pause starts at `interval` and grows x1.5 until it reaches 60 s."""
    fake = FakeTime()
    feed = states(*(["running"] * 12), "done")
    poll_until_final(
        lambda: next(feed),
        lambda s: s == "done",
        interval=10.0,
        timeout=None,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert fake.pauses[:5] == pytest.approx([10.0, 15.0, 22.5, 33.75, 50.625])
    assert fake.pauses[5:] == [60.0] * 7


def test_an_interval_above_the_cap_is_kept() -> None:
    """An interval longer than the cap is used as is, not shortened."""
    fake = FakeTime()
    feed = states("running", "running", "running", "done")
    poll_until_final(
        lambda: next(feed),
        lambda s: s == "done",
        interval=90.0,
        timeout=None,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert fake.pauses == [90.0, 90.0, 90.0]


def test_on_change_sees_each_state_once() -> None:
    """on_change gets the first state and then only states that differ from the one before."""
    fake = FakeTime()
    feed = states("created", "created", "uploading", "uploading", "uploading", "finished")
    seen: list[str] = []
    poll_until_final(
        lambda: next(feed),
        lambda s: s == "finished",
        interval=1.0,
        timeout=None,
        on_change=seen.append,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert seen == ["created", "uploading", "finished"]


def test_key_decides_what_counts_as_a_change() -> None:
    """With a key, states that share a key are one change even when they differ otherwise."""
    fake = FakeTime()
    feed = states(("uploading", 10), ("uploading", 50), ("finished", 100))
    seen: list[tuple[str, int]] = []
    poll_until_final(
        lambda: next(feed),
        lambda s: s[0] == "finished",
        interval=1.0,
        timeout=None,
        on_change=seen.append,
        key=lambda s: s[0],
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert seen == [("uploading", 10), ("finished", 100)]


def test_the_deadline_raises_an_exit_4_error_naming_the_state() -> None:
    """A job never final by the deadline ends in WaitTimeoutError (exit 4) with its last state."""
    fake = FakeTime()
    with pytest.raises(WaitTimeoutError) as caught:
        poll_until_final(
            lambda: "processing",
            lambda s: s == "done",
            interval=4.0,
            timeout=10.0,
            describe=lambda s: s.upper(),
            hint="run it again",
            sleep=fake.sleep,
            clock=fake.clock,
        )
    error = caught.value
    assert isinstance(error, ApiError)
    assert error.exit_status == ExitStatus.API_FAILURE
    assert error.last == "processing"
    assert str(error) == ("gave up waiting after 10 s; the job is still PROCESSING (run it again)")
    assert fake.pauses == [4.0, 6.0]  # the third pause (9 s) would pass the deadline: cut to 0
    assert sum(fake.pauses) == pytest.approx(10.0)


def test_the_last_pause_is_cut_to_the_deadline_and_one_more_fetch_is_made() -> None:
    """The final pause ends at the deadline, and a state that became final there is returned."""
    fake = FakeTime()
    calls: list[float] = []

    def fetch() -> str:
        calls.append(fake.now)
        return "done" if fake.now >= 107.0 else "running"

    result = poll_until_final(
        fetch,
        lambda s: s == "done",
        interval=5.0,
        timeout=7.0,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert result == "done"
    assert fake.pauses == [5.0, 2.0]
    assert calls == [100.0, 105.0, 107.0]


def test_a_zero_timeout_fetches_once() -> None:
    """timeout=0 looks once and gives up at once when the state is not final."""
    fake = FakeTime()
    with pytest.raises(WaitTimeoutError):
        poll_until_final(
            lambda: "running",
            lambda s: s == "done",
            interval=1.0,
            timeout=0.0,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert fake.pauses == []


def test_fetch_errors_propagate_unchanged() -> None:
    """An ApiError from the fetch (API unreachable) ends the wait with that error."""
    fake = FakeTime()
    feed = iter(["running"])

    def fetch() -> str:
        for value in feed:
            return value
        raise ApiError("status endpoint unreachable")

    with pytest.raises(ApiError, match="status endpoint unreachable"):
        poll_until_final(
            fetch,
            lambda s: s == "done",
            interval=1.0,
            timeout=60.0,
            sleep=fake.sleep,
            clock=fake.clock,
        )


@pytest.mark.parametrize(
    ("interval", "timeout", "factor"), [(0.0, 1.0, 1.5), (1.0, -1.0, 1.5), (1.0, 1.0, 0.5)]
)
def test_bad_parameters_are_refused(interval: float, timeout: float, factor: float) -> None:
    """A non-positive interval, a negative timeout or a shrinking factor is a ValueError."""
    with pytest.raises(ValueError):
        poll_until_final(
            lambda: "x", lambda s: True, interval=interval, timeout=timeout, factor=factor
        )


def test_waits_for_a_job_another_thread_finishes_in_a_real_store(tmp_path: Path) -> None:
    """Polling a real SQLite store sees a job that a background thread moves to finished."""
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as store:
        job_id = store.create_job("segment-bulk", "http://127.0.0.1", ["a.ndjson"], {})
        store.update_job(job_id, status="uploading")
        polled = threading.Event()
        seen: list[str] = []

        def push_elsewhere() -> None:
            polled.wait(5.0)
            with JobStore(path) as other:
                other.update_job(job_id, status="finished", records=3)

        def fetch() -> JobSnapshot:
            snapshot = read_snapshot(store, job_id)
            polled.set()
            return snapshot

        thread = threading.Thread(target=push_elsewhere)
        thread.start()
        try:
            final = poll_until_final(
                fetch,
                lambda snap: snap.ended,
                interval=0.02,
                timeout=10.0,
                on_change=lambda snap: seen.append(snap.status),
                key=lambda snap: snap.status,
                max_interval=0.05,
            )
        finally:
            thread.join()
    assert seen == ["uploading", "finished"]
    assert final.job.records == 3
    assert final.job.finished_at is not None

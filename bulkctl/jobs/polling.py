"""Wait for a job to become final: poll with backoff until a deadline, report each change.

Plain Python, no I/O of its own: the caller passes how to fetch the state (the local job
store today; a remote status endpoint for targets that have one), how to tell a final state,
and what to do on a change. `sleep` and `clock` are parameters so tests need no real waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from bulkctl.errors import ApiError

T = TypeVar("T")

MAX_INTERVAL = 60.0
BACKOFF_FACTOR = 1.5


class WaitTimeoutError(ApiError, Generic[T]):
    """The deadline passed before the job was final (exit 4); `last` is the last state seen."""

    def __init__(self, message: str, *, last: T, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.last = last


def _unchanged(value: object) -> object:
    return value


def poll_until_final(
    fetch: Callable[[], T],
    is_final: Callable[[T], bool],
    *,
    interval: float,
    timeout: float | None,
    on_change: Callable[[T], None] | None = None,
    key: Callable[[T], object] = _unchanged,
    describe: Callable[[T], str] = str,
    hint: str | None = None,
    max_interval: float = MAX_INTERVAL,
    factor: float = BACKOFF_FACTOR,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Fetch until `is_final`, sleeping `interval`, then `factor` times longer up to `max_interval`.

    The first fetch happens at once. `on_change` gets the first state and then every state
    whose `key` differs from the previous one (so a caller decides what counts as a change,
    e.g. the status word alone). With a `timeout` (seconds; None waits for ever) the last
    sleep is cut to the deadline and one more fetch is made there; if that state is still
    not final, WaitTimeoutError says how long we waited and `describe(state)`. Errors raised
    by `fetch` propagate unchanged: a fetch that cannot reach its API raises its ApiError.
    """
    if interval <= 0:
        raise ValueError(f"the poll interval must be positive, not {interval}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"the timeout must not be negative, not {timeout}")
    if factor < 1:
        raise ValueError(f"the backoff factor must be at least 1, not {factor}")
    cap = max(max_interval, interval)
    deadline = None if timeout is None else clock() + timeout
    delay = interval
    seen: list[object] = []  # the previous key, once there is one
    while True:
        value = fetch()
        current = key(value)
        if not seen or seen[0] != current:
            seen[:] = [current]
            if on_change is not None:
                on_change(value)
        if is_final(value):
            return value
        pause = delay
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                raise WaitTimeoutError(
                    f"gave up waiting after {_seconds(timeout or 0.0)}; "
                    f"the job is still {describe(value)}",
                    last=value,
                    hint=hint,
                )
            pause = min(pause, left)
        sleep(pause)
        delay = min(delay * factor, cap)


def _seconds(value: float) -> str:
    return f"{value:g} s"

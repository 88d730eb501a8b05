"""Per-lane queues of parts: a lane's next part is handed out only once its previous one is done.

Parts carry a `lane` and a `lane_seq`. A lane's parts go strictly one after another in
`lane_seq` order while different lanes go in parallel; every version of one object lives in
one lane, so the API's per-id outcome is the input order at any concurrency. A target that is
strictly sequential simply packs into one lane.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from bulkctl.pack.parts import Part

POLL = 0.2  # seconds a waiting thread sleeps at a time, so a stop is noticed promptly


class Lanes:
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
                self._cond.wait(POLL)

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


def join_threads(threads: Iterable[threading.Thread], timeout: float | None) -> None:
    """Join with short waits (Ctrl-C stays prompt); give up on stragglers after `timeout`."""
    end = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        while thread.is_alive() and (end is None or time.monotonic() < end):
            thread.join(POLL)

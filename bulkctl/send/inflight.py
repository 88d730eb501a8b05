"""How many requests may be in flight: lowered on a 429, shared by processes using one key.

`AdaptiveLimit` is additive-increase / multiplicative-decrease, per run: a 429 halves the
uploads in flight (once per window: the other 429s of requests sent before the cut do not
cut again), each success raises the limit by 1/limit, so it grows by one per round of
successes. It only makes a send wait for a free place: a lane's next part is still taken only
after its previous one is done, so lowering it never reorders a lane.

`SharedSlots` is a semaphore of `MAX_IN_FLIGHT` lock files in the data directory, one set per
endpoint and key fingerprint (a hash, never the key): the API's 20-requests limit is per key,
so every bulkctl process on the machine using that key takes a slot for each request. A lock
(`flock`) is released by the kernel when its process dies, so a killed push frees its slots.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bulkctl.errors import InterruptedError_
from bulkctl.send.lanes import POLL

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: only the in-process limits apply
    fcntl = None  # type: ignore[assignment]

MAX_IN_FLIGHT = 20  # the Segment API's limit of simultaneous requests, kept for every API
SHARED_WAIT = 0.05  # seconds between looks for a free shared slot (plus jitter)


class AdaptiveLimit:
    """Uploads in flight in this run: halved on a 429, raised slowly on success."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self.lowest = self.limit  # the lowest the limit went (for -v and the bench)
        self.throttled = 0  # 429 answers seen
        self._in_use = 0
        self._window = 0
        self._cond = threading.Condition()

    def acquire(self, stopped: Callable[[], bool]) -> int:
        """Wait for a place; the window it was taken in (for `release`)."""
        with self._cond:
            while self._in_use >= int(self.limit):
                if stopped():
                    raise InterruptedError_("interrupted")
                self._cond.wait(POLL)
            self._in_use += 1
            return self._window

    def release(self, window: int, *, throttled: bool) -> None:
        with self._cond:
            self._in_use -= 1
            if throttled:
                self.throttled += 1
                if window == self._window:  # one cut per window of requests
                    self.limit = max(1.0, self.limit / 2)
                    self.lowest = min(self.lowest, self.limit)
                    self._window += 1
            else:
                self.limit = min(float(self.ceiling), self.limit + 1 / self.limit)
            self._cond.notify_all()


def key_fingerprint(endpoint: str, key: str) -> str:
    """A short hash naming one endpoint and key: the key cannot be read back from it."""
    digest = hashlib.sha256(b"bulkctl in-flight\0" + f"{endpoint}\0{key}".encode())
    return digest.hexdigest()[:16]


class SharedSlots:
    """`count` lock files; a request holds one while in flight, whatever process sends it."""

    def __init__(self, directory: Path, count: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._fds = [
            os.open(directory / f"slot-{n:02d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            for n in range(count)
        ]
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._rng = random.Random()

    def acquire(self, stopped: Callable[[], bool]) -> int:
        """Take a free slot (waiting while other processes hold them all); its number."""
        while True:
            with self._lock:
                for number, fd in enumerate(self._fds):
                    if number in self._held:
                        continue
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue
                    self._held.add(number)
                    return number
            if stopped():
                raise InterruptedError_("interrupted")
            time.sleep(SHARED_WAIT * (1 + self._rng.random()))

    def release(self, number: int) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fds[number], fcntl.LOCK_UN)
            self._held.discard(number)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = []


def shared_slots(root: Path, endpoint: str, key: str | None, count: int) -> SharedSlots | None:
    """The slots for `endpoint` and `key` under `root`; None without a key or `flock`.

    Raises OSError when the directory or its files cannot be made.
    """
    if key is None or fcntl is None:
        return None
    return SharedSlots(root / "in-flight" / key_fingerprint(endpoint, key), count)


def slots_for(endpoint: str, key: str | None, warn: Callable[[str], None]) -> SharedSlots | None:
    """The key's shared slots in the data directory; on a local failure, a warning and None."""
    from bulkctl.paths import data_dir

    try:
        return shared_slots(data_dir(), endpoint, key, MAX_IN_FLIGHT)
    except OSError as exc:
        warn(
            f"cannot share the limit of 20 requests in flight with other bulkctl processes "
            f"({exc.filename or 'the data directory'}: {exc.strerror}); this push counts its own"
        )
        return None

"""Run a function over a stream of tasks in forked worker processes; results in input order.

Why fork: workers inherit the run's context (target, rules, options) without pickling it, start
in a millisecond, and share the parent's `hash()` seed, so keys a worker computes match the
parent's. Tasks go round-robin (task n to worker n mod W) with at most `depth` outstanding a
worker, and results are read back in the same order, so the caller sees exactly the sequence a
single process would produce, with memory bounded by `workers * depth` chunks.

A worker is one thread doing recv → func → send, so nothing contends for its GIL. In the
parent, one sender thread a worker writes tasks to its pipe, so the parent never blocks on a
busy worker while that worker waits for the parent to read a result (no deadlock), and the
result pipes are enlarged (Linux) so a worker rarely waits for the parent to read. Workers
ignore SIGINT (the parent handles Ctrl-C and stops them), die with SIGTERM, and leave when their
task pipe closes, so a killed parent never leaves them behind.

An exception raised by the task iterator (a truncated gzip input, say) is raised to the caller
at its place in the sequence, after the results of every earlier task.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, Pipe
from queue import SimpleQueue
from types import TracebackType
from typing import Any, Generic, TypeVar

from bulkctl.errors import BulkctlError

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")

DEPTH = 2  # tasks outstanding a worker: one being processed, one waiting
_PIPE_BYTES = 1 << 20
_STOP = None


class WorkerError(BulkctlError):
    """A worker process died or failed in an unexpected way."""


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Worker processes need `os.fork` (Linux and other POSIX systems; not Windows)."""
    return hasattr(os, "fork") and hasattr(os, "sched_getaffinity")


class _Worker:
    """The parent's handle on one forked worker, with the thread that sends it tasks."""

    def __init__(self, pid: int, tasks: Connection, results: Connection) -> None:
        self.pid = pid
        self.tasks = tasks
        self.results = results
        self.outbox: SimpleQueue[Any] = SimpleQueue()
        self.failed: BaseException | None = None
        self.sender = threading.Thread(target=self._send_all, daemon=True)
        self.sender.start()

    def send(self, task: Any) -> None:
        if self.failed is not None:
            raise WorkerError(f"worker process {self.pid} is gone ({self.failed})")
        self.outbox.put(task)

    def _send_all(self) -> None:
        while True:
            task = self.outbox.get()
            try:
                self.tasks.send(task)
            except (OSError, ValueError) as exc:
                self.failed = exc
                return
            if task is _STOP:
                return

    def stop(self) -> None:
        self.outbox.put(_STOP)
        self.sender.join()
        self.tasks.close()


class Pool(Generic[C, T, R]):
    """`workers` forked processes applying `func(context, task)`; use as a context manager."""

    def __init__(self, func: Callable[[C, T], R], context: C, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.func = func
        self.context = context
        self._workers: list[_Worker] = []
        try:
            for _ in range(workers):
                self._workers.append(self._fork())
        except BaseException:
            self.close()
            raise

    def _fork(self) -> _Worker:
        task_read, task_write = Pipe(duplex=False)
        result_read, result_write = Pipe(duplex=False)
        _enlarge(result_write)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its exit status is what shows
            status = 1
            try:
                task_write.close()
                result_read.close()
                for other in self._workers:
                    other.tasks.close()
                    other.results.close()
                status = _serve(self.func, self.context, task_read, result_write)
            finally:
                os._exit(status)
        task_read.close()
        result_write.close()
        return _Worker(pid, task_write, result_read)

    def map(
        self, tasks: Iterable[T], local: Callable[[T], bool] | None = None
    ) -> Iterator[tuple[T, R]]:
        """(task, func(context, task)) for every task, in order. `local(task)`: run it here."""
        workers = self._workers
        count = len(workers)
        pending: deque[tuple[str, Any, T]] = deque()  # (kind, worker index or None, task)
        source = iter(tasks)
        sent = 0
        failure: BaseException | None = None

        def fill() -> None:
            nonlocal sent, failure
            while failure is None and len(pending) < count * DEPTH:
                try:
                    task = next(source)
                except StopIteration:
                    return
                except BaseException as exc:  # noqa: BLE001 - raised to the caller, in order
                    failure = exc
                    return
                if local is not None and local(task):
                    pending.append(("local", None, task))
                    continue
                index = sent % count
                sent += 1
                workers[index].send(task)
                pending.append(("worker", index, task))

        fill()
        while pending:
            kind, index, task = pending.popleft()
            if kind == "local":
                result = self.func(self.context, task)
            else:
                result = self._receive(workers[index])
            fill()
            yield task, result
        if failure is not None:
            raise failure

    def _receive(self, worker: _Worker) -> R:
        try:
            status, payload = worker.results.recv()
        except (EOFError, OSError) as exc:
            raise WorkerError(
                f"worker process {worker.pid} ended unexpectedly ({exc or 'no result'})",
                hint="it may have been killed for memory; try --workers 1",
            ) from None
        if status == "ok":
            result: R = payload
            return result
        raise WorkerError(f"internal error in worker process {worker.pid}:\n{payload}")

    def close(self) -> None:
        """Stop every worker and wait for it (they finish at most the task at hand)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.results.close()  # a worker blocked sending a result gives up at once
            worker.stop()
        for worker in workers:
            _reap(worker.pid)

    def terminate(self) -> None:
        """Stop every worker now (after an error or Ctrl-C)."""
        for worker in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        self.close()

    def __enter__(self) -> Pool[C, T, R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()


def _enlarge(connection: Connection) -> None:
    """Let a pipe hold a whole result (1 MiB, the unprivileged maximum) where Linux allows."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    with contextlib.suppress(OSError):  # a smaller pipe only means more waiting
        fcntl.fcntl(connection.fileno(), setsize, _PIPE_BYTES)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _serve(
    func: Callable[[Any, Any], Any], context: Any, tasks: Connection, results: Connection
) -> int:  # pragma: no cover - runs in the forked child
    """The worker's life: read tasks, apply `func`, send results, until the pipe says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # inherited objects are never collected here: their pages stay shared
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):
            return 0
        if task is _STOP:
            return 0
        try:
            reply = ("ok", func(context, task))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
            reply = ("error", traceback.format_exc())
        try:
            results.send(reply)
        except (OSError, ValueError):
            return 0

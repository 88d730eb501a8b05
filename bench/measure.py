"""Run one command and measure it: wall seconds and the peak RSS of its whole process tree.

A sampler thread reads `VmRSS` from `/proc/<pid>/status` for the command and every descendant
(found through `/proc/<pid>/task/<tid>/children`) every 20 ms and keeps the largest sum, so a
shell pipeline counts all its stages and a program with worker processes counts its workers.
Reading `/proc` directly keeps psutil out of the project's dependencies. Pages shared between
processes are counted once per process, as `ps` would: an upper bound on real memory use.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INTERVAL = 0.02  # seconds between samples


@dataclass(frozen=True, slots=True)
class Measured:
    """One finished command: exit status, wall time, peak RSS summed over its tree, logs."""

    returncode: int
    wall_s: float
    peak_rss: int  # bytes
    peak_procs: int  # processes in the tree when the peak was sampled
    stdout: Path
    stderr: Path

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines of stderr, for a note on a failed row."""
        try:
            text = self.stderr.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def _rss(pid: int) -> int:
    """Resident bytes of one process; 0 once it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of `root` and all its descendants."""
    total = count = 0
    pending = [root]
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        rss = _rss(pid)
        if rss:
            total += rss
            count += 1
        pending.extend(_children(pid))
    return total, count


class _Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(name=f"rss-sampler-{pid}", daemon=True)
        self.pid = pid
        self.peak = 0
        self.peak_procs = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            total, count = tree_rss(self.pid)
            if total > self.peak:
                self.peak, self.peak_procs = total, count
            if self.done.wait(INTERVAL):
                return


def run_measured(
    argv: Sequence[str],
    log_stem: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run `argv`, stdout/stderr to `log_stem`.stdout/.stderr, sampling its tree's RSS."""
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_stem.with_name(log_stem.name + ".stdout")
    err_path = log_stem.with_name(log_stem.name + ".stderr")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env or os.environ),
        )
        sampler = _Sampler(process.pid)
        sampler.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    return Measured(code, wall, sampler.peak, sampler.peak_procs, out_path, err_path)


def best_of(
    argv: Sequence[str], times: int, log_stem: Path, env: Mapping[str, str] | None = None
) -> tuple[float, int, int]:
    """(fastest wall seconds, largest peak RSS, worst exit status) over `times` runs."""
    walls: list[float] = []
    peak = worst = 0
    for attempt in range(times):
        measured = run_measured(argv, log_stem.with_name(f"{log_stem.name}-{attempt}"), env)
        walls.append(measured.wall_s)
        peak = max(peak, measured.peak_rss)
        worst = worst or measured.returncode
    return min(walls), peak, worst

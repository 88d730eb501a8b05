"""Test helpers for local-state faults: a second process holding the job store's write lock,
a full disk (a small tmpfs in a private mount namespace), and a minimal Segment Bulk API.

Plain functions and classes, no fixtures, like helpers.py.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SYNC_ID = "SYNC-7"
KEY = "wk_L0calState_9"

# Holds the store's write lock between "lock" and "release" lines on its stdin, and says so.
_LOCKER = """
import sqlite3, sys
conn = None
for line in sys.stdin:
    command = line.strip()
    if command == "lock":
        conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        print("locked", flush=True)
    elif command == "release":
        conn.execute("COMMIT")
        conn.close()
        print("released", flush=True)
"""


class StoreLocker:
    """A second process that takes an exclusive lock on a SQLite file when told, and lets go
    when told: each step is acknowledged, so tests wait on events, never on time."""

    def __init__(self, path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _say(self, command: str, answer: str) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline().strip()
        assert line == answer, f"the locker said {line!r} to {command!r}"

    def lock(self) -> None:
        self._say("lock", "locked")

    def release(self) -> None:
        self._say("release", "released")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(10)

    def __enter__(self) -> StoreLocker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


class LineReader:
    """Collects a process's stream line by line in a thread; `wait_for` blocks until a line
    containing a text arrives (or the stream ends)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> bool:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True

    def rest(self) -> str:
        """Everything, once the stream has ended."""
        self._thread.join(30)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def bulk_api(
    server: HTTPServer,
    *,
    on_upload: Callable[[int], None] | None = None,
    on_finish: Callable[[], None] | None = None,
) -> list[tuple[str, bytes]]:
    """Answer start/upload/finish like the Bulk API; return the list of (kind, body) seen."""
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def handler(kind: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            with lock:
                seen.append((kind, request.get_data()))
                number = sum(1 for k, _ in seen if k == kind)
            if kind == "start":
                return Response(json.dumps({"sync_id": SYNC_ID}), 201)
            if kind == "upload":
                if on_upload is not None:
                    on_upload(number)
                return Response(json.dumps({"part_id": f"P{number}"}), 201)
            if on_finish is not None:
                on_finish()
            return Response("", 202)

        return handle

    server.expect_request("/v0/start", method="POST").respond_with_handler(handler("start"))
    for kind in ("upload", "finish", "keep-alive"):
        server.expect_request(f"/v0/{kind}/{SYNC_ID}", method="POST").respond_with_handler(
            handler(kind)
        )
    return seen


def private_mounts_work() -> bool:
    """Whether this machine lets a process mount a tmpfs in its own mount namespace."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def on_small_disk(mount: Path, size: str, argv: Sequence[str], *, fill: bool) -> list[str]:
    """`argv` run with a tmpfs of `size` mounted at `mount` (seen only by that process), filled
    to the last byte first when `fill`: a real ENOSPC, no root needed, nothing to clean up."""
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97; '
        'if [ "$3" = fill ]; then dd if=/dev/zero of="$2/filler" bs=4096 2>/dev/null; fi; '
        'shift 3; exec "$@"'
    )
    return [
        "unshare",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
        size,
        str(mount),
        "fill" if fill else "-",
        *argv,
    ]

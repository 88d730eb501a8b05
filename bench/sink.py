"""A minimal, fast local HTTP sink that speaks the Segment Bulk API and throws every body away.

Run as its own process (`python bench/sink.py [--port 0]`) so its work never shares a GIL with
what is measured. It prints the port it listens on as its first stdout line, then serves:

- POST /v0/start → 201 {"sync_id"}; POST /v0/upload/<id> → 201 {"part_id"};
  POST /v0/finish/<id> → 202; POST /v0/keep-alive/<id> → 200;
- POST /v1/set → 200 {"success": true} (the Objects API), counted as `sets`;
- POST / (any other path) → 200, for the `curl --data-binary` baselines;
- a path under /delay/MS/ is answered as the rest of the path, MS milliseconds late;
- GET /stats → counters as JSON; GET /stats?reset=1 also zeroes them.

Bodies are read straight into one reusable buffer per connection (Content-Length or chunked)
and discarded; nothing is decompressed or parsed, so the sink costs as little as it can. An
answer leaves in one write with TCP_NODELAY: small request-per-answer traffic (`/v1/set`)
would otherwise wait on Nagle's algorithm and delayed ACKs (~40 ms a request).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # bytes read from the socket at a time


class Counters:
    """What the sink has received since the last reset (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._values[name] = self._values.get(name, 0) + amount

    def next_id(self, name: str) -> int:
        with self._lock:
            value = self._values.get(f"_{name}", 0) + 1
            self._values[f"_{name}"] = value
            return value

    def snapshot(self, reset: bool) -> dict[str, int]:
        with self._lock:
            public = {k: v for k, v in self._values.items() if not k.startswith("_")}
            if reset:
                self._values = {k: v for k, v in self._values.items() if k.startswith("_")}
            return public


class SinkServer(ThreadingHTTPServer):
    """A threading server that owns its counters (no module-level state)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, SinkHandler)
        self.counters = Counters()


class SinkHandler(BaseHTTPRequestHandler):
    """Answers the Bulk API's four calls and a bare POST; keeps connections alive."""

    protocol_version = "HTTP/1.1"  # keep-alive, and `Expect: 100-continue` is answered
    server: SinkServer
    _buffer: memoryview | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line: it would cost more than the request."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.counters.add(connections=1)

    def do_POST(self) -> None:
        received = self._drain()
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[0] == "delay" and len(parts) > 2 and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000)  # a remote API's round trip, e.g. /delay/2/v1/set
            parts = parts[2:]
        counters = self.server.counters
        counters.add(requests=1, body_bytes=received)
        if parts[:2] == ["v0", "start"]:
            counters.add(starts=1)
            self._reply(201, {"sync_id": f"sync-{counters.next_id('sync')}"})
        elif parts[:2] == ["v0", "upload"] and len(parts) == 3:
            counters.add(uploads=1, upload_bytes=received)
            self._reply(201, {"part_id": f"part-{counters.next_id('part')}"})
        elif parts[:2] == ["v0", "finish"] and len(parts) == 3:
            counters.add(finishes=1)
            self._reply(202, {})
        elif parts[:2] == ["v0", "keep-alive"] and len(parts) == 3:
            counters.add(keep_alives=1)
            self._reply(200, {})
        elif parts == ["v1", "set"]:
            counters.add(sets=1)
            self._reply(200, {"success": True})
        elif parts[0] == "v0":
            self._reply(404, {"error": "unknown path"})
        else:
            counters.add(plain_posts=1, plain_bytes=received)
            self._reply(200, {"received": received})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.rstrip("/") == "/stats":
            self._reply(200, self.server.counters.snapshot(reset="reset=1" in query))
        else:
            self._reply(404, {"error": "unknown path"})

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)

    def _scratch(self) -> memoryview:
        if self._buffer is None:
            self._buffer = memoryview(bytearray(CHUNK))
        return self._buffer

    def _discard(self, count: int) -> int:
        """Read and drop exactly `count` body bytes; return how many arrived before EOF."""
        buffer = self._scratch()
        left = count
        while left > 0:
            got = self.rfile.readinto1(buffer[: min(left, CHUNK)])
            if not got:
                break
            left -= got
        return count - left

    def _drain(self) -> int:
        """Consume the request body whatever its framing; the number of body bytes."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return total
                total += self._discard(size)
                self.rfile.readline(16)  # the CRLF after a chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self._discard(length)


class Sink:
    """The benchmark's handle on a sink running in a child process."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[Sink]:
        """Start `python sink.py --port 0` with this interpreter; stop it on the way out."""
        argv = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = process.stdout.readline() if process.stdout else b""
            if not line.strip().isdigit():
                raise RuntimeError(f"the sink did not start (it said {line!r})")
            yield cls(process, int(line))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stats(self, reset: bool = True) -> dict[str, int]:
        """What arrived since the last reset: requests, body_bytes, uploads, finishes, ..."""
        query = "?reset=1" if reset else ""
        with urllib.request.urlopen(f"{self.url}/stats{query}", timeout=10) as answer:
            document = json.loads(answer.read())
        return {str(k): int(v) for k, v in document.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Segment Bulk API sink for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = SinkServer((args.host, args.port))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""HTTP plumbing of the sandbox, shared by every API emulator.

The server knows nothing about any API: emulators (one module each, see `Emulator`) hand it
their `Route`s and an `authorize` check. The server owns what every API shares: the limit on
requests in flight (429 beyond it), injected faults, one log line per request, request bodies
streamed from the socket (Content-Length or chunked), and JSON answers.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn, Protocol, TextIO, cast
from urllib.parse import parse_qsl, urlsplit

import orjson

from bulkctl.sandbox.faults import Faults, FaultState
from bulkctl.send.inflight import MAX_IN_FLIGHT  # the API's limit, which the client keeps

DRAIN_LIMIT = 8 * 2**20  # unread body bytes we still read (and drop) to keep a connection
_CHUNK_LINE_MAX = 4096
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BodyError(Exception):
    """The request body is malformed or ended early; answered with 400."""


class BodyReader:
    """The request body as a stream, whatever its framing; never holds it whole."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._chunked = chunked
        self._left = 0 if chunked else (length or 0)  # bytes left in the body or chunk
        self._crlf_due = False
        self.done = not chunked and self._left == 0
        self.broken = False  # a framing error: the rest of the connection is unreadable

    @classmethod
    def from_headers(cls, rfile: io.BufferedIOBase, headers: Mapping[str, str]) -> BodyReader:
        coding = headers.get("transfer-encoding", "").strip().lower()
        if coding:
            if coding != "chunked":
                raise BodyError(f"unsupported Transfer-Encoding {coding!r}: send chunked")
            return cls(rfile, None, chunked=True)
        text = headers.get("content-length", "").strip()
        if text and not text.isdigit():
            raise BodyError("Content-Length is not a number")
        return cls(rfile, int(text) if text else None, chunked=False)

    def read(self, size: int = 2**16) -> bytes:
        """Up to `size` bytes as soon as some arrive; b"" at the end of the body."""
        if self.done:
            return b""
        try:
            if self._chunked and self._left == 0 and not self._next_chunk():
                return b""
            data = self._rfile.read1(min(size, self._left))
        except OSError as exc:  # reset by the client, or idle past the socket timeout
            self._fail(f"the request body could not be read: {exc}")
        if not data:
            self._fail("the request body ended early")
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                self._crlf_due = True
            else:
                self.done = True
        return bytes(data)

    def read_all(self, limit: int) -> bytes:
        """The whole (small) body; BodyError beyond `limit` bytes."""
        parts: list[bytes] = []
        size = 0
        while chunk := self.read():
            size += len(chunk)
            if size > limit:
                raise BodyError(f"the request body is over {limit:,} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def too_long_to_drain(self, limit: int) -> bool:
        """True when the body is known to be unusable or to have more than `limit` bytes left."""
        if self.broken:
            return True
        return not self.done and not self._chunked and self._left > limit

    def drain(self, limit: int) -> bool:
        """Read and drop the rest of the body, up to `limit` bytes; True when it all went."""
        if self.too_long_to_drain(limit):
            return False
        dropped = 0
        while dropped <= limit:
            chunk = self.read(2**16)
            if not chunk:
                return True
            dropped += len(chunk)
        return False

    def _fail(self, message: str) -> NoReturn:
        self.broken = True
        raise BodyError(message)

    def _next_chunk(self) -> bool:
        """Read the next chunk's size line; False at the last (empty) chunk."""
        if self._crlf_due:
            if self._rfile.readline(_CHUNK_LINE_MAX).strip():
                self._fail("malformed chunked body: no CRLF after a chunk")
            self._crlf_due = False
        line = self._rfile.readline(_CHUNK_LINE_MAX)
        if not line.endswith(b"\n"):
            self._fail("malformed chunked body: bad chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        size = int(size_text, 16) if _HEX.fullmatch(size_text) else -1
        if size < 0:
            self._fail("malformed chunked body: bad chunk size")
        if size == 0:
            while self._rfile.readline(_CHUNK_LINE_MAX).strip():  # trailers
                pass
            self.done = True
        self._left = size
        return size > 0


@dataclass(slots=True)
class Request:
    """One request as an emulator sees it: lower-cased header names, the body as a stream."""

    method: str
    path: str
    endpoint: str
    params: dict[str, str]
    headers: Mapping[str, str]
    body: BodyReader
    query: Mapping[str, str] = field(default_factory=dict)  # the last value of each key
    late: bool = False  # --late-upload: apply it only at its session's finish
    late_drop: bool = False  # --late-drop: and drop the connection instead of answering


@dataclass(slots=True)
class Response:
    """A JSON answer (or an empty one when `body` is None)."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


def json_error(status: int, message: str, /, **extra: Any) -> Response:
    """The error shape of every emulator: {"error": message, ...extra}."""
    return Response(status, {"error": message, **extra})


@dataclass(frozen=True, slots=True)
class Route:
    """`method` + a full-match path regex (named groups become `params`) → handler.

    `endpoint` names the route for `--status-for` (e.g. "upload").
    """

    method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Callable[[Request], Response]


def route(
    method: str, pattern: str, endpoint: str, handler: Callable[[Request], Response]
) -> Route:
    return Route(method, re.compile(pattern), endpoint, handler)


class Emulator(Protocol):
    """One emulated API; adding an API to the sandbox is one module implementing this."""

    def routes(self) -> Sequence[Route]:
        """The paths it serves."""

    def authorize(self, request: Request) -> Response | None:
        """None when the request's credentials are good, else the refusal to send."""

    def tick(self) -> None:
        """Housekeeping, called about once a second (e.g. expire idle sessions)."""

    def close(self) -> None:
        """Release files and end what is still open; the server has stopped."""


class InFlight:
    """Counts requests being handled; refuses beyond the limit instead of queueing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.peak = 0  # the most requests handled at once
        self.refused = 0  # requests answered 429 for being over the limit
        self._cond = threading.Condition()

    def enter(self) -> bool:
        with self._cond:
            if self.count >= self.limit:
                self.refused += 1
                return False
            self.count += 1
            self.peak = max(self.peak, self.count)
            return True

    def leave(self) -> None:
        with self._cond:
            self.count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)


class RequestLog:
    """One line per request: time, method, path (no query, no headers), status, duration.

    Written before the answer is sent, so whoever has the answer can read its line.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, method: str, path: str, status: int | str, started: float) -> None:
        if self._stream is None:
            return
        ms = (time.perf_counter() - started) * 1000
        safe = "".join(c if c.isprintable() else "?" for c in path[:300])
        line = f"{time.strftime('%H:%M:%S')} {method} {safe} {status} {ms:.1f}ms\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server dispatching to emulators' routes."""

    daemon_threads = True
    # socketserver's default listen backlog of 5 makes a burst of connections (a client at
    # --concurrency 20) wait for SYN retries: the in-flight limit, not the backlog, must bound.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        emulators: Sequence[Emulator],
        *,
        faults: Faults | None = None,
        log: TextIO | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.emulators = list(emulators)
        self.routes = [(emu, r) for emu in self.emulators for r in emu.routes()]
        self._check_fault_endpoints(faults or Faults())
        self.faults = FaultState(faults or Faults())
        self.log = RequestLog(log)
        self.in_flight = InFlight(max_in_flight)
        self.stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def _check_fault_endpoints(self, faults: Faults) -> None:
        known = {r.endpoint for _, r in self.routes}
        for name in faults.status_for:
            if name not in known:
                raise ValueError(
                    f"--status-for {name}: no such endpoint; use one of {', '.join(sorted(known))}"
                )

    def match(self, method: str, path: str) -> tuple[Emulator, Route, dict[str, str]] | Response:
        """The route for a request, or the 404/405 answer."""
        allowed = False
        for emulator, candidate in self.routes:
            found = candidate.pattern.fullmatch(path)
            if found is None:
                continue
            if candidate.method == method:
                return emulator, candidate, found.groupdict()
            allowed = True
        if allowed:
            return json_error(405, f"{method} is not allowed on {path}")
        return json_error(404, f"no such endpoint: {path}")

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self._sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut the sockets of kept-alive connections so their threads end."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bulkctl-sandbox"
    sys_version = ""
    timeout = 120
    # Headers and body go out in two writes; without TCP_NODELAY the second waits for the
    # client's delayed ACK (about 40 ms a request on a kept-alive connection).
    disable_nagle_algorithm = True

    @property
    def app(self) -> SandboxServer:
        return cast(SandboxServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the standard library's log: ours never shows headers or queries."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        app = self.app
        path, _, query = self.path.partition("?")
        path = urlsplit(path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = BodyReader.from_headers(self.rfile, headers)
        except BodyError as exc:
            app.log.write(self.command, path, 400, started)
            self._send(json_error(400, str(exc)), close=True)
            return
        if app.faults.should_drop():
            _drained(body)
            app.log.write(self.command, path, "dropped", started)
            self.close_connection = True  # the client sees the close only after the line
            return
        if not app.in_flight.enter():
            response = json_error(
                429, f"too many requests in progress (at most {app.in_flight.limit})"
            )
            response.headers["Retry-After"] = "1"
        else:
            try:
                response = self._answer(path, dict(parse_qsl(query)), headers, body)
            finally:
                app.in_flight.leave()
        if response.drop:
            self.close_connection = True
            app.log.write(self.command, path, "dropped", started)
            return
        close = app.stopping.is_set() or body.too_long_to_drain(DRAIN_LIMIT)
        # Log before answering: a client that has its answer can rely on the line being there.
        app.log.write(self.command, path, response.status, started)
        self._send(response, close=close)
        if not close and not _drained(body):
            self.close_connection = True

    def _answer(
        self, path: str, query: dict[str, str], headers: dict[str, str], body: BodyReader
    ) -> Response:
        app = self.app
        if app.faults.faults.latency_ms:
            time.sleep(app.faults.faults.latency_ms / 1000)
        found = app.match(self.command, path)
        if isinstance(found, Response):
            return found
        emulator, target, params = found
        request = Request(self.command, path, target.endpoint, params, headers, body, query)
        refused = emulator.authorize(request)
        if refused is not None:
            return refused
        if app.faults.is_late(target.endpoint):
            request.late, request.late_drop = True, app.faults.faults.late_drop
        forced = app.faults.forced_status(target.endpoint)
        if forced is not None:
            return _forced(*forced, retry_after=app.faults.faults.retry_after)
        try:
            return target.handler(request)
        except BodyError as exc:
            return json_error(400, str(exc))

    def _send(self, response: Response, *, close: bool) -> None:
        payload = b"" if response.body is None else orjson.dumps(response.body)
        try:
            self.send_response(response.status)
            if response.body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            close = True  # the client went away; nothing more to say to it
        if close:
            self.close_connection = True


def _forced(status: int, flag: str, *, retry_after: int | None) -> Response:
    response = json_error(status, f"status {status} forced by {flag}")
    if retry_after is not None and status in (429, 503):
        response.headers["Retry-After"] = str(retry_after)
    return response


def _drained(body: BodyReader) -> bool:
    try:
        return body.drain(DRAIN_LIMIT)
    except (BodyError, OSError):
        return False

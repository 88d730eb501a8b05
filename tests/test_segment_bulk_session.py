"""A Segment Bulk session against real local HTTP servers: order, limits, retries, failures."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bulkctl.errors import (
    ApiError,
    CredentialsError,
    ExitStatus,
    InterruptedError_,
    InvalidRecordsError,
    OutcomeUnknownError,
    UsageError,
)
from bulkctl.pack.parts import Part
from bulkctl.redact import redact_url
from bulkctl.send.http import Deadlines, Reply, build_client, check_endpoint
from bulkctl.send.retry import RetryEvent, RetryPolicy
from bulkctl.send.session import NullEvents, SessionResult, run_session
from bulkctl.settings import Secret
from bulkctl.targets import segment_bulk
from bulkctl.targets.segment_bulk import SegmentBulkRemote, write_key_auth

KEY = "wk_Secret123"
EVENT_BOUND_S = 30.0  # how long a held answer waits for the event it waits on
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    """A threaded pytest-httpserver, so concurrent requests really overlap."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """The real client bulkctl builds, with the test write key."""
    with build_client(write_key_auth(Secret(KEY))) as built:
        yield built


def records_for(lane: int, seq: int, count: int = 3) -> list[dict[str, Any]]:
    return [
        {"id": f"{lane}-{seq}-{i}", "collection": "rooms", "properties": {"lane": lane, "seq": seq}}
        for i in range(count)
    ]


def make_part(directory: Path, number: int, lane: int, lane_seq: int) -> Part:
    """Write a real gzip part (mtime=0) of NDJSON records and describe it as packing would."""
    records = records_for(lane, lane_seq)
    raw = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path = directory / f"part-{number:05d}.ndjson.gz"
    with path.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    data = path.read_bytes()
    return Part(
        number=number,
        lane=lane,
        lane_seq=lane_seq,
        path=path,
        records=len(records),
        bytes_uncompressed=len(raw),
        bytes_compressed=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def make_parts(directory: Path, lanes: int, per_lane: int) -> list[Part]:
    """Parts of `lanes` lanes, closed round-robin as packing would close them."""
    parts: list[Part] = []
    for seq in range(per_lane):
        for lane in range(lanes):
            parts.append(make_part(directory, len(parts) + 1, lane, seq))
    return parts


def decode(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in gzip.decompress(body).splitlines()]


class Recorder(NullEvents):
    """Events hook that keeps what it was told."""

    def __init__(self) -> None:
        self.retries: list[RetryEvent] = []
        self.keep_alives = 0
        self.finishing_texts: list[str] = []
        self.done: list[int] = []

    def retry(self, event: RetryEvent) -> None:
        self.retries.append(event)

    def keep_alive(self) -> None:
        self.keep_alives += 1

    def finishing(self, error_text: str) -> None:
        self.finishing_texts.append(error_text)

    def part_done(self, part: Part) -> None:
        self.done.append(part.number)


@dataclass
class Seen:
    kind: str  # start | upload | finish | keep-alive
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeBulkApi:
    """Permanent handlers that act like the Bulk API and record what arrived, in order."""

    server: HTTPServer
    sync_id: str = "S1"
    upload: Callable[[Request, int], Response] | None = None  # custom answer, by upload number
    keep_alive: Callable[[Request, int], Response] | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for kind, path in [
            ("start", "/v0/start"),
            ("upload", f"/v0/upload/{self.sync_id}"),
            ("finish", f"/v0/finish/{self.sync_id}"),
            ("keep-alive", f"/v0/keep-alive/{self.sync_id}"),
        ]:
            self.server.expect_request(path, method="POST").respond_with_handler(
                self._handler(kind)
            )

    def _handler(self, kind: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            with self.lock:
                self.seen.append(Seen(kind, dict(request.headers), request.get_data()))
                number = sum(1 for s in self.seen if s.kind == kind)
            if kind == "start":
                return json_response({"sync_id": self.sync_id}, 201)
            if kind == "upload":
                if self.upload is not None:
                    return self.upload(request, number)
                return json_response({"part_id": f"P{number}"}, 201)
            if kind == "keep-alive" and self.keep_alive is not None:
                return self.keep_alive(request, number)
            return Response("", status=202 if kind == "finish" else 200)

        return handle

    def of(self, kind: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.kind == kind]

    def finish_errors(self) -> list[str]:
        return [json.loads(s.body)["error"] for s in self.of("finish")]


def json_response(document: dict[str, Any], status: int, **headers: str) -> Response:
    return Response(
        json.dumps(document), status=status, headers=headers, content_type="application/json"
    )


def push(
    client: httpx.Client,
    server_url: str,
    parts: Any,
    *,
    keep_alive_interval: float = 300.0,
    **options: Any,
) -> SessionResult:
    """One Segment Bulk session through the runner, as a push drives it.

    The client carries the write key, so the remote holds none of its own.
    """
    remote = SegmentBulkRemote(server_url, None, keep_alive_interval)
    return run_session(client, remote, parts, **options)


# -- a raw socket server for what pytest-httpserver cannot do: drop, trickle, TLS -------------


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Action = Callable[[socket.socket, threading.Event], None]


def respond(status: int, document: dict[str, Any] | None = None) -> Action:
    def act(conn: socket.socket, stop: threading.Event) -> None:
        body = json.dumps(document).encode() if document is not None else b""
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return act


def drop(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request, then close without a word: the client cannot know what happened."""


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Answer 201 with a 100-byte body, sent one byte every 0.2 s."""
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
    for _ in range(100):
        if stop.wait(0.2):
            return
        try:
            conn.sendall(b" ")
        except OSError:
            return


class RawServer:
    """HTTP/1.1 on a raw socket, one request per connection, answered by a script of actions."""

    def __init__(
        self, script: list[Action], tls: ssl.SSLContext | None = None, read_rate: int = 0
    ) -> None:
        self.requests: list[RawRequest] = []
        self._read_rate = read_rate  # bytes/s to read request bodies at; 0: as fast as sent
        self.connections = 0
        self._script = list(script)
        self._tls = tls
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def wait_for_requests(self, count: int) -> None:
        """Wait (up to 10 s) until `count` requests were read to their end."""
        end = time.monotonic() + 10
        while len(self.requests) < count and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                if self._tls is not None:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                request = self._read(conn)
            except (OSError, ValueError):
                return
            self.requests.append(request)
            action = self._script.pop(0) if self._script else respond(500)
            try:
                action(conn, self._stop)
            except OSError:
                return  # the client went away

    def _read(self, conn: socket.socket) -> RawRequest:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise ValueError("closed before the headers")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            if self._read_rate:
                time.sleep(0.01)
            chunk = conn.recv(self._read_rate // 100 if self._read_rate else 65536)
            if not chunk:
                break
            body += chunk
        return RawRequest(method, path, headers, body)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Build RawServers that are closed after the test."""
    made: list[RawServer] = []

    def build(
        script: list[Action], tls: ssl.SSLContext | None = None, read_rate: int = 0
    ) -> RawServer:
        made.append(RawServer(script, tls, read_rate))
        return made[-1]

    yield build
    for server in made:
        server.close()


# -- the happy path ---------------------------------------------------------------------------


def test_uploads_every_part_with_the_right_headers_and_finishes(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """start → uploads (auth, gzip headers, verbatim bodies) → finish {"error": ""}."""
    api = FakeBulkApi(httpserver)
    parts = make_parts(tmp_path, lanes=2, per_lane=2)
    result = push(client, httpserver.url_for("/"), parts, concurrency=1)

    assert [s.kind for s in api.seen] == ["start"] + ["upload"] * 4 + ["finish"]
    for seen in api.seen:
        assert seen.headers["Authorization"] == AUTH
        assert seen.headers["User-Agent"].startswith("bulkctl/")
    uploads = api.of("upload")
    for seen in uploads:
        assert seen.headers["Content-Type"] == "binary/octet-stream"
        assert seen.headers["Content-Encoding"] == "gzip"
        assert int(seen.headers["Content-Length"]) == len(seen.body)
    sent = sorted((decode(s.body) for s in uploads), key=lambda r: r[0]["id"])
    expected = sorted((records_for(p.lane, p.lane_seq) for p in parts), key=lambda r: r[0]["id"])
    assert sent == expected
    assert sorted(s.body for s in uploads) == sorted(p.path.read_bytes() for p in parts)
    assert json.loads(api.of("finish")[0].body) == {"error": ""}
    assert api.of("finish")[0].headers["Content-Type"] == "application/json"
    assert result.sync_id == "S1"
    assert [p.number for p in result.parts] == [1, 2, 3, 4]
    assert sorted(p.part_id or "" for p in result.parts) == ["P1", "P2", "P3", "P4"]
    assert all(p.attempts == 1 for p in result.parts)
    assert result.bytes_sent == sum(p.bytes_compressed for p in parts)
    httpserver.check_assertions()


def test_no_parts_means_no_session(httpserver: HTTPServer, client: httpx.Client) -> None:
    """An empty input starts no session and sends nothing."""
    api = FakeBulkApi(httpserver)
    result = push(client, httpserver.url_for("/"), iter([]))
    assert result == SessionResult(None, (), 0)
    assert api.seen == []


@pytest.mark.parametrize("concurrency", [1, 8])
def test_each_lane_is_uploaded_strictly_in_order(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path, concurrency: int
) -> None:
    """A lane's next part is sent only after its previous one was answered, at any concurrency."""
    timeline: list[tuple[str, int, int]] = []
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()
    overlapped = threading.Event()

    def slow_upload(request: Request, number: int) -> Response:
        first = decode(request.get_data())[0]["properties"]
        lane, seq = first["lane"], first["seq"]
        with lock:
            timeline.append(("arrive", lane, seq))
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            if in_flight[0] > 1:
                overlapped.set()
        if concurrency > 1:  # held until another lane's upload is in flight too
            overlapped.wait(EVENT_BOUND_S)
        time.sleep(0.03)  # widens the window in which an out-of-order upload would show
        with lock:
            in_flight[0] -= 1
            timeline.append(("leave", lane, seq))
        return json_response({"part_id": f"P{number}"}, 201)

    api = FakeBulkApi(httpserver, upload=slow_upload)
    parts = make_parts(tmp_path, lanes=4, per_lane=4)
    push(client, httpserver.url_for("/"), parts, concurrency=concurrency)

    for lane in range(4):
        events = [(kind, seq) for kind, lane_of, seq in timeline if lane_of == lane]
        assert events == [(kind, seq) for seq in range(4) for kind in ("arrive", "leave")]
    all_records = [r for s in api.of("upload") for r in decode(s.body)]
    assert sorted(r["id"] for r in all_records) == sorted(
        r["id"] for p in parts for r in records_for(p.lane, p.lane_seq)
    )
    assert in_flight[1] == 1 if concurrency == 1 else in_flight[1] > 1


def test_never_more_than_20_requests_in_flight(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Uploads at concurrency 20 plus a busy keep-alive never exceed 20 requests at once."""
    lock = threading.Lock()
    counts = {"now": 0, "most": 0, "uploads_now": 0, "uploads_most": 0}

    def counted(kind: str) -> Callable[[Request, int], Response]:
        def handle(request: Request, number: int) -> Response:
            with lock:
                counts["now"] += 1
                counts["most"] = max(counts["most"], counts["now"])
                if kind == "upload":
                    counts["uploads_now"] += 1
                    counts["uploads_most"] = max(counts["uploads_most"], counts["uploads_now"])
            time.sleep(0.1)
            with lock:
                counts["now"] -= 1
                if kind == "upload":
                    counts["uploads_now"] -= 1
            if kind == "upload":
                return json_response({"part_id": f"P{number}"}, 201)
            return Response("", status=200)

        return handle

    api = FakeBulkApi(httpserver, upload=counted("upload"), keep_alive=counted("keep-alive"))
    parts = make_parts(tmp_path, lanes=40, per_lane=1)
    # A transport with a roomy pool, so only the session itself can keep the limit.
    roomy = httpx.HTTPTransport(limits=httpx.Limits(max_connections=100))
    with build_client(write_key_auth(Secret(KEY)), transport=roomy) as unlimited:
        result = push(
            unlimited, httpserver.url_for("/"), parts, concurrency=20, keep_alive_interval=0.01
        )
    assert len(result.parts) == 40
    assert api.of("keep-alive")
    assert counts["most"] <= 20
    assert counts["uploads_most"] <= 19


def test_keep_alive_is_sent_while_a_slow_upload_is_in_flight(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """The keep-alive timer keeps running while an upload takes long."""
    uploading, kept = threading.Event(), threading.Event()
    during: list[bool] = []

    def slow_upload(request: Request, number: int) -> Response:
        uploading.set()
        kept.wait(EVENT_BOUND_S)  # answered only once a keep-alive came meanwhile
        uploading.clear()
        return json_response({"part_id": "P1"}, 201)

    def keep_alive(request: Request, number: int) -> Response:
        during.append(uploading.is_set())
        if uploading.is_set():
            kept.set()
        return Response("", status=200)

    FakeBulkApi(httpserver, upload=slow_upload, keep_alive=keep_alive)
    events = Recorder()
    push(
        client,
        httpserver.url_for("/"),
        [make_part(tmp_path, 1, 0, 0)],
        keep_alive_interval=0.1,
        events=events,
    )
    assert any(during)
    assert events.keep_alives == len(during)


def test_a_keep_alive_failure_that_a_retry_fixes_does_not_abort(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """A keep-alive 500 followed by 200 is a retry, not a failed session."""

    retried = threading.Event()

    def slow_upload(request: Request, number: int) -> Response:
        retried.wait(EVENT_BOUND_S)  # answered once the keep-alive's retry got through
        return json_response({"part_id": "P1"}, 201)

    def flaky(request: Request, number: int) -> Response:
        if number == 1:
            return Response("", status=500)
        retried.set()
        return Response("", status=200)

    api = FakeBulkApi(httpserver, upload=slow_upload, keep_alive=flaky)
    events = Recorder()
    result = push(
        client,
        httpserver.url_for("/"),
        [make_part(tmp_path, 1, 0, 0)],
        keep_alive_interval=0.1,
        events=events,
    )
    assert result.parts[0].part_id == "P1"
    assert api.finish_errors() == [""]
    assert any(e.request.startswith("keep-alive") for e in events.retries)


def test_keep_alive_exhausting_its_retries_ends_the_session(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """A keep-alive that keeps failing ends the session with an error and exit 4."""

    release = threading.Event()

    def held_upload(request: Request, number: int) -> Response:
        release.wait(EVENT_BOUND_S)  # unanswered until the session ended: only the keep-alive can
        return json_response({"part_id": "P1"}, 201)

    api = FakeBulkApi(
        httpserver, upload=held_upload, keep_alive=lambda r, n: Response("", status=503)
    )
    try:
        with pytest.raises(ApiError) as caught:
            push(
                client,
                httpserver.url_for("/"),
                [make_part(tmp_path, 1, 0, 0)],
                keep_alive_interval=0.1,
                policy=RetryPolicy(max_attempts=2),
                abort_grace=0.1,
            )
    finally:
        release.set()
    assert "keep-alive of session S1 failed after 2 attempts: HTTP 503" in str(caught.value)
    assert caught.value.exit_status == ExitStatus.API_FAILURE
    assert "keep-alive" in api.finish_errors()[0]


# -- retries --------------------------------------------------------------------------------


def ordered_session(server: HTTPServer, uploads: list[Response]) -> list[bytes]:
    """Ordered handlers: start, the given upload answers in turn, finish; returns the bodies."""
    bodies: list[bytes] = []
    server.expect_ordered_request("/v0/start", method="POST").respond_with_json(
        {"sync_id": "S1"}, status=201
    )
    for answer in uploads:

        def handle(request: Request, answer: Response = answer) -> Response:
            bodies.append(request.get_data())
            return answer

        server.expect_ordered_request("/v0/upload/S1", method="POST").respond_with_handler(handle)

    def finish(request: Request) -> Response:
        bodies.append(request.get_data())
        return Response("", status=202)

    server.expect_ordered_request("/v0/finish/S1", method="POST").respond_with_handler(finish)
    return bodies


@pytest.mark.parametrize("status", [500, 503, 408])
def test_retryable_status_is_retried_with_identical_bytes(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path, status: int
) -> None:
    """A 5xx or 408 upload is retried; the retry re-sends the very same bytes."""
    bodies = ordered_session(
        httpserver, [Response("oops", status=status), json_response({"part_id": "P1"}, 201)]
    )
    events = Recorder()
    part = make_part(tmp_path, 1, 0, 0)
    result = push(client, httpserver.url_for("/"), [part], events=events)
    assert bodies[0] == bodies[1] == part.path.read_bytes()
    assert json.loads(bodies[2]) == {"error": ""}
    assert result.parts[0].attempts == 2
    assert result.parts[0].part_id == "P1"
    assert [(e.request, e.attempt, e.reason) for e in events.retries] == [
        ("upload of part 1", 1, f"HTTP {status}")
    ]
    httpserver.check_assertions()


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("7", 7.0, 7.0),
        ("in 30 s", 20.0, 30.0),  # an HTTP-date, made when the test runs
        ("100000", 120.0, 120.0),
    ],
    ids=["seconds", "http-date", "capped"],
)
def test_429_honours_retry_after(
    httpserver: HTTPServer,
    client: httpx.Client,
    tmp_path: Path,
    retry_after: str,
    low: float,
    high: float,
) -> None:
    """Retry-After (seconds or HTTP-date, capped at 120 s) sets the least delay of the retry."""
    if retry_after == "in 30 s":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    ordered_session(
        httpserver,
        [
            Response("slow down", status=429, headers={"Retry-After": retry_after}),
            json_response({"part_id": "P1"}, 201),
        ],
    )
    events = Recorder()
    push(client, httpserver.url_for("/"), [make_part(tmp_path, 1, 0, 0)], events=events)
    (event,) = events.retries
    assert low <= event.delay <= high * 1.5  # jitter of up to half on top
    assert event.wait == 0.0  # backoff is off in tests
    assert event.reason == "HTTP 429"


def test_dropped_connection_is_retried(
    raw_server: Callable[..., RawServer], client: httpx.Client, tmp_path: Path
) -> None:
    """An upload whose connection drops after its body is re-sent, byte for byte, but in a
    fresh session: S1 (which the first attempt may still land in) is ended with an error."""
    server = raw_server(
        [
            respond(201, {"sync_id": "S1"}),
            drop,
            respond(202),
            respond(201, {"sync_id": "S2"}),
            respond(201, {"part_id": "P1"}),
            respond(202),
        ]
    )
    part = make_part(tmp_path, 1, 0, 0)
    result = push(client, server.url, [part])
    paths = [r.path for r in server.requests]
    assert paths == [
        "/v0/start",
        "/v0/upload/S1",
        "/v0/finish/S1",
        "/v0/start",
        "/v0/upload/S2",
        "/v0/finish/S2",
    ]
    uploads = [r for r in server.requests if r.path.startswith("/v0/upload/")]
    assert [u.body for u in uploads] == [part.path.read_bytes()] * 2
    assert b"got no answer" in server.requests[2].body
    assert result.sync_id == "S2"
    assert result.parts[0].attempts == 1


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_client_errors_on_upload_are_not_retried(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path, status: int
) -> None:
    """400/401/403/413 are answers: one upload request, then finish with an error."""
    api = FakeBulkApi(httpserver, upload=lambda r, n: Response('{"message":"no"}', status=status))
    part = make_part(tmp_path, 1, 0, 0)
    with pytest.raises((ApiError, CredentialsError)) as caught:
        push(client, httpserver.url_for("/"), [part])
    message = str(caught.value)
    assert len(api.of("upload")) == 1
    (error,) = api.finish_errors()
    assert error.startswith("bulkctl: ")
    assert KEY not in message
    assert KEY not in error
    if status in (401, 403):
        assert isinstance(caught.value, CredentialsError)
        assert f"the write key was rejected (HTTP {status})" in message
    elif status == 413:
        assert "part 1" in message
        assert f"{part.bytes_uncompressed} B uncompressed" in message
        assert f"{part.bytes_compressed} B gzip" in message
        assert "--part-size" in message
    else:
        assert "upload of part 1 failed: HTTP 400" in message


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_write_key_on_start(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path, status: int
) -> None:
    """401/403 on start: CredentialsError (exit 3) that never shows the key, no retry."""
    httpserver.expect_request("/v0/start").respond_with_data(
        f"invalid write key {KEY}", status=status
    )
    with pytest.raises(CredentialsError) as caught:
        push(client, httpserver.url_for("/"), [make_part(tmp_path, 1, 0, 0)])
    assert caught.value.exit_status == ExitStatus.CREDENTIALS
    assert KEY not in str(caught.value)
    assert len(httpserver.log) == 1


def test_upload_failing_after_retries_ends_the_session_with_an_error(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """Exhausted retries: finish with a non-empty error; ApiError names part, attempts, status."""
    api = FakeBulkApi(httpserver, upload=lambda r, n: Response("busy", status=503))
    part = make_part(tmp_path, 1, 0, 0)
    events = Recorder()
    with pytest.raises(ApiError) as caught:
        push(
            client,
            httpserver.url_for("/"),
            [part],
            policy=RetryPolicy(max_attempts=3),
            events=events,
        )
    assert str(caught.value) == "upload of part 1 failed after 3 attempts: HTTP 503"
    assert caught.value.exit_status == ExitStatus.API_FAILURE
    assert len(api.of("upload")) == 3
    assert part.attempts == 3
    assert api.finish_errors() == ["bulkctl: upload of part 1 failed after 3 attempts: HTTP 503"]
    assert events.finishing_texts == api.finish_errors()


def test_failing_to_end_the_session_is_reported_too(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """When the error finish fails as well, the message says the session was left open."""
    httpserver.expect_request("/v0/start").respond_with_json({"sync_id": "S1"}, status=201)
    httpserver.expect_request("/v0/upload/S1").respond_with_data("no", status=400)
    httpserver.expect_request("/v0/finish/S1").respond_with_data("down", status=503)
    with pytest.raises(ApiError) as caught:
        push(
            client,
            httpserver.url_for("/"),
            [make_part(tmp_path, 1, 0, 0)],
            policy=RetryPolicy(max_attempts=2),
        )
    message = str(caught.value)
    assert message.startswith("upload of part 1 failed: HTTP 400")
    assert "ending session S1 with an error failed too" in message
    assert "left open" in message


def test_live_parts_iterator_raising_ends_the_session_and_reraises(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """--stream: an invalid record mid-way ends the session with an error; the error surfaces."""
    api = FakeBulkApi(httpserver)
    invalid = InvalidRecordsError("rooms.ndjson:7: id is missing")

    def live() -> Iterator[Part]:
        yield make_part(tmp_path, 1, 0, 0)
        raise invalid

    with pytest.raises(InvalidRecordsError) as caught:
        push(client, httpserver.url_for("/"), live())
    assert caught.value is invalid
    assert api.finish_errors() == ["bulkctl: rooms.ndjson:7: id is missing"]


def test_iterator_failing_before_the_first_part_sends_nothing(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    """An input that fails before its first part is packed never starts a session."""
    api = FakeBulkApi(httpserver)
    consumed: list[Part] = []

    def live() -> Iterator[Part]:
        if not consumed:
            raise InvalidRecordsError("rooms.ndjson:1: not JSON")
        yield from ()

    with pytest.raises(InvalidRecordsError):
        push(client, httpserver.url_for("/"), live())
    assert api.seen == []


def test_cancel_ends_the_session_as_interrupted(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """Setting `cancel` (SIGTERM) stops uploading and finishes with error "interrupted"."""
    api = FakeBulkApi(httpserver)
    cancel = threading.Event()

    class CancelAfterFirst(Recorder):
        def part_done(self, part: Part) -> None:
            cancel.set()

    parts = make_parts(tmp_path, lanes=1, per_lane=5)
    with pytest.raises(InterruptedError_) as caught:
        push(client, httpserver.url_for("/"), parts, cancel=cancel, events=CancelAfterFirst())
    assert caught.value.exit_status == ExitStatus.INTERRUPTED
    assert api.finish_errors() == ["interrupted"]
    assert len(api.of("upload")) < 5


def test_cancel_stops_a_large_upload_mid_body(
    raw_server: Callable[..., RawServer], client: httpx.Client, tmp_path: Path
) -> None:
    """A stop during a long upload cuts the body short and ends the session "interrupted"."""
    server = raw_server(
        # The cut-short upload is read to its end after finish arrives: either may take
        # the second answer.
        [respond(201, {"sync_id": "S1"}), respond(202), respond(202)],
        read_rate=2_000_000,
    )
    path = tmp_path / "big.gz"
    path.write_bytes(bytes(range(256)) * 32_768)  # 8 MiB
    size = path.stat().st_size
    part = Part(1, 0, 0, path, 1, size, size, "0" * 64)
    cancel = threading.Event()

    class CancelAfterOneMegabyte(Recorder):
        def part_progress(self, part: Part, bytes_sent: int) -> None:
            if bytes_sent > 1_000_000:
                cancel.set()

    with pytest.raises(InterruptedError_):
        push(client, server.url, [part], cancel=cancel, events=CancelAfterOneMegabyte())
    server.wait_for_requests(3)
    (upload,) = [r for r in server.requests if r.path == "/v0/upload/S1"]
    (finish,) = [r for r in server.requests if r.path == "/v0/finish/S1"]
    assert len(upload.body) < size
    assert json.loads(finish.body) == {"error": "interrupted"}


def test_ctrl_c_in_the_main_thread_ends_the_session_as_interrupted(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """KeyboardInterrupt while reading input ends the session with error "interrupted"."""
    api = FakeBulkApi(httpserver)

    def live() -> Iterator[Part]:
        yield make_part(tmp_path, 1, 0, 0)
        raise KeyboardInterrupt

    with pytest.raises(InterruptedError_, match="session S1 was ended with an error"):
        push(client, httpserver.url_for("/"), live())
    assert api.finish_errors() == ["interrupted"]


def test_ambiguous_finish_is_reported_as_outcome_unknown(
    raw_server: Callable[..., RawServer], client: httpx.Client, tmp_path: Path
) -> None:
    """finish sent, connection dropped, then 400: outcome unknown, never success."""
    server = raw_server(
        [respond(201, {"sync_id": "S1"}), respond(201, {"part_id": "P1"}), drop, respond(400)]
    )
    with pytest.raises(OutcomeUnknownError) as caught:
        push(client, server.url, [make_part(tmp_path, 1, 0, 0)])
    assert "may or may not have been applied: outcome unknown" in str(caught.value)
    assert "check the warehouse" in str(caught.value)
    finishes = [r for r in server.requests if r.path == "/v0/finish/S1"]
    assert [json.loads(r.body) for r in finishes] == [{"error": ""}] * 2


def test_a_trickling_answer_is_cut_off_by_the_total_deadline(
    raw_server: Callable[..., RawServer], client: httpx.Client, tmp_path: Path
) -> None:
    """A response sent one byte every 0.2 s cannot outlast the request's total deadline."""
    server = raw_server([trickle])
    with pytest.raises(
        ApiError, match=r"no complete answer from 127\.0\.0\.1:[0-9]+ within the deadline of 0\.6 s"
    ):
        push(
            client,
            server.url,
            [make_part(tmp_path, 1, 0, 0)],
            deadlines=Deadlines(control=0.6),
            policy=RetryPolicy(max_attempts=1),
        )


def test_redirects_are_not_followed(
    httpserver: HTTPServer, client: httpx.Client, tmp_path: Path
) -> None:
    """A 3xx is reported with the redacted Location and a hint to use --endpoint."""
    httpserver.expect_request("/v0/start").respond_with_data(
        "", status=307, headers={"Location": "https://u:pw@other.example/v0/start?token=abc"}
    )
    with pytest.raises(ApiError) as caught:
        push(client, httpserver.url_for("/"), [make_part(tmp_path, 1, 0, 0)])
    message = str(caught.value)
    assert "https://other.example/v0/start?token=REDACTED" in message
    assert "--endpoint" in message
    assert "pw" not in message and "abc" not in message
    assert len(httpserver.log) == 1


def test_an_unverifiable_tls_certificate_is_not_retried(
    raw_server: Callable[..., RawServer], client: httpx.Client, tmp_path: Path
) -> None:
    """A self-signed certificate fails once, with a message about the certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = raw_server([respond(201, {"sync_id": "S1"})], tls=context)
    with pytest.raises(
        ApiError, match=re.escape("TLS certificate of 127.0.0.1 could not be verified")
    ):
        push(client, server.url, [make_part(tmp_path, 1, 0, 0)])
    assert server.connections == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9/x",
        "http://[::1]:9/",
        "http://localhost:1",
        "https://bulk.example.com",
    ],
)
def test_loopback_http_and_any_https_are_allowed(url: str) -> None:
    """Plain http stays on the machine for loopback hosts, so it is allowed."""
    check_endpoint(url)


def test_the_insecure_http_opt_in_allows_remote_http() -> None:
    """--allow-insecure-http lets a remote http:// endpoint through; other schemes never."""
    check_endpoint("http://bulk.example.com", allow_insecure_http=True)
    with pytest.raises(UsageError):
        check_endpoint("ftp://bulk.example.com", allow_insecure_http=True)


def test_redact_url_strips_user_info_and_query_values() -> None:
    """Redacted URLs keep scheme, host, port, path and query keys only."""
    assert (
        redact_url("https://user:secret@Host.example:8443/a/b?key=s3cr3t&x=#frag")
        == "https://host.example:8443/a/b?key=REDACTED&x=REDACTED"
    )


@pytest.mark.parametrize("concurrency", [0, 21])
def test_concurrency_out_of_range_is_a_usage_error(client: httpx.Client, concurrency: int) -> None:
    """--concurrency must be 1 to 20."""
    with pytest.raises(UsageError, match="between 1 and 20"):
        push(client, "https://bulk.example.com", [], concurrency=concurrency)


# -- the target's pure request / answer pairs ------------------------------------------------


def test_requests_are_built_under_the_endpoint_path(tmp_path: Path) -> None:
    """URLs keep an endpoint's path prefix and quote the sync_id."""
    part = make_part(tmp_path, 1, 0, 0)
    upload = segment_bulk.upload_request("https://h.example/proxy/", "a/b", part)
    assert upload.url == "https://h.example/proxy/v0/upload/a%2Fb"
    assert upload.body_file == part.path
    assert segment_bulk.start_request("https://h.example").url == "https://h.example/v0/start"
    finish = segment_bulk.finish_request("https://h.example", "S1", "bulkctl: broke")
    assert json.loads(finish.content) == {"error": "bulkctl: broke"}


def test_a_2xx_answer_without_the_id_is_an_error(tmp_path: Path) -> None:
    """A success status whose body lacks sync_id / part_id is not taken as success."""
    with pytest.raises(ApiError, match="has no sync_id"):
        segment_bulk.parse_start(Reply(201, httpx.Headers(), b"{}"))
    with pytest.raises(ApiError, match="has no part_id"):
        segment_bulk.parse_upload(
            Reply(201, httpx.Headers(), b"not json"), make_part(tmp_path, 1, 0, 0)
        )


def test_error_answers_quote_a_bounded_excerpt_of_the_body() -> None:
    """Other non-2xx statuses name the status and at most 200 characters of the body."""
    with pytest.raises(ApiError) as caught:
        segment_bulk.parse_finish(Reply(500, httpx.Headers(), b"x" * 5000), "S1")
    assert str(caught.value) == "finish of session S1 failed: HTTP 500: " + "x" * 200 + "…"
    assert caught.value.status_code == 500

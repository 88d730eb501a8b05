"""The sandbox's Segment Objects Bulk API, driven over real HTTP, checked in real SQLite."""

from __future__ import annotations

import gzip
import io
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bulkctl.errors import UsageError
from bulkctl.sandbox import Faults, RunningSandbox, start_sandbox

GZIP = {"Content-Encoding": "gzip", "Content-Type": "binary/octet-stream"}
ROOM_47 = {
    "id": "2561341",
    "collection": "rooms",
    "properties": {
        "name": "Charming Beach Room Facing Ocean",
        "location": "Lihue, HI",
        "review_count": 47,
    },
}
ROOM_48 = {"id": "2561341", "collection": "rooms", "properties": {"review_count": 48}}
OTHER_ROOM = {"id": "7", "collection": "rooms", "properties": {"name": "Attic", "floor": 3}}

Starter = Callable[..., RunningSandbox]


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(obj) + b"\n" for obj in objects)


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.sqlite3"


@pytest.fixture
def start(db: Path) -> Iterator[Starter]:
    """Start sandboxes on free ports over `db`; all are stopped at the end of the test."""
    running: list[RunningSandbox] = []

    def starter(**options: Any) -> RunningSandbox:
        sandbox = start_sandbox(db, **options)
        running.append(sandbox)
        return sandbox

    yield starter
    for sandbox in running:
        sandbox.stop()


@pytest.fixture
def sandbox(start: Starter) -> RunningSandbox:
    return start()


def client_for(sandbox: RunningSandbox, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url, timeout=30, **options)


def begin(client: httpx.Client) -> str:
    response = client.post("/v0/start")
    assert response.status_code == 201, response.text
    return str(response.json()["sync_id"])


def upload(client: httpx.Client, sync_id: str, body: Any) -> httpx.Response:
    return client.post(f"/v0/upload/{sync_id}", content=body, headers=GZIP)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_partial_objects_merge_as_in_the_seed_example(sandbox: RunningSandbox, db: Path) -> None:
    """Parts apply in upload order: later values win per property, other columns are kept."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        assert upload(client, sync_id, gz(ndjson(ROOM_47, OTHER_ROOM))).status_code == 201
        assert upload(client, sync_id, gz(ndjson(ROOM_48))).status_code == 201
        done = client.post(f"/v0/finish/{sync_id}", json={"error": ""})
    assert done.status_code == 202
    assert done.json() == {"sync_id": sync_id, "status": "finished", "objects": 3}
    assert rows(db, "SELECT id, name, location, review_count, floor FROM rooms ORDER BY id") == [
        ("2561341", "Charming Beach Room Facing Ocean", "Lihue, HI", 48, None),
        ("7", "Attic", None, None, 3),
    ]
    assert rows(db, "SELECT status, parts, objects, error FROM _sandbox_sessions") == [
        ("finished", 2, 3, None)
    ]
    assert rows(db, "SELECT seq, lines FROM _sandbox_parts ORDER BY seq") == [(1, 2), (2, 1)]


def test_values_keep_their_json_types_and_odd_names_are_quoted(
    sandbox: RunningSandbox, db: Path
) -> None:
    """Identifiers are quoted safely; `id` as a property lands in `property_id`."""
    props = {'we"ird name': "x", "select": 1.5, "id": "inner", "flag": True}
    obj = {"id": "a", "collection": "odd_things", "properties": props}
    with client_for(sandbox) as client:
        sync_id = begin(client)
        assert upload(client, sync_id, gz(ndjson(obj))).status_code == 201
        assert client.post(f"/v0/finish/{sync_id}", json={"error": ""}).status_code == 202
    got = rows(db, 'SELECT id, "we""ird name", "select", property_id, flag FROM odd_things')
    assert got == [("a", "x", 1.5, "inner", 1)]


def test_write_key_is_required_and_never_logged(start: Starter) -> None:
    """With a write key, only Basic `key:` passes; everything else gets 401 JSON."""
    log = io.StringIO()
    sandbox = start(write_key="s3cr3t-key", log=log)
    bad_auths: list[Any] = [None, ("wrong", ""), ("s3cr3t-key", "pw"), ("", "s3cr3t-key")]
    for auth in bad_auths:
        with client_for(sandbox, auth=auth) as client:
            response = client.post("/v0/start")
        assert response.status_code == 401
        assert "error" in response.json()
    with client_for(sandbox, auth=("s3cr3t-key", "")) as client:
        assert client.post("/v0/start").status_code == 201
    text = log.getvalue()
    assert text.count("POST /v0/start 401") == 4
    assert "s3cr3t" not in text
    assert "Basic" not in text and "uthorization" not in text


def test_part_over_the_uncompressed_limit_is_413(start: Starter) -> None:
    """More uncompressed bytes than the limit is refused with 413; the session goes on."""
    sandbox = start(max_part_bytes=1000)
    many = ndjson(*[{**OTHER_ROOM, "id": str(n)} for n in range(40)])
    assert len(many) > 1000
    with client_for(sandbox) as client:
        sync_id = begin(client)
        refused = upload(client, sync_id, gz(many))
        assert refused.status_code == 413
        assert "1,000" in refused.json()["error"]
        assert upload(client, sync_id, gz(ndjson(OTHER_ROOM))).status_code == 201


def test_bad_line_is_400_naming_it(sandbox: RunningSandbox) -> None:
    """The first line that breaks the shared rules is named, 1-based within the part."""
    bad = {"id": "3", "collection": "rooms", "properties": {"tags": ["a", "b"]}}
    with client_for(sandbox) as client:
        sync_id = begin(client)
        response = upload(client, sync_id, gz(ndjson(ROOM_47, OTHER_ROOM, bad, bad)))
    assert response.status_code == 400
    body = response.json()
    assert body["line"] == 3
    assert body["error"].startswith("line 3:")
    assert [p["field"] for p in body["problems"]] == ["properties.tags"]


def test_oversized_line_is_refused_without_reading_it_all(sandbox: RunningSandbox) -> None:
    """A line over 400,000 bytes is refused as object.too_large, naming its line."""
    huge = {
        "id": "1",
        "collection": "rooms",
        "properties": {f"p{n}": "x" * 1000 for n in range(500)},
    }
    with client_for(sandbox) as client:
        sync_id = begin(client)
        response = upload(client, sync_id, gz(ndjson(OTHER_ROOM, huge)))
    assert response.status_code == 400
    assert response.json()["line"] == 2
    assert response.json()["problems"][0]["rule"] == "object.too_large"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (gzip.compress(ndjson(OTHER_ROOM))[:-5], GZIP),
        (b"this is not gzip at all", GZIP),
        (b"", GZIP),
        (gzip.compress(ndjson(OTHER_ROOM)) + b"trailing junk", GZIP),
        (ndjson(OTHER_ROOM), {"Content-Type": "binary/octet-stream"}),
    ],
    ids=["truncated", "not-gzip", "empty", "trailing-junk", "no-content-encoding"],
)
def test_bodies_that_are_not_clean_gzip_are_400(
    sandbox: RunningSandbox, body: bytes, headers: dict[str, str]
) -> None:
    """Uploads must be complete gzip with Content-Encoding: gzip."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        response = client.post(f"/v0/upload/{sync_id}", content=body, headers=headers)
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]


def test_chunked_upload_of_concatenated_members(sandbox: RunningSandbox, db: Path) -> None:
    """A chunked body split at odd places, of several gzip members, is one part."""
    objects = [{**OTHER_ROOM, "id": str(n), "properties": {"n": n}} for n in range(3000)]
    body = gz(ndjson(*objects[:1000])) + gz(ndjson(*objects[1000:]))

    def pieces() -> Iterator[bytes]:
        for offset in range(0, len(body), 777):
            yield body[offset : offset + 777]

    with client_for(sandbox) as client:
        sync_id = begin(client)
        response = upload(client, sync_id, pieces())
        assert response.status_code == 201, response.text
        assert client.post(f"/v0/finish/{sync_id}", json={"error": ""}).status_code == 202
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert rows(db, "SELECT lines FROM _sandbox_parts") == [(3000,)]
    assert rows(db, "SELECT count(*), sum(n) FROM rooms") == [(3000, sum(range(3000)))]


def test_unknown_and_finished_sessions_are_400(sandbox: RunningSandbox) -> None:
    """Calls on an unknown or already finished session are refused with a JSON reason."""
    with client_for(sandbox) as client:
        unknown = upload(client, "nosuchsession", gz(ndjson(OTHER_ROOM)))
        sync_id = begin(client)
        assert client.post(f"/v0/finish/{sync_id}", json={"error": ""}).status_code == 202
        again = client.post(f"/v0/finish/{sync_id}", json={"error": ""})
        late = upload(client, sync_id, gz(ndjson(OTHER_ROOM)))
        alive = client.post(f"/v0/keep-alive/{sync_id}")
    assert unknown.status_code == 400
    assert unknown.json()["status"] == "unknown"
    for response in (again, late, alive):
        assert response.status_code == 400
        assert response.json()["status"] == "finished"
        assert "already finished" in response.json()["error"]


class HandClock:
    """Sessions' idle clock, moved only by the test (a loaded machine cannot move it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_session_expires(start: Starter, db: Path) -> None:
    """A session with no call for session_timeout seconds is refused as expired."""
    clock = HandClock()
    sandbox = start(session_timeout=10.0, clock=clock)
    with client_for(sandbox) as client:
        sync_id = begin(client)
        clock.now += 10.5
        response = upload(client, sync_id, gz(ndjson(OTHER_ROOM)))
    assert response.status_code == 400
    assert response.json()["status"] == "expired"
    assert rows(db, "SELECT status FROM _sandbox_sessions") == [("expired",)]


def test_keep_alive_keeps_a_session_open(start: Starter) -> None:
    """Keep-alive answers 200 and resets the idle clock."""
    clock = HandClock()
    sandbox = start(session_timeout=10.0, clock=clock)
    with client_for(sandbox) as client:
        sync_id = begin(client)
        for _ in range(3):
            clock.now += 9.0  # 27 s in all, never 10 s without a call
            assert client.post(f"/v0/keep-alive/{sync_id}").status_code == 200
        assert upload(client, sync_id, gz(ndjson(OTHER_ROOM))).status_code == 201


def test_finish_with_an_error_discards_the_session(sandbox: RunningSandbox, db: Path) -> None:
    """A non-empty error applies nothing, removes the spooled parts and keeps the error."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        assert upload(client, sync_id, gz(ndjson(ROOM_47))).status_code == 201
        assert list(db.parent.glob("*.spool/**/*.gz"))
        done = client.post(f"/v0/finish/{sync_id}", json={"error": "client gave up"})
    assert done.status_code == 202
    assert done.json()["status"] == "discarded"
    assert rows(db, "SELECT status, error FROM _sandbox_sessions") == [
        ("discarded", "client gave up")
    ]
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'rooms'") == []
    assert list(db.parent.glob("*.spool/**/*.gz")) == []


def test_stopping_expires_open_sessions(start: Starter, db: Path) -> None:
    """Sessions still open when the sandbox stops are recorded as expired, files removed."""
    sandbox = start()
    with client_for(sandbox) as client:
        sync_id = begin(client)
        assert upload(client, sync_id, gz(ndjson(ROOM_47))).status_code == 201
    sandbox.stop()
    assert rows(db, "SELECT id, status FROM _sandbox_sessions") == [(sync_id, "expired")]
    assert list(db.parent.glob("*.spool/**/*.gz")) == []


def test_unknown_path_is_404_json(sandbox: RunningSandbox) -> None:
    """Paths no emulator serves get a JSON 404."""
    with client_for(sandbox) as client:
        response = client.post("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "no such endpoint" in response.json()["error"]


def test_one_log_line_per_request(start: Starter) -> None:
    """Each request logs method, path, status and duration."""
    log = io.StringIO()
    sandbox = start(log=log)
    with client_for(sandbox) as client:
        sync_id = begin(client)
        upload(client, sync_id, gz(ndjson(OTHER_ROOM)))
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[1:4] == ["POST", "/v0/start", "201"]
    assert lines[1].split()[1:4] == ["POST", f"/v0/upload/{sync_id}", "201"]
    assert lines[1].endswith("ms")


def test_fail_uploads_answers_500_to_the_first_n(start: Starter) -> None:
    """--fail-uploads N: the first N uploads get 500, then uploads work."""
    sandbox = start(faults=Faults(fail_uploads=2))
    with client_for(sandbox) as client:
        sync_id = begin(client)
        statuses = [upload(client, sync_id, gz(ndjson(OTHER_ROOM))).status_code for _ in range(3)]
    assert statuses == [500, 500, 201]


def test_status_for_forces_a_sequence_with_retry_after(start: Starter) -> None:
    """--status-for consumes one forced status per request; --retry-after marks 429/503."""
    faults = Faults(status_for={"upload": (503, 429, 500), "start": (503,)}, retry_after=3)
    sandbox = start(faults=faults)
    with client_for(sandbox) as client:
        first_start = client.post("/v0/start")
        sync_id = begin(client)
        answers = [upload(client, sync_id, gz(ndjson(OTHER_ROOM))) for _ in range(4)]
    assert first_start.status_code == 503
    assert [a.status_code for a in answers] == [503, 429, 500, 201]
    assert [a.headers.get("retry-after") for a in answers] == ["3", "3", None, None]
    assert "--status-for upload" in answers[0].json()["error"]


def test_status_for_finish_leaves_the_session_open(start: Starter, db: Path) -> None:
    """A forced finish failure is not applied; finishing again applies the session."""
    sandbox = start(faults=Faults(status_for={"finish": (500,), "keep-alive": (503,)}))
    with client_for(sandbox) as client:
        sync_id = begin(client)
        assert client.post(f"/v0/keep-alive/{sync_id}").status_code == 503
        assert upload(client, sync_id, gz(ndjson(OTHER_ROOM))).status_code == 201
        assert client.post(f"/v0/finish/{sync_id}", json={"error": ""}).status_code == 500
        assert client.post(f"/v0/finish/{sync_id}", json={"error": ""}).status_code == 202
    assert rows(db, "SELECT id FROM rooms") == [("7",)]


def test_latency_delays_every_answer(start: Starter) -> None:
    """--latency MS: no answer comes sooner than MS milliseconds."""
    sandbox = start(faults=Faults(latency_ms=300))
    with client_for(sandbox) as client:
        began = time.monotonic()
        begin(client)
        waited = time.monotonic() - began
    assert waited >= 0.3


def test_drop_connection_on_the_nth_request(start: Starter) -> None:
    """--drop-connection-on N: the Nth request gets no answer at all; later ones do."""
    sandbox = start(faults=Faults(drop_connection_on=2))
    with client_for(sandbox) as client:
        sync_id = begin(client)
        with pytest.raises(httpx.RemoteProtocolError):
            upload(client, sync_id, gz(ndjson(OTHER_ROOM)))
        assert upload(client, sync_id, gz(ndjson(OTHER_ROOM))).status_code == 201


def test_unknown_endpoint_in_status_for_is_a_usage_error(start: Starter) -> None:
    """--status-for must name an endpoint the sandbox serves."""
    with pytest.raises(UsageError, match="no such endpoint"):
        start(faults=Faults(status_for={"uplaod": (503,)}))


class _HeldUploads:
    """Uploads whose bodies stall after their first bytes until released."""

    def __init__(self, sandbox: RunningSandbox, sync_id: str, count: int) -> None:
        self.release = threading.Event()
        self.statuses: list[int] = []
        body = gz(ndjson(OTHER_ROOM))
        self._threads = [
            threading.Thread(target=self._send, args=(sandbox, sync_id, body)) for _ in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, sandbox: RunningSandbox, sync_id: str, body: bytes) -> None:
        def stalled() -> Iterator[bytes]:
            yield body[:5]
            self.release.wait(30)
            yield body[5:]

        with client_for(sandbox) as client:
            self.statuses.append(upload(client, sync_id, stalled()).status_code)

    def finish(self) -> list[int]:
        self.release.set()
        for thread in self._threads:
            thread.join(30)
        return self.statuses


def wait_for_in_flight(sandbox: RunningSandbox, count: int) -> None:
    deadline = time.monotonic() + 30
    while sandbox.in_flight != count:
        assert time.monotonic() < deadline, f"never reached {count} requests in flight"
        time.sleep(0.01)


def test_twenty_requests_at_once_then_429(sandbox: RunningSandbox) -> None:
    """With 20 requests in progress the 21st gets 429 at once; the 20 still succeed."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        held = _HeldUploads(sandbox, sync_id, 20)
        try:
            wait_for_in_flight(sandbox, 20)
            refused = client.post(f"/v0/keep-alive/{sync_id}")
        finally:
            statuses = held.finish()
        after = client.post(f"/v0/keep-alive/{sync_id}")
    assert refused.status_code == 429
    assert "at most 20" in refused.json()["error"]
    assert statuses == [201] * 20
    assert after.status_code == 200


def test_finish_waits_for_uploads_in_progress(sandbox: RunningSandbox, db: Path) -> None:
    """A successful finish is refused while an upload of the session is still arriving."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        held = _HeldUploads(sandbox, sync_id, 1)
        try:
            wait_for_in_flight(sandbox, 1)
            early = client.post(f"/v0/finish/{sync_id}", json={"error": ""})
        finally:
            statuses = held.finish()
        done = client.post(f"/v0/finish/{sync_id}", json={"error": ""})
    assert early.status_code == 400
    assert "in progress" in early.json()["error"]
    assert statuses == [201]
    assert done.status_code == 202
    assert rows(db, "SELECT id FROM rooms") == [("7",)]


def test_client_gone_mid_upload_leaves_no_part(sandbox: RunningSandbox, db: Path) -> None:
    """An upload whose client disconnects mid-body is dropped; the session goes on without it."""
    with client_for(sandbox) as client:
        sync_id = begin(client)
        host, port = sandbox.host, sandbox.port
        with socket.create_connection((host, port)) as raw:
            raw.sendall(
                f"POST /v0/upload/{sync_id} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
                + gz(ndjson(OTHER_ROOM))[:20]
            )
            wait_for_in_flight(sandbox, 1)
        wait_for_in_flight(sandbox, 0)
        assert list(db.parent.glob("*.spool/**/*.gz")) == []
        done = client.post(f"/v0/finish/{sync_id}", json={"error": ""})
    assert done.json()["objects"] == 0
    assert rows(db, "SELECT parts FROM _sandbox_sessions") == [(0,)]

"""`push --target segment-objects` through the CLI against a real local `/v1/set` server.

The server (pytest-httpserver, threaded) applies every accepted request to an in-memory
warehouse in the order it answers them, and checks as it goes what the API and the order rules
require: at most 10 objects of one collection, objects of `id` and `properties` only, and no
request carrying an id that a still-unanswered request carries.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import write_ndjson
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

Cli = Callable[..., Any]
KEY = "wk_Obj3ctsKey_9Tz"
ENV = {"BULKCTL_WRITE_KEY": KEY}
Answer = Callable[[int], Response | None]  # by request number (1-based); None: apply it


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    """A threaded pytest-httpserver, so requests of different lanes really overlap."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@dataclass
class ObjectsApi:
    """`POST /v1/set` as the API behaves, with a scripted answer per request number."""

    server: HTTPServer
    answer: Answer = lambda number: None
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every request, as it arrived
    headers: list[dict[str, str]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)  # accepted bodies, in order
    warehouse: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    in_flight: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.expect_request("/v1/set", method="POST").respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        keys = {(body["collection"], item["id"]) for item in body["objects"]}
        with self.lock:
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
            number = len(self.bodies)
            self._check(body, request)
            for other in self.in_flight.values():
                if other & keys:
                    self.overlaps.append(f"request {number} shares ids {sorted(other & keys)}")
            self.in_flight[number] = keys
        try:
            time.sleep(0.002)  # widen the window in which two requests could overlap
            scripted = self.answer(number)
            if scripted is not None:
                return scripted
            with self.lock:
                self.applied.append(body)
                for item in body["objects"]:
                    row = self.warehouse.setdefault((body["collection"], item["id"]), {})
                    row.update(item["properties"])
            return Response('{"success": true}', 200, content_type="application/json")
        finally:
            with self.lock:
                del self.in_flight[number]

    def _check(self, body: dict[str, Any], request: Request) -> None:
        if set(body) != {"collection", "objects"}:
            self.problems.append(f"top-level keys {sorted(body)}")
        if not 1 <= len(body["objects"]) <= 10:
            self.problems.append(f"{len(body['objects'])} objects")
        ids = [item["id"] for item in body["objects"]]
        if len(ids) != len(set(ids)):
            self.problems.append(f"an id twice in one request: {ids}")
        for item in body["objects"]:
            if set(item) != {"id", "properties"}:
                self.problems.append(f"object keys {sorted(item)}")
        if request.headers.get("Content-Type") != "application/json":
            self.problems.append(f"content type {request.headers.get('Content-Type')}")
        expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
        if request.headers.get("Authorization") != expected:
            self.problems.append("wrong Authorization")

    def objects_sent(self) -> int:
        return sum(len(body["objects"]) for body in self.bodies)

    def assert_sound(self) -> None:
        assert not self.problems, self.problems
        assert not self.overlaps, self.overlaps
        self.server.check_handler_errors()


@pytest.fixture
def api(httpserver: HTTPServer) -> ObjectsApi:
    return ObjectsApi(httpserver)


def status(code: int, document: dict[str, Any] | None = None, **headers: str) -> Response:
    return Response(
        json.dumps(document or {}), code, headers=headers, content_type="application/json"
    )


def records(count: int, ids: int, seed: int = 3) -> list[dict[str, Any]]:
    """`count` records over `ids` ids in two collections, interleaved; each version numbered."""
    rng = random.Random(seed)
    versions: dict[str, int] = {}
    out = []
    for _ in range(count):
        number = rng.randrange(ids)
        object_id = f"o{number}"
        version = versions[object_id] = versions.get(object_id, -1) + 1
        properties: dict[str, Any] = {"version": version, f"p{version % 3}": version}
        if version == 0:
            properties["first"] = "é ünïcode ✓"
        out.append(
            {
                "id": object_id,
                "collection": "rooms" if number % 2 else "users",
                "properties": properties,
            }
        )
    return out


def expected(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The warehouse after every record applied in input order, merged by id."""
    state: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        state.setdefault((row["collection"], row["id"]), {}).update(row["properties"])
    return state


def push(path: Path | str, api: ObjectsApi, *extra: str) -> list[str]:
    return [
        "push",
        str(path),
        "--target",
        "segment-objects",
        "--endpoint",
        api.url,
        "--allow-insecure-http",
        "--json",
        *extra,
    ]


def summary_of(result: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_records_go_in_requests_of_at_most_10_objects_of_one_collection(
    cli: Cli, api: ObjectsApi, tmp_path: Path
) -> None:
    rows = records(57, ids=1000)
    rows = list({(r["collection"], r["id"]): r for r in rows}.values())  # unique ids
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    result = cli(push(path, api), env=ENV)
    assert result.exit_code == 0, result.stderr
    summary = summary_of(result)
    assert summary["status"] == "finished"
    assert summary["applied"] == len(rows) and summary["not_applied"] == 0
    assert summary["requests"] == len(api.bodies)
    api.assert_sound()
    assert api.warehouse == expected(rows)
    assert api.objects_sent() == len(rows)
    assert all("Synchronous" not in headers for headers in api.headers)  # every id once
    # Filled up to 10 per collection and lane: 8 lanes, 2 collections.
    assert len(api.bodies) <= len(rows) // 10 + 16


@pytest.mark.parametrize("concurrency", ["1", "20"])
def test_repeated_ids_end_in_input_order_at_any_concurrency(
    cli: Cli, api: ObjectsApi, tmp_path: Path, concurrency: str
) -> None:
    rows = records(600, ids=40)
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    result = cli(push(path, api, "--concurrency", concurrency, "-v"), env=ENV)
    assert result.exit_code == 0, result.stderr
    api.assert_sound()
    assert api.warehouse == expected(rows)
    assert all(headers.get("Synchronous") == "true" for headers in api.headers)
    assert "some ids occur more than once" in result.stderr
    # Versions of one id within one request were merged before sending.
    assert api.objects_sent() < len(rows)
    assert summary_of(result)["applied"] == len(rows)


def test_sync_and_no_sync_override_the_choice(cli: Cli, api: ObjectsApi, tmp_path: Path) -> None:
    unique = write_ndjson(
        tmp_path / "unique.ndjson",
        [{"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(12)],
    )
    result = cli(push(unique, api, "--sync"), env=ENV)
    assert result.exit_code == 0, result.stderr
    assert api.headers and all(h.get("Synchronous") == "true" for h in api.headers)

    api.headers.clear()
    repeated = write_ndjson(tmp_path / "repeated.ndjson", records(60, ids=5))
    result = cli(push(repeated, api, "--no-sync"), env=ENV)
    assert result.exit_code == 0, result.stderr
    assert api.headers and all("Synchronous" not in h for h in api.headers)
    assert "--no-sync sends no Synchronous header" in result.stderr
    assert summary_of(result)["warnings"]


def test_a_400_is_not_retried_and_quotes_the_reason(
    cli: Cli, api: ObjectsApi, tmp_path: Path
) -> None:
    reason = "objects[0].properties.size: malformed"
    api.answer = lambda number: status(400, {"error": reason})
    rows = [{"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(5)]
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    result = cli(push(path, api, "--concurrency", "1"), env=ENV)
    assert result.exit_code == 4, result.stderr
    assert len(api.bodies) == 1
    assert reason in result.stderr and "HTTP 400" in result.stderr
    summary = summary_of(result)
    assert summary["status"] == "failed"
    assert summary["applied"] == 0 and summary["not_applied"] == 5


def test_429_waits_for_retry_after_then_goes_on(cli: Cli, api: ObjectsApi, tmp_path: Path) -> None:
    api.answer = lambda number: status(429, {}, **{"Retry-After": "7"}) if number == 1 else None
    rows = [{"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(3)]
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    result = cli(push(path, api, "--concurrency", "1"), env=ENV)
    assert result.exit_code == 0, result.stderr
    retry = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert len(retry) == 1 and "HTTP 429" in retry[0], result.stderr
    assert re.search(r"in ([7-9]|10)\.\d s", retry[0]), retry[0]
    assert api.warehouse == expected(rows)


def test_5xx_and_dropped_answers_are_retried(cli: Cli, api: ObjectsApi, tmp_path: Path) -> None:
    api.answer = lambda number: status(503) if number in (1, 2) else None
    rows = [{"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(25)]
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    result = cli(push(path, api, "--concurrency", "1"), env=ENV)
    assert result.exit_code == 0, result.stderr
    assert len(api.bodies) == len(api.applied) + 2
    assert api.bodies[0] == api.bodies[1] == api.bodies[2]  # the same body again
    assert api.warehouse == expected(rows)


def test_credentials_missing_or_refused_exit_3_without_the_key(
    cli: Cli, api: ObjectsApi, tmp_path: Path, isolated_env: Path
) -> None:
    path = write_ndjson(tmp_path / "in.ndjson", records(5, ids=100))
    missing = cli(push(path, api))
    assert missing.exit_code == 3
    assert "write key" in missing.stderr and not api.bodies

    api.answer = lambda number: status(401, {"error": "bad key"})
    refused = cli(push(path, api, "--concurrency", "1"), env=ENV)
    assert refused.exit_code == 3, refused.stderr
    assert "the write key was rejected" in refused.stderr
    assert len(api.bodies) == 1  # never retried
    for text in (refused.stdout, refused.stderr):
        assert KEY not in text
    for file in isolated_env.rglob("*"):
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file


def test_stream_is_refused_before_anything_is_read(
    cli: Cli, api: ObjectsApi, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "in.ndjson", records(5, ids=100))
    result = cli(push(path, api, "--stream"), env=ENV)
    assert result.exit_code == 2
    assert "--stream does not apply to --target segment-objects" in result.stderr
    assert not api.bodies


def _acked_rows(home: Path) -> list[tuple[int, int, int]]:
    with sqlite3.connect(home / "jobs.sqlite3") as conn:
        rows = conn.execute("SELECT part, seq, records FROM requests ORDER BY part, seq").fetchall()
    conn.close()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_failure_after_some_requests_then_resume_sends_only_the_rest(
    cli: Cli, api: ObjectsApi, tmp_path: Path, isolated_env: Path, source: str
) -> None:
    rows = records(300, ids=120)
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    # The first 8 requests to arrive are applied; every later one (retries too) fails.
    api.answer = lambda number: status(500, {"error": "down"}) if number > 8 else None
    args = ["--concurrency", "4", "--max-attempts", "2"]
    if source == "file":
        first = cli(push(path, api, *args), env=ENV)
    else:
        first = cli(push("-", api, "-f", "ndjson", *args), env=ENV, input=path.read_bytes())
    assert first.exit_code == 4, first.stderr
    summary = summary_of(first)
    applied_first = len(api.applied)
    assert applied_first == 8 < len(api.bodies)
    assert summary["applied"] > 0
    assert summary["applied"] + summary["not_applied"] == len(rows)
    assert "applied" in first.stderr and "bulkctl resume" in first.stderr
    acked = _acked_rows(isolated_env)
    assert len(acked) == applied_first
    assert sum(n for _, _, n in acked) == summary["applied"]
    status_result = cli(["status", summary["job"], "--json"])
    assert json.loads(status_result.stdout)["applied"] == summary["applied"]

    accepted_before = [json.dumps(b, sort_keys=True) for b in api.applied]
    api.bodies.clear()
    api.answer = lambda number: None
    second = cli(["resume", summary["job"], "--json"], env=ENV)
    assert second.exit_code == 0, second.stderr
    resumed = [json.dumps(b, sort_keys=True) for b in api.bodies]
    assert not set(resumed) & set(accepted_before)  # nothing acknowledged went twice
    assert summary_of(second)["applied"] == len(rows)
    assert summary_of(second)["not_applied"] == 0
    api.assert_sound()
    assert api.warehouse == expected(rows)
    again = cli(["resume", summary["job"]], env=ENV)
    assert again.exit_code == 2 and "nothing to resume" in again.stderr


def test_validate_checks_the_same_rules(cli: Cli, tmp_path: Path) -> None:
    path = write_ndjson(
        tmp_path / "in.ndjson",
        [
            {"id": "1", "collection": "rooms", "properties": {"ok": 1}},
            {"id": "2", "collection": "rooms", "properties": {"tags": ["a"]}},
        ],
    )
    result = cli(["validate", str(path), "--target", "segment-objects", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["rejected"] == 1
    assert summary["errors"][0]["line"] == 2
    assert "properties.tags" in json.dumps(summary["errors"][0])


def test_ctrl_c_mid_push_exits_130_keeps_what_was_applied_and_resume_sends_the_rest(
    api: ObjectsApi, tmp_path: Path, isolated_env: Path
) -> None:
    import signal
    import subprocess

    from helpers import base_env, bulkctl_exe

    rows = records(200, ids=150)
    path = write_ndjson(tmp_path / "in.ndjson", rows)
    arrived, release = threading.Event(), threading.Event()

    def answer(number: int) -> Response | None:
        if number < 6:
            return None
        arrived.set()
        release.wait(30)  # unanswered until bulkctl has ended: the signal lands mid-request
        return status(503)

    api.answer = answer
    proc = subprocess.Popen(
        [str(bulkctl_exe()), *push(path, api, "--concurrency", "1")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base_env(**ENV),
        text=True,
    )
    try:
        assert arrived.wait(30), "the sixth request never arrived"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert "interrupted" in stderr and "were applied and stay" in stderr, stderr
    acked = _acked_rows(isolated_env)
    assert len(acked) == len(api.applied) == 5

    accepted_before = {json.dumps(b, sort_keys=True) for b in api.applied}
    api.bodies.clear()
    api.answer = lambda number: None
    env = base_env(**ENV)
    job = json.loads(
        subprocess.run(
            [str(bulkctl_exe()), "status", "last", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        ).stdout
    )
    assert job["applied"] == sum(n for _, _, n in acked)
    assert job["not_applied"] == len(rows) - job["applied"]
    resumed = subprocess.run(
        [str(bulkctl_exe()), "resume", job["job"], "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not {json.dumps(b, sort_keys=True) for b in api.bodies} & accepted_before
    api.assert_sound()
    assert api.warehouse == expected(rows)

"""`bulkctl push` through the CLI, as users call it, against a real local HTTP server.

Every test drives the whole command (options → read → pack → session → job store → report) and
decodes what the server received. Ordered handlers pin start → upload… → finish where that
order is fixed; every request is recorded. Backoff is off (conftest), so retries do not sleep.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_plain_text,
    base_env,
    basic_auth,
    bulkctl_exe,
    decode_part,
    write_ndjson,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bulkctl.jobs.store import JobStore

Cli = Callable[..., Any]
KEY = "wk_T3stKey_7Qx9Zr"
ENV = {"BULKCTL_WRITE_KEY": KEY}
SYNC_ID = "SYNC-42"
SUMMARY_KEYS = {
    "job",
    "target",
    "remote_id",
    "status",
    "records",
    "valid",
    "rejected",
    "parts",
    "bytes_uncompressed",
    "bytes_sent",
    "elapsed_s",
    "error",
}


# -- the recording fake API ------------------------------------------------------------------


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    """A threaded pytest-httpserver, so concurrent uploads really overlap."""
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # its coloured request lines must not mix into ours
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()
    werkzeug_log.setLevel(level)


@dataclass
class Seen:
    """One request as the server got it, with arrival and answer ticks of a shared clock."""

    kind: str
    headers: dict[str, str]
    body: bytes
    arrived: int = 0
    left: int = 0

    @property
    def records(self) -> list[dict[str, Any]]:
        return decode_part(self.body)

    @property
    def error(self) -> str:
        return str(json.loads(self.body)["error"])


Reply = Callable[[Request, int], Response]


@dataclass
class Api:
    """Scripts the Bulk API on a pytest-httpserver and records every request, in order."""

    server: HTTPServer
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ticks: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _record(self, kind: str, request: Request) -> tuple[Seen, int]:
        with self.lock:
            seen = Seen(kind, dict(request.headers), request.get_data(), next(self.ticks))
            self.seen.append(seen)
            return seen, sum(1 for s in self.seen if s.kind == kind)

    def _handler(self, kind: str, reply: Reply) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            seen, number = self._record(kind, request)
            try:
                return reply(request, number)
            finally:
                with self.lock:
                    seen.left = next(self.ticks)

        return handle

    def _path(self, kind: str) -> str:
        return "/v0/start" if kind == "start" else f"/v0/{kind}/{SYNC_ID}"

    def expect(self, kind: str, reply: Reply | None = None) -> None:
        """One ordered request of `kind` (start, upload, finish), answered by `reply`."""
        self.server.expect_ordered_request(self._path(kind), method="POST").respond_with_handler(
            self._handler(kind, reply or DEFAULT_REPLY[kind])
        )

    def always(self, kind: str, reply: Reply | None = None) -> None:
        """Any number of requests of `kind`, in any order."""
        self.server.expect_request(self._path(kind), method="POST").respond_with_handler(
            self._handler(kind, reply or DEFAULT_REPLY[kind])
        )

    def happy(self, uploads: int) -> None:
        """start → `uploads` uploads → finish, each answered as the API does."""
        self.expect("start")
        for _ in range(uploads):
            self.expect("upload")
        self.expect("finish")

    def of(self, kind: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.kind == kind]

    def kinds(self) -> list[str]:
        with self.lock:
            return [s.kind for s in self.seen]

    def check(self) -> None:
        """No unexpected request arrived and every ordered one did."""
        self.server.check_assertions()
        self.server.check_handler_errors()
        assert not self.server.ordered_handlers, "some expected requests never arrived"


def answer(status: int, document: dict[str, Any] | None = None, **headers: str) -> Reply:
    def reply(request: Request, number: int) -> Response:
        body = json.dumps(document) if document is not None else ""
        return Response(body, status=status, headers=headers, content_type="application/json")

    return reply


def _uploaded(request: Request, number: int) -> Response:
    return Response(json.dumps({"part_id": f"P{number}"}), 201, content_type="application/json")


DEFAULT_REPLY: dict[str, Reply] = {
    "start": answer(201, {"sync_id": SYNC_ID}),
    "upload": _uploaded,
    "finish": answer(202),
    "keep-alive": answer(200),
}


@pytest.fixture
def api(httpserver: HTTPServer) -> Api:
    return Api(httpserver)


# -- inputs ----------------------------------------------------------------------------------


def versioned_records(ids: list[str], count: int, pad: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` records over `ids`, each id's versions numbered 0, 1, 2… in input order."""
    rng = random.Random(seed)
    version = dict.fromkeys(ids, 0)
    out = []
    for n in range(count):
        record_id = rng.choice(ids)
        out.append(
            {
                "id": record_id,
                "collection": "rooms",
                "properties": {
                    "version": version[record_id],
                    "seq": n,
                    "note": f"{record_id}-{n}-" + "".join(rng.choices("abcdefgh", k=pad)),
                },
            }
        )
        version[record_id] += 1
    return out


def small_input(tmp_path: Path, count: int = 5) -> tuple[Path, list[dict[str, Any]]]:
    records = [
        {"id": f"r{n}", "collection": "rooms", "properties": {"name": f"room {n}", "beds": n}}
        for n in range(count)
    ]
    return write_ndjson(tmp_path / "rooms.ndjson", records), records


def dry_run_parts(cli: Cli, path: Path, *options: str, exit_code: int = 0) -> int:
    """How many parts a push with these options makes (a dry run packs the same way)."""
    result = cli(["push", str(path), "--dry-run", "--json", *options])
    assert result.exit_code == exit_code, result.stderr
    return int(json.loads(result.stdout)["parts"])


def one_json(stdout: str) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {stdout!r}"
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    return document


def home_bytes(home: Path) -> bytes:
    """Every byte bulkctl wrote under BULKCTL_HOME (job store, WAL, anything else)."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def push_args(path: Path, api: Api, *options: str) -> list[str]:
    return ["push", str(path), "--endpoint", api.url, *options]


ONE_LANE = ("--concurrency", "1")  # a small input then makes exactly one part


# -- the happy path --------------------------------------------------------------------------


def test_push_uploads_every_record_once_in_parts_within_the_part_size(
    cli: Cli, api: Api, tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start → every part (headers, auth, ≤ --part-size, records exactly once) → finish, exit 0."""
    monkeypatch.delenv("NO_COLOR")  # colour must stay off because stderr is not a terminal
    records = versioned_records([f"r{n}" for n in range(400)], 3000, pad=950)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    assert 2_800_000 < path.stat().st_size < 3_400_000
    options = ["--part-size", "1MB", "--concurrency", "4"]
    parts = dry_run_parts(cli, path, *options)
    assert parts >= 4
    api.happy(parts)

    result = cli([*push_args(path, api, *options), "--json"], env=ENV)

    assert result.exit_code == 0, result.stderr
    api.check()
    assert api.kinds() == ["start"] + ["upload"] * parts + ["finish"]
    for seen in api.seen:
        assert seen.headers["Authorization"] == basic_auth(KEY)
    uploads = api.of("upload")
    for seen in uploads:
        assert seen.headers["Content-Type"] == "binary/octet-stream"
        assert seen.headers["Content-Encoding"] == "gzip"
        assert len(gzip.decompress(seen.body)) <= 1_000_000
    sent = [r for seen in uploads for r in seen.records]
    key = lambda r: r["properties"]["seq"]  # noqa: E731
    assert sorted(sent, key=key) == records
    assert json.loads(api.of("finish")[0].body) == {"error": ""}

    summary = one_json(result.stdout)
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["status"] == "finished"
    assert summary["target"] == "segment-bulk"
    assert summary["remote_id"] == SYNC_ID
    assert summary["error"] is None
    assert (summary["records"], summary["valid"], summary["rejected"]) == (3000, 3000, 0)
    assert summary["parts"] == parts
    assert summary["bytes_uncompressed"] == sum(len(gzip.decompress(s.body)) for s in uploads)
    assert summary["bytes_sent"] == sum(len(s.body) for s in uploads)
    assert summary["job"]
    assert_plain_text(result.stderr)
    assert KEY not in result.stderr + result.stdout


@pytest.mark.parametrize("concurrency", [1, 8])
def test_each_ids_versions_reach_the_server_in_input_order(
    cli: Cli, api: Api, tmp_path: Path, concurrency: int
) -> None:
    """Per id, the versions the server sees (and the last one) are the input's, at any -c."""
    hot = [f"hot{n}" for n in range(4)]
    cold = [f"cold{n}" for n in range(300)]
    records = versioned_records(hot, 5200, pad=1000, seed=concurrency)
    records += versioned_records(cold, 900, pad=200, seed=concurrency + 1)
    random.Random(3).shuffle(records)  # hot and cold interleaved; hot versions keep their order
    hot_order: dict[str, list[int]] = {}
    for record in records:
        hot_order.setdefault(record["id"], []).append(record["properties"]["seq"])
    path = write_ndjson(tmp_path / "versions.ndjson", records)
    options = ["--part-size", "1MB", "--concurrency", str(concurrency)]
    parts = dry_run_parts(cli, path, *options)
    assert parts >= 6  # every hot id spans more than one part

    def slow_upload(request: Request, number: int) -> Response:
        time.sleep(0.02)  # widen the window in which an out-of-order upload would show
        return _uploaded(request, number)

    api.expect("start")
    for _ in range(parts):
        api.expect("upload", slow_upload)
    api.expect("finish")

    result = cli(push_args(path, api, *options), env=ENV)

    assert result.exit_code == 0, result.stderr
    api.check()
    uploads = sorted(api.of("upload"), key=lambda s: s.arrived)
    seen_order: dict[str, list[int]] = {}
    for upload in uploads:
        for record in upload.records:
            seen_order.setdefault(record["id"], []).append(record["properties"]["seq"])
    assert seen_order == hot_order
    last = {r["id"]: r for r in records}
    last_seen = {r["id"]: r for u in uploads for r in u.records}
    assert last_seen == last
    ids_of = [{r["id"] for r in u.records} for u in uploads]
    for (a, ids_a), (b, ids_b) in itertools.combinations(zip(uploads, ids_of, strict=True), 2):
        if ids_a & ids_b:  # two parts holding one id: the later must wait for the earlier
            assert a.left < b.arrived, "parts sharing an id were in flight at the same time"
    if concurrency == 8:
        overlapping = any(
            a.arrived < b.left and b.arrived < a.left for a, b in itertools.combinations(uploads, 2)
        )
        assert overlapping, "--concurrency 8 never uploaded two parts at once"


def test_push_reads_standard_input(cli: Cli, api: Api, tmp_path: Path) -> None:
    """`producer | bulkctl push -f ndjson -`: records piped in are all sent."""
    _, records = small_input(tmp_path)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    api.happy(1)
    result = cli(
        ["push", "-f", "ndjson", "-", "--endpoint", api.url, *ONE_LANE], input=data, env=ENV
    )
    assert result.exit_code == 0, result.stderr
    api.check()
    assert api.of("upload")[0].records == records


# -- invalid input ---------------------------------------------------------------------------


def input_with_invalid(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], list[Any]]:
    good = [{"id": f"g{n}", "collection": "rooms", "properties": {"n": n}} for n in range(4)]
    bad = [
        {"id": "b1", "collection": "Rooms!", "properties": {"n": 1}},
        {"id": "b2", "collection": "rooms", "properties": {"tags": ["a", "b"]}},
    ]
    ordered = [good[0], bad[0], good[1], good[2], bad[1], good[3]]
    return write_ndjson(tmp_path / "mixed.ndjson", ordered), good, bad


def test_invalid_record_in_fail_mode_sends_nothing(
    cli: Cli, api: Api, tmp_path: Path, isolated_env: Path
) -> None:
    """--on-invalid fail (default): exit 1, the line and field named, not one request made."""
    path, _, _ = input_with_invalid(tmp_path)
    api.always("start")
    result = cli([*push_args(path, api), "--json"], env=ENV)
    assert result.exit_code == 1
    assert api.seen == []
    assert f"{path}:2: collection:" in result.stderr
    assert f"{path}:5: properties.tags:" in result.stderr
    assert "nothing was sent" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "failed"
    assert summary["error"] and "invalid" in summary["error"]
    assert (summary["records"], summary["valid"], summary["rejected"]) == (6, 4, 2)
    assert summary["remote_id"] is None


def test_invalid_records_in_skip_mode_are_left_out_and_written_to_rejects(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """--on-invalid skip: the valid records are sent, the rejects file holds the rest, exit 1."""
    path, good, bad = input_with_invalid(tmp_path)
    rejects = tmp_path / "rejects.ndjson"
    api.happy(dry_run_parts(cli, path, "--on-invalid", "skip", exit_code=1))
    result = cli(
        [*push_args(path, api, "--on-invalid", "skip", "--rejects", str(rejects)), "--json"],
        env=ENV,
    )
    assert result.exit_code == 1, result.stderr
    api.check()
    sent = [r for u in api.of("upload") for r in u.records]
    assert sorted(sent, key=lambda r: r["id"]) == good
    assert json.loads(api.of("finish")[0].body) == {"error": ""}
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["source"], r["line"], r["record"]) for r in lines] == [
        (str(path), 2, bad[0]),
        (str(path), 5, bad[1]),
    ]
    assert [e["field"] for e in lines[0]["errors"]] == ["collection"]
    assert [e["field"] for e in lines[1]["errors"]] == ["properties.tags"]
    assert "2 of 6 records were rejected" in result.stderr
    summary = one_json(result.stdout)
    assert (summary["records"], summary["valid"], summary["rejected"]) == (6, 4, 2)
    assert summary["status"] == "finished_with_rejections"
    assert summary["error"] == "2 of 6 records were rejected and not sent"
    assert summary["remote_id"] == SYNC_ID


def test_stream_ends_the_open_session_with_an_error_at_an_invalid_record(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """--stream, fail mode: parts already went up; the invalid record ends it with an error."""
    before = versioned_records([f"r{n}" for n in range(50)], 1500, pad=1000)
    after = versioned_records([f"s{n}" for n in range(50)], 200, pad=100)
    invalid = {"id": "x", "collection": "rooms", "properties": {"nested": {"no": 1}}}
    path = write_ndjson(tmp_path / "big.ndjson", [*before, invalid, *after])
    bad_line = len(before) + 1
    api.always("start")
    api.always("upload")
    api.always("finish")
    options = ["--stream", "--part-size", "1MB", "--concurrency", "1"]
    result = cli(push_args(path, api, *options), env=ENV)

    assert result.exit_code == 1, result.stderr
    kinds = api.kinds()
    assert kinds[0] == "start" and kinds[-1] == "finish" and kinds.count("finish") == 1
    # Whether part 1's upload got out before the abort is a race; either way nothing applies.
    error = api.of("finish")[0].error
    assert error and f":{bad_line}:" in error
    sent = [r for u in api.of("upload") for r in u.records]
    assert sent == before[: len(sent)]  # nothing from after the invalid record
    assert f"{path}:{bad_line}: properties.nested:" in result.stderr


# -- retries and failures --------------------------------------------------------------------


def test_upload_500_then_201_is_retried_with_the_same_bytes(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """A 500 on an upload is retried (identical bytes) and the push succeeds."""
    path, records = small_input(tmp_path)
    api.expect("start")
    api.expect("upload", answer(500, {"error": "boom"}))
    api.expect("upload")
    api.expect("finish")
    result = cli(push_args(path, api, *ONE_LANE), env=ENV)
    assert result.exit_code == 0, result.stderr
    api.check()
    first, second = api.of("upload")
    assert first.body == second.body
    assert second.records == records
    assert "retrying upload of part 1" in result.stderr
    assert "HTTP 500" in result.stderr
    assert json.loads(api.of("finish")[0].body) == {"error": ""}


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_with_retry_after_is_honoured(cli: Cli, api: Api, tmp_path: Path, form: str) -> None:
    """A 429 on start is retried after the Retry-After it names (seconds or HTTP-date form)."""
    path, _ = small_input(tmp_path)
    if form == "seconds":
        retry_after, expected = "7", r"in ([7-9]|10)\.\d s"  # + jitter
    else:
        when = datetime.now(UTC) + timedelta(seconds=90)
        retry_after, expected = (
            format_datetime(when, usegmt=True),
            r"in (8[5-9]|9\d|1[0-3]\d)\.\d s",
        )
    api.expect("start", answer(429, {"error": "slow down"}, **{"Retry-After": retry_after}))
    api.happy(1)
    result = cli(push_args(path, api, *ONE_LANE), env=ENV)
    assert result.exit_code == 0, result.stderr
    api.check()
    assert api.kinds() == ["start", "start", "upload", "finish"]
    retry_lines = [line for line in result.stderr.splitlines() if "retrying start" in line]
    assert len(retry_lines) == 1
    assert re.search(expected, retry_lines[0]), retry_lines[0]
    assert "HTTP 429" in retry_lines[0]


def test_401_on_start_says_the_key_was_rejected_without_showing_it(
    cli: Cli, api: Api, tmp_path: Path, isolated_env: Path
) -> None:
    """401: exit 3, "the write key was rejected", never retried, the key nowhere."""
    path, _ = small_input(tmp_path)
    api.expect("start", answer(401, {"error": "bad key"}))
    result = cli([*push_args(path, api, *ONE_LANE), "--json"], env=ENV)
    assert result.exit_code == 3
    api.check()
    assert api.kinds() == ["start"]
    assert "the write key was rejected" in result.stderr
    summary = one_json(result.stdout)
    assert summary["error"] and "the write key was rejected" in summary["error"]
    assert KEY not in result.stdout + result.stderr
    assert KEY.encode() not in home_bytes(isolated_env)


def test_413_names_the_part_and_part_size_and_ends_the_session(
    cli: Cli, api: Api, tmp_path: Path, isolated_env: Path
) -> None:
    """413 is not retried: exit 4, the part and --part-size named, finish with an error."""
    path, _ = small_input(tmp_path)
    api.expect("start")
    api.expect("upload", answer(413, {"error": "too large"}))
    api.expect("finish")
    result = cli([*push_args(path, api, *ONE_LANE), "--json"], env=ENV)
    assert result.exit_code == 4
    api.check()
    assert api.kinds() == ["start", "upload", "finish"]
    assert api.of("finish")[0].error
    assert "part 1" in result.stderr and "--part-size" in result.stderr
    assert "413" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "failed"
    assert "part 1" in summary["error"]
    assert summary["remote_id"] == SYNC_ID
    with JobStore(isolated_env / "jobs.sqlite3") as store:
        job = store.get_job(summary["job"])
    assert job.status == "failed"
    assert job.error and "413" in job.error
    assert job.remote_id == SYNC_ID


def test_upload_that_keeps_failing_ends_the_session_with_an_error(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """Retries run out: finish with an error, exit 4, the part, attempts and status named."""
    path, _ = small_input(tmp_path)
    api.expect("start")
    for _ in range(3):
        api.expect("upload", answer(503, {"error": "unavailable"}))
    api.expect("finish")
    result = cli([*push_args(path, api, "--max-attempts", "3", *ONE_LANE), "--json"], env=ENV)
    assert result.exit_code == 4
    api.check()
    assert api.kinds() == ["start", "upload", "upload", "upload", "finish"]
    error = api.of("finish")[0].error
    assert error and "part 1" in error
    assert "upload of part 1 failed after 3 attempts: HTTP 503" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "failed"
    assert "3 attempts" in summary["error"]


# -- credentials, endpoint, configuration ----------------------------------------------------


def test_no_write_key_fails_before_reading_anything(cli: Cli, api: Api, tmp_path: Path) -> None:
    """No key anywhere: exit 3 with how to give one; the (missing) input is never opened."""
    api.always("start")
    result = cli([*push_args(tmp_path / "does-not-exist.ndjson", api), "--json"])
    assert result.exit_code == 3
    assert "no write key found" in result.stderr
    assert "does-not-exist" not in result.stderr
    assert api.seen == []
    summary = one_json(result.stdout)
    assert summary["error"] and "no write key" in summary["error"]


def test_unreadable_input_is_exit_1_with_the_error_in_json(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """A missing input: exit 1, the path named, one JSON object with `error`, nothing sent."""
    api.always("start")
    result = cli([*push_args(tmp_path / "nope.ndjson", api), "--json"], env=ENV)
    assert result.exit_code == 1
    assert "nope.ndjson" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "failed"
    assert "nope.ndjson" in summary["error"]
    assert api.seen == []


def test_empty_input_starts_no_session(cli: Cli, api: Api, tmp_path: Path) -> None:
    """No records, --allow-empty: nothing is sent (no empty session), exit 0, zero counted."""
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    api.always("start")
    result = cli([*push_args(path, api), "--json", "--allow-empty"], env=ENV)
    assert result.exit_code == 0, result.stderr
    assert api.seen == []
    summary = one_json(result.stdout)
    assert (summary["records"], summary["parts"], summary["remote_id"]) == (0, 0, None)


@pytest.mark.parametrize("endpoint", ["http://bulk.invalid", "http://10.1.2.3:8080"])
def test_plain_http_to_a_remote_host_is_refused_without_network(
    cli: Cli, tmp_path: Path, endpoint: str
) -> None:
    """http:// to a host that is not loopback is a usage error (exit 2), before any request."""
    path, _ = small_input(tmp_path)
    result = cli(["push", str(path), "--endpoint", endpoint, "--json"], env=ENV)
    assert result.exit_code == 2
    assert "refusing plain http://" in result.stderr
    assert "--allow-insecure-http" in result.stderr
    assert "retrying" not in result.stderr
    summary = one_json(result.stdout)
    assert summary["error"] and "http://" in summary["error"]


def write_config(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_profile_with_write_key_file_supplies_key_and_endpoint(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    """[profiles.default] in BULKCTL_CONFIG gives endpoint and key file; a 0600 file is quiet."""
    path, _ = small_input(tmp_path)
    key_file = tmp_path / "key"
    key_file.write_text("wk_FromFile_123\n")
    key_file.chmod(0o600)
    write_config(
        Path(os.environ["BULKCTL_CONFIG"]),
        f'[profiles.default]\nendpoint = "{api.url}"\nwrite_key_file = "{key_file}"\n',
    )
    api.happy(1)
    result = cli(["push", str(path), *ONE_LANE])
    assert result.exit_code == 0, result.stderr
    api.check()
    assert api.seen[0].headers["Authorization"] == basic_auth("wk_FromFile_123")
    assert "readable by others" not in result.stderr
    assert "wk_FromFile_123" not in result.stderr + result.stdout


def test_profile_key_file_readable_by_others_warns(cli: Cli, api: Api, tmp_path: Path) -> None:
    """A key file others can read still works, with a warning that says to chmod 600 it."""
    path, _ = small_input(tmp_path)
    key_file = tmp_path / "key"
    key_file.write_text("wk_Open_456")
    key_file.chmod(0o644)
    write_config(
        Path(os.environ["BULKCTL_CONFIG"]),
        '[profiles.default]\nendpoint = "http://unused.invalid"\n\n'
        f'[profiles.ci]\nendpoint = "{api.url}"\nwrite_key_file = "{key_file}"\n',
    )
    api.happy(1)
    result = cli(["push", str(path), "--profile", "ci", *ONE_LANE])
    assert result.exit_code == 0, result.stderr
    api.check()
    assert api.seen[0].headers["Authorization"] == basic_auth("wk_Open_456")
    assert "readable by others" in result.stderr
    assert f"chmod 600 {key_file}" in result.stderr
    assert "wk_Open_456" not in result.stderr


# -- dry run and the job store ---------------------------------------------------------------


def test_dry_run_sends_nothing_and_needs_no_key(cli: Cli, api: Api, tmp_path: Path) -> None:
    """--dry-run reads, validates and packs, and makes no request (no key needed)."""
    path, _ = small_input(tmp_path)
    api.always("start")
    result = cli(["push", str(path), "--endpoint", api.url, "--dry-run", "--json", *ONE_LANE])
    assert result.exit_code == 0, result.stderr
    assert api.seen == []
    summary = one_json(result.stdout)
    assert summary["status"] == "dry_run"
    assert (summary["records"], summary["parts"], summary["bytes_sent"]) == (5, 1, 0)


def test_dry_run_out_keeps_parts_and_a_manifest_that_matches_them(cli: Cli, tmp_path: Path) -> None:
    """--dry-run --out DIR: the parts hold every record; manifest sizes and sha256 match."""
    records = versioned_records([f"r{n}" for n in range(300)], 2500, pad=900)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    out = tmp_path / "out"
    result = cli(
        ["push", str(path), "--dry-run", "--out", str(out), "--part-size", "1MB", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    entries = manifest["parts"]
    assert len(entries) == one_json(result.stdout)["parts"] >= 3
    sent = []
    for entry in entries:
        data = (out / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes_compressed"]
        raw = gzip.decompress(data)
        assert len(raw) == entry["bytes_uncompressed"] <= 1_000_000
        assert len(raw.splitlines()) == entry["records"]
        sent += decode_part(data)
    assert sorted(sent, key=lambda r: r["properties"]["seq"]) == records
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(e["file"] for e in entries)]
    )


def test_job_store_records_the_push_without_the_key(
    cli: Cli, api: Api, tmp_path: Path, isolated_env: Path
) -> None:
    """jobs.sqlite3 holds the job: sync_id, counts, status, every part as uploaded; no key."""
    records = versioned_records([f"r{n}" for n in range(100)], 1200, pad=900)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    options = ["--part-size", "1MB", "--concurrency", "2"]
    parts = dry_run_parts(cli, path, *options)
    api.happy(parts)
    result = cli([*push_args(path, api, *options), "--json"], env=ENV)
    assert result.exit_code == 0, result.stderr
    api.check()
    job_id = one_json(result.stdout)["job"]

    conn = sqlite3.connect(isolated_env / "jobs.sqlite3")
    try:
        conn.row_factory = sqlite3.Row
        job = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        rows = conn.execute(
            "SELECT * FROM parts WHERE job_id = ? ORDER BY number", (job_id,)
        ).fetchall()
    finally:
        conn.close()
    assert job["status"] == "finished"
    assert job["remote_id"] == SYNC_ID
    assert job["target"] == "segment-bulk"
    assert (job["records"], job["valid"], job["rejected"]) == (1200, 1200, 0)
    assert job["parts"] == parts == len(rows)
    assert job["finished_at"] is not None
    assert json.loads(job["inputs"]) == [str(path)]
    uploaded = {hashlib.sha256(s.body).hexdigest() for s in api.of("upload")}
    assert {row["sha256"] for row in rows} == uploaded
    assert all(row["status"] == "uploaded" and row["attempts"] == 1 for row in rows)
    assert sorted(row["part_id"] for row in rows) == sorted(f"P{n}" for n in range(1, parts + 1))
    assert KEY.encode() not in home_bytes(isolated_env)
    assert KEY not in result.stdout + result.stderr


# -- signals, through the installed script ---------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_an_upload_ends_the_session_and_cleans_the_spool(
    api: Api, tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C / SIGTERM mid-upload: finish with "interrupted", spool emptied, exit 130 (143)."""
    records = versioned_records([f"r{n}" for n in range(50)], 1500, pad=1000)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    spool = tmp_path / "spool"
    spool.mkdir()
    arrived, finished = threading.Event(), threading.Event()

    def blocking_upload(request: Request, number: int) -> Response:
        arrived.set()
        # Unanswered until the session was finished: the signal always lands while the upload
        # is in flight (bulkctl gives it its abort grace, then ends the session).
        finished.wait(30)
        return _uploaded(request, number)

    def finish(request: Request, number: int) -> Response:
        finished.set()
        return Response("", 202)

    api.always("start")
    api.always("upload", blocking_upload)
    api.always("finish", finish)
    proc = subprocess.Popen(
        [
            str(bulkctl_exe()),
            *push_args(path, api, "--spool-dir", str(spool)),
            "--part-size",
            "1MB",
            "--concurrency",
            "1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base_env(**ENV),
        text=True,
    )
    try:
        assert arrived.wait(30), "the upload never arrived"
        assert any(spool.iterdir()), "parts should be spooled while uploading"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        finished.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in ((130,) if signum == signal.SIGINT else (130, 143)), stderr
    kinds = api.kinds()
    assert kinds[0] == "start" and kinds[-1] == "finish" and kinds.count("finish") == 1
    assert "interrupted" in api.of("finish")[0].error
    assert list(spool.iterdir()) == []
    assert "interrupted" in stderr
    assert stdout == ""
    assert_plain_text(stderr)

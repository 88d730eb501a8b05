"""An input with no records is exit 1 "no records in …" unless --allow-empty; nothing is sent.

In cron an empty input is almost always an upstream failure, so it must not pass silently
(issue 11 item 4). Every case runs the CLI against a real local HTTP server that records every
request, so "no session is opened" is checked on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import write_ndjson
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

Cli = Callable[..., Any]
ENV = {"BULKCTL_WRITE_KEY": "wk_T3stKey_empty"}
XANDR_ENV = {
    "BULKCTL_XANDR_USERNAME": "api-user",
    "BULKCTL_XANDR_PASSWORD": "s3cret-pw",
    "BULKCTL_XANDR_MEMBER_ID": "958",
}

EMPTY = {
    "ndjson": ("empty.ndjson", b""),
    "ndjson blank lines": ("blank.ndjson", b"\n\n   \n\n"),
    "json empty array": ("empty.json", b"[]\n"),
    "csv": ("empty.csv", b""),
    "csv header only": ("header.csv", b"id,name\n"),
    "tsv header only": ("header.tsv", b"id\tname\n"),
    "gzip ndjson": (
        "empty.ndjson.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    ),
}


def one_json(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def bulk_api(httpserver: HTTPServer) -> HTTPServer:
    """A Bulk API that answers start, upload and finish (for runs that do send)."""

    def start(request: Request) -> Response:
        return Response(json.dumps({"sync_id": "SYNC-1"}), content_type="application/json")

    def upload(request: Request) -> Response:
        return Response(json.dumps({"part_id": "P1"}), 201, content_type="application/json")

    def ok(request: Request) -> Response:
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/v0/start", method="POST").respond_with_handler(start)
    httpserver.expect_request("/v0/upload/SYNC-1", method="POST").respond_with_handler(upload)
    httpserver.expect_request("/v0/finish/SYNC-1", method="POST").respond_with_handler(ok)
    return httpserver


def paths_seen(httpserver: HTTPServer) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def push(cli: Cli, httpserver: HTTPServer, *args: str | Path, env: dict[str, str] = ENV) -> Any:
    url = httpserver.url_for("").rstrip("/")
    return cli(["push", "--endpoint", url, "-c", "rooms", "--json", *map(str, args)], env=env)


@pytest.fixture(params=list(EMPTY))
def empty_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, data = EMPTY[request.param]
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("mode", [[], ["--stream"], ["--dry-run"]])
def test_an_empty_input_is_exit_1_and_opens_no_session(
    cli: Cli, httpserver: HTTPServer, empty_file: Path, mode: list[str]
) -> None:
    """Every empty form, spooled or streamed: exit 1 naming it, one JSON object, no request."""
    bulk_api(httpserver)
    result = push(cli, httpserver, empty_file, *mode)
    assert result.exit_code == 1, result.stderr
    assert f"no records in {empty_file}" in result.stderr
    assert "--allow-empty" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "failed"
    assert f"no records in {empty_file}" in summary["error"]
    assert (summary["records"], summary["parts"], summary["remote_id"]) == (0, 0, None)
    assert paths_seen(httpserver) == []


def test_empty_standard_input_is_named(cli: Cli, httpserver: HTTPServer) -> None:
    """Nothing piped in: "no records in <stdin>", exit 1, nothing sent."""
    bulk_api(httpserver)
    url = httpserver.url_for("").rstrip("/")
    result = cli(["push", "--endpoint", url, "-c", "rooms"], input=b"", env=ENV)
    assert result.exit_code == 1, result.stderr
    assert "no records in <stdin>" in result.stderr
    assert paths_seen(httpserver) == []


@pytest.mark.parametrize("mode", [[], ["--stream"]])
def test_allow_empty_succeeds_sends_nothing_and_says_so(
    cli: Cli, httpserver: HTTPServer, empty_file: Path, mode: list[str]
) -> None:
    """--allow-empty: exit 0, "nothing was sent", status finished with 0 parts, no request."""
    bulk_api(httpserver)
    result = push(cli, httpserver, empty_file, "--allow-empty", *mode)
    assert result.exit_code == 0, result.stderr
    assert f"no records in {empty_file} (allowed by --allow-empty)" in result.stderr
    assert "nothing was sent" in result.stderr
    summary = one_json(result.stdout)
    assert (summary["status"], summary["error"]) == ("finished", None)
    assert (summary["records"], summary["parts"], summary["remote_id"]) == (0, 0, None)
    assert paths_seen(httpserver) == []


@pytest.mark.parametrize("mode", [[], ["--stream"]])
@pytest.mark.parametrize("empty_first", [True, False])
def test_one_empty_input_among_others_is_named_and_the_rest_is_sent(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path, mode: list[str], empty_first: bool
) -> None:
    """Several inputs, one empty: a warning names it; the records of the others are sent, exit 0."""
    bulk_api(httpserver)
    full = write_ndjson(tmp_path / "full.ndjson", [{"id": str(n), "n": n} for n in range(5)])
    empty = tmp_path / "header.csv"
    empty.write_bytes(b"id,n\n")
    inputs = [empty, full] if empty_first else [full, empty]
    result = push(cli, httpserver, *inputs, "--concurrency", "1", *mode)
    assert result.exit_code == 0, result.stderr
    assert f"bulkctl: warning: no records in {empty}" in result.stderr
    assert f"no records in {full}" not in result.stderr
    summary = one_json(result.stdout)
    assert (summary["status"], summary["records"], summary["parts"]) == ("finished", 5, 1)
    assert paths_seen(httpserver) == ["/v0/start", "/v0/upload/SYNC-1", "/v0/finish/SYNC-1"]


def test_an_empty_input_beside_a_large_one_is_named_when_workers_check(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Records counted per input also when worker processes check the chunks (over 4 MB)."""
    bulk_api(httpserver)
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"\n")
    rows = ({"id": str(n), "text": "x" * 100} for n in range(50_000))
    full = write_ndjson(tmp_path / "big.ndjson", rows)
    assert full.stat().st_size > 4 << 20
    also = tmp_path / "also.json"
    also.write_bytes(b"[]")
    result = push(cli, httpserver, empty, full, also, "--workers", "2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"bulkctl: warning: no records in {empty}" in result.stderr
    assert f"bulkctl: warning: no records in {also}" in result.stderr
    assert f"no records in {full}" not in result.stderr
    assert one_json(result.stdout)["records"] == 50_000


def test_every_input_empty_names_them_all(cli: Cli, httpserver: HTTPServer, tmp_path: Path) -> None:
    """All inputs empty: one error naming each, exit 1, nothing sent."""
    first, second = tmp_path / "a.ndjson", tmp_path / "b.csv"
    first.write_bytes(b"")
    second.write_bytes(b"id\n")
    result = push(cli, httpserver, first, second)
    assert result.exit_code == 1, result.stderr
    assert f"no records in {first}, {second}" in result.stderr
    assert paths_seen(httpserver) == []


def test_invalid_records_are_not_an_empty_input(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Records that are all rejected are rejections (exit 1 as such), not "no records"."""
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"name": "no id"}\n')
    result = push(cli, httpserver, path, "--on-invalid", "skip")
    assert result.exit_code == 1, result.stderr
    assert "no records in" not in result.stderr
    assert "rejected" in result.stderr
    assert paths_seen(httpserver) == []


def test_xandr_empty_csv_is_exit_1_and_creates_no_job(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """xandr-bss too: a header-only CSV is exit 1 "no records in …" with no request at all."""
    path = tmp_path / "segments.csv"
    path.write_bytes(b"uid,seg_id\n")
    url = httpserver.url_for("").rstrip("/")
    args = ["push", "--target", "xandr-bss", "--endpoint", url, "--json", str(path)]
    result = cli(args, env=XANDR_ENV)
    assert result.exit_code == 1, result.stderr
    assert f"no records in {path}" in result.stderr
    assert one_json(result.stdout)["status"] == "failed"
    assert paths_seen(httpserver) == []
    allowed = cli([*args, "--allow-empty"], env=XANDR_ENV)
    assert allowed.exit_code == 0, allowed.stderr
    assert "nothing was sent" in allowed.stderr
    assert paths_seen(httpserver) == []


@pytest.mark.parametrize("allow", [False, True])
def test_validate_an_empty_input(cli: Cli, empty_file: Path, allow: bool) -> None:
    """validate: exit 1 "no records in …" with its one JSON object; --allow-empty makes it 0."""
    flags = ["--allow-empty"] if allow else []
    result = cli(["validate", "-c", "rooms", "--json", *flags, str(empty_file)])
    assert result.exit_code == (0 if allow else 1), result.stderr
    assert f"no records in {empty_file}" in result.stderr
    summary = one_json(result.stdout)
    assert summary["records"] == 0
    assert (summary["error"] is None) is allow

"""xandr-bss end to end: the CLI against the sandbox's Xandr emulator."""

from __future__ import annotations

import gzip
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import SandboxProcess

from bulkctl.console import Console
from bulkctl.pack.parts import Part
from bulkctl.report.progress import PlainUploadProgress
from bulkctl.sandbox import Faults, RunningSandbox, XandrConfig, start_sandbox
from bulkctl.send.events import NullEvents
from bulkctl.send.remote import Call, SendResult
from bulkctl.send.session import run_session

Cli = Callable[..., Any]
ENV = {
    "BULKCTL_XANDR_USERNAME": "api-user",
    "BULKCTL_XANDR_PASSWORD": "s3cret-pw",
    "BULKCTL_XANDR_MEMBER_ID": "958",
}
FAST = ["--min-interval", "0", "--interval", "0.01"]
CSV = b"uid,seg_id,expiration\n1001,10000,1440\n1001,10001,1440\n1002,10000,0\n1003,10002,-1\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.sqlite3"


@pytest.fixture
def serve(db: Path) -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes over `db` (with an optional request log) that are stopped after."""
    running: list[RunningSandbox] = []

    def start(config: XandrConfig | None = None, **options: Any) -> RunningSandbox:
        running.append(start_sandbox(db, xandr=config, **options))
        return running[-1]

    yield start
    for sandbox in running:
        sandbox.stop()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def push(cli: Cli, sandbox: RunningSandbox, *args: str) -> Any:
    base = ["push", "--target", "xandr-bss", "--endpoint", sandbox.url, *FAST]
    return cli([*base, *args], env=ENV)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


# -- push --wait ----------------------------------------------------------------------------------


def test_push_wait_completes_with_the_counts_xandr_reports(
    cli: Cli, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """--wait polls to `completed`, prints the counts, and --json carries them (exit 5: the
    unknown user and segment were rejected)."""
    sandbox = serve(XandrConfig(known_segments=frozenset({10000, 10001})))
    data = CSV + b"not-a-xandr-uid,10000,60\n"
    path = write(tmp_path, "segments.csv", data)
    result = push(cli, sandbox, str(path), "--wait", "--json")
    assert result.exit_code == 5, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed_with_rejections"
    assert (summary["records"], summary["valid"], summary["parts"]) == (5, 5, 1)
    counts = summary["remote"]["counts"]
    # 1001 (2 segments) and 1002 are valid; 1003's segment 10002 is unknown to the member.
    assert counts["num_valid"] == 3
    assert counts["num_valid_user"] == 3
    assert counts["num_invalid_user"] == 1
    assert counts["num_invalid_segment"] == 1
    assert counts["num_invalid_format"] == 0
    assert re.search(r"num_valid\s+3", result.stderr)
    assert "completed" in result.stderr
    assert rows(db, "SELECT uid, seg_id FROM _xandr_segments ORDER BY uid, seg_id") == [
        ("1001", 10000),
        ("1001", 10001),
        ("1002", 10000),
    ]


def test_a_member_configured_otherwise_gets_error_lines_in_the_rejects_file(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """Lines Xandr cannot parse are counted, and its error_log_lines go to --rejects."""
    sandbox = serve(XandrConfig(fields=("SEG_ID", "EXPIRATION", "VALUE")))
    path = write(tmp_path, "segments.csv", CSV)
    rejects = tmp_path / "rejects.ndjson"
    result = push(cli, sandbox, str(path), "--wait", "--json", "--rejects", str(rejects))
    assert result.exit_code == 5, result.stderr
    assert json.loads(result.stdout)["remote"]["counts"]["num_invalid_format"] == 3
    entries = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(entries) == 3
    assert "illegal number of fields" in entries[0]["errors"][0]["message"]
    assert entries[0]["source"].startswith("remote job ")


def test_a_job_ending_in_error_exits_5_with_its_error_code(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """phase `error`: exit 5, the error_code in the message, status `error` in --json."""
    sandbox = serve(XandrConfig(fail_jobs="HOURLY_LINES_LIMIT_EXCEEDED"))
    path = write(tmp_path, "segments.csv", CSV)
    result = push(cli, sandbox, str(path), "--wait", "--json")
    assert result.exit_code == 5, result.stderr
    assert "HOURLY_LINES_LIMIT_EXCEEDED" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "error"
    assert "HOURLY_LINES_LIMIT_EXCEEDED" in summary["error"]


def test_data_provider_logins_get_a_one_element_array(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """A job answered as `[ {...} ]` is read like the object itself."""
    sandbox = serve(XandrConfig(data_provider=True))
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["remote"]["counts"]["num_valid"] == 4


def test_without_wait_the_status_is_the_jobs_phase(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """Without --wait the push ends after the upload; `status` is the phase seen then."""
    sandbox = serve()
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] in ("uploading", "validating")
    assert summary["remote"]["final"] is False


# -- throttling and tokens ---------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_seconds(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """A throttled job request waits Retry-After (reported; no sleep in tests) and goes on."""
    sandbox = serve(faults=Faults(status_for={"batch-segment": (429,)}, retry_after=7))
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--wait")
    assert result.exit_code == 0, result.stderr
    assert re.search(
        r"retrying request for an upload job in ([7-9]|10)\.\d s \(HTTP 429; attempt 1 of 8",
        result.stderr,
    ), result.stderr  # Retry-After plus up to half of it as jitter


def test_an_expired_token_is_renewed_once(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """NOAUTH: log in again, repeat the request once, and carry on."""
    log = io.StringIO()
    sandbox = serve(XandrConfig(token_uses=2), log=log)
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--wait")
    assert result.exit_code == 0, result.stderr
    calls = [line.split()[1:4] for line in log.getvalue().splitlines()]
    refused = [n for n, (_, _, status) in enumerate(calls) if status == "401"]
    assert refused  # the token did expire
    for n in refused:
        assert calls[n + 1] == ["POST", "/auth", "200"]
        assert calls[n + 2][:2] == calls[n][:2] and calls[n + 2][2] == "200"


def test_a_fresh_token_refused_too_exits_3(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """When even a new token gets NOAUTH there is no loop: exit 3 after one re-login."""
    log = io.StringIO()
    sandbox = serve(XandrConfig(token_uses=0), log=log)
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)))
    assert result.exit_code == 3, result.stderr
    assert "refused a fresh token too" in result.stderr
    assert log.getvalue().count("POST /auth 200") == 2
    assert ENV["BULKCTL_XANDR_PASSWORD"] not in result.stderr


def test_a_wrong_password_exits_3_without_showing_it(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """POST /auth refused: exit 3; the password is in no output."""
    sandbox = serve(XandrConfig(login=("api-user", "another")))
    result = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)))
    assert result.exit_code == 3
    assert "Xandr refused the user name or password" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_missing_credentials_or_member_id_are_reported_before_reading(
    cli: Cli, tmp_path: Path
) -> None:
    """No BULKCTL_XANDR_* login: exit 3; no member id: exit 2."""
    path = str(write(tmp_path, "s.csv", CSV))
    base = ["push", path, "--target", "xandr-bss", "--endpoint", "http://127.0.0.1:9"]
    no_login = cli(base, env={"BULKCTL_XANDR_MEMBER_ID": "1"})
    assert no_login.exit_code == 3
    assert "BULKCTL_XANDR_USERNAME" in no_login.stderr
    no_member = cli(base, env={k: v for k, v in ENV.items() if "MEMBER" not in k})
    assert no_member.exit_code == 2
    assert "--member-id" in no_member.stderr


# -- input ----------------------------------------------------------------------------------------


def test_a_non_latin1_uid_is_rejected_with_its_line(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """`zé€`: € is not Latin-1, so the row is refused on its line and nothing is sent."""
    sandbox = serve()
    data = "uid,seg_id,expiration\n1001,10000,1440\nzé€,10000,1440\n".encode()
    path = write(tmp_path, "segments.csv", data)
    result = push(cli, sandbox, str(path))
    assert result.exit_code == 1
    assert f"{path}:3: uid: '€' (U+20AC) is not a Latin-1 character" in result.stderr
    history = cli(
        ["jobs", "--remote", "--target", "xandr-bss", "--json"],
        env=ENV | {"BULKCTL_ENDPOINT": sandbox.url},
    )
    assert json.loads(history.stdout) == []


def test_latin1_text_is_written_as_latin1(cli: Cli, tmp_path: Path) -> None:
    """A uid with é passes and is one byte in the file (a dry run keeps the file)."""
    path = write(
        tmp_path,
        "u.ndjson",
        '{"uid": "caf\u00e9", "segments": [{"id": 5, "expiration": 1}]}\n'.encode(),
    )
    out = tmp_path / "out"
    result = cli(["push", str(path), "--target", "xandr-bss", "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    (part,) = out.glob("*.txt.gz")
    assert gzip.decompress(part.read_bytes()) == b"caf\xe9,5:1\n"


def test_duplicate_lines_are_an_error(cli: Cli, tmp_path: Path) -> None:
    """Xandr counts a repeated line as invalid; bulkctl rejects it with both lines named."""
    data = b'{"uid": "1", "segments": [{"id": 5, "expiration": 1}]}\n' * 2
    path = write(tmp_path, "u.ndjson", data)
    result = cli(["validate", str(path), "--target", "xandr-bss", "--json"])
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["line"] == 2
    assert error["errors"][0]["rule"] == "line.duplicate"
    assert "line 1" in error["errors"][0]["message"]


def test_validate_uses_the_members_format(cli: Cli, tmp_path: Path) -> None:
    """validate --seg-fields: a row without the configured TIMESTAMP is refused."""
    path = write(tmp_path, "s.csv", CSV)
    ok = cli(["validate", str(path), "--target", "xandr-bss"])
    assert ok.exit_code == 0, ok.stderr
    strict = cli(
        ["validate", str(path), "--target", "xandr-bss", "--seg-fields", "SEG_ID,TIMESTAMP"]
    )
    assert strict.exit_code == 1
    assert "no timestamp" in strict.stderr
    bad = cli(["validate", str(path), "--target", "xandr-bss", "--separators", "|;:"])
    assert bad.exit_code == 2


def test_segment_options_are_refused_for_other_targets(cli: Cli, tmp_path: Path) -> None:
    """--member-id belongs to xandr-bss: with segment-bulk it is a usage error."""
    path = write(tmp_path, "r.ndjson", b'{"id": "1", "collection": "rooms", "properties": {}}\n')
    result = cli(["push", str(path), "--dry-run", "--member-id", "3"])
    assert result.exit_code == 2
    assert "--member-id does not apply to --target segment-bulk" in result.stderr


def test_a_large_input_becomes_several_jobs(
    cli: Cli, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """Files have a size limit: more data, more jobs, all delivered and all waited for."""
    sandbox = serve()
    lines = [f"{uid},{10000 + n},1440" for uid in range(1, 40_001) for n in range(3)]
    path = write(tmp_path, "big.csv", ("uid,seg_id,expiration\n" + "\n".join(lines)).encode())
    result = push(cli, sandbox, str(path), "--part-size", "1MB", "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["parts"] == len(summary["remote"]["jobs"]) >= 2
    assert summary["remote"]["counts"]["num_valid"] == 120_000
    assert rows(db, "SELECT count(DISTINCT job_id), count(*) FROM _xandr_segments") == [
        (summary["parts"], 120_000)
    ]


# -- status and jobs --------------------------------------------------------------------------


def test_status_wait_follows_a_pushed_job_to_the_end(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """`status JOB --wait` asks Xandr (not the store) and shows the final counts."""
    sandbox = serve()
    pushed = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--json")
    job = json.loads(pushed.stdout)["job"]
    result = cli(["status", job, "--wait", "--interval", "0.01", "--json"], env=ENV)
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["status"] == "completed"
    assert shown["remote"]["counts"]["num_valid"] == 4
    plain = cli(["status", job], env=ENV)
    assert re.search(r"num_valid\s+4", plain.stdout)


def test_status_of_a_failed_job_exits_5(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """A remote job in `error`: status exits 5 with the error code."""
    sandbox = serve(XandrConfig(fail_jobs="FILE_UNREADABLE"))
    pushed = push(cli, sandbox, str(write(tmp_path, "s.csv", CSV)), "--json")
    job = json.loads(pushed.stdout)["job"]
    result = cli(["status", job, "--wait", "--interval", "0.01"], env=ENV)
    assert result.exit_code == 5
    assert "FILE_UNREADABLE" in result.stderr


def test_jobs_remote_lists_the_history_page_by_page(
    cli: Cli, serve: Callable[..., RunningSandbox]
) -> None:
    """`jobs --remote` reads the member's uploads 100 a page, up to --limit."""
    sandbox = serve()
    with httpx.Client(base_url=sandbox.url) as client:
        token = client.post("/auth", json={"auth": {"username": "u", "password": "p"}})
        headers = {"Authorization": token.json()["response"]["token"]}
        for _ in range(130):
            client.post("/batch-segment", params={"member_id": 958}, headers=headers)
    env = ENV | {"BULKCTL_ENDPOINT": sandbox.url}
    listed = cli(["jobs", "--remote", "--target", "xandr-bss", "--limit", "500", "--json"], env=env)
    assert listed.exit_code == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert len(jobs) == 130
    assert len({job["remote_id"] for job in jobs}) == 130
    table = cli(["jobs", "--remote", "--target", "xandr-bss", "--limit", "3"], env=env)
    assert table.stdout.splitlines()[0].split("\t")[:3] == ["remote job", "created", "phase"]
    assert len(table.stdout.splitlines()) == 4


def test_jobs_remote_needs_a_target_with_remote_jobs(cli: Cli) -> None:
    """segment-bulk keeps no history the API could list: exit 2."""
    result = cli(["jobs", "--remote", "--target", "segment-bulk"], env={"BULKCTL_WRITE_KEY": "k"})
    assert result.exit_code == 2
    assert "has no remote jobs" in result.stderr


# -- pacing ---------------------------------------------------------------------------------------


class _PacedRemote:
    """A remote that records when each send started (no network)."""

    endpoint = "https://example.test"
    noun = "job"
    auth = None
    rate_limit_headers = ("retry-after",)

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.started: list[float] = []
        self.lock = threading.Lock()

    def send(self, call: Call, part: Part) -> SendResult:
        with self.lock:
            self.started.append(time.monotonic())
        return SendResult(f"J{part.number}")

    def job_options(self) -> dict[str, Any]:
        return {}


def one_byte_parts(tmp_path: Path, count: int) -> list[Part]:
    """`count` spooled parts of one byte each, in one lane."""
    parts = []
    for number in range(1, count + 1):
        path = tmp_path / f"{number}.gz"
        path.write_bytes(b"x")
        parts.append(Part(number, 0, number - 1, path, 1, 1, 1, "0" * 64))
    return parts


def test_sends_start_at_least_min_interval_apart(tmp_path: Path) -> None:
    """Xandr's one upload a minute: the runner spaces sends by min_interval (never less)."""
    parts = one_byte_parts(tmp_path, 3)
    remote = _PacedRemote(0.15)
    with httpx.Client() as client:
        result = run_session(client, remote, parts, concurrency=1)
    assert result.sync_id == "J1"
    gaps = [b - a for a, b in zip(remote.started, remote.started[1:], strict=False)]
    assert len(gaps) == 2
    assert all(gap >= 0.15 for gap in gaps)


def test_push_sandbox_works_for_xandr_with_throwaway_credentials(cli: Cli, tmp_path: Path) -> None:
    """--sandbox: no BULKCTL_XANDR_* needed; the embedded sandbox gets credentials of its own."""
    path = write(tmp_path, "s.csv", CSV)
    result = cli(["push", str(path), "--target", "xandr-bss", "--sandbox", *FAST, "--wait"])
    assert result.exit_code == 0, result.stderr
    assert "_xandr_segments" in result.stderr


def test_an_upload_url_that_expired_gets_one_new_job(httpserver: Any, tmp_path: Path) -> None:
    """The URL lives 5 minutes: an upload refused after that asks for a new job, once."""
    from werkzeug import Request, Response

    from bulkctl.send.caller import Caller
    from bulkctl.send.http import build_client
    from bulkctl.send.retry import RetryPolicy
    from bulkctl.settings import Secret
    from bulkctl.targets.xandr_remote import XandrLogin, XandrRemote

    now = [1000.0]
    jobs = iter(["J1", "J2"])

    def new_job(request: Request) -> Response:
        job = next(jobs)
        upload = {"job_id": job, "upload_url": httpserver.url_for(f"/up/{job}")}
        body = {"response": {"status": "OK", "batch_segment_upload_job": upload}}
        return Response(json.dumps(body), content_type="application/json")

    def expired(request: Request) -> Response:
        now[0] += 400  # the upload was slow: the URL is past its five minutes
        return Response('{"response": {"status": "error", "error": "expired"}}', status=400)

    ok = {"response": {"status": "OK"}}
    httpserver.expect_request("/auth", method="POST").respond_with_json(
        {"response": {"status": "OK", "token": "T"}}
    )
    httpserver.expect_request("/batch-segment", method="POST").respond_with_handler(new_job)
    httpserver.expect_request("/up/J1", method="POST").respond_with_handler(expired)
    httpserver.expect_request("/up/J2", method="POST").respond_with_json(ok)
    remote = XandrRemote(
        httpserver.url_for("/").rstrip("/"), XandrLogin("u", Secret("p")), 958, clock=lambda: now[0]
    )
    gz = tmp_path / "f.txt.gz"
    gz.write_bytes(gzip.compress(b"1,2:3\n"))
    part = Part(1, 0, 0, gz, 1, 6, gz.stat().st_size, "0" * 64)
    with build_client(None) as client:
        call = Caller(client, RetryPolicy(max_attempts=1)).bind()
        assert remote.send(call, part).remote_id == "J2"
    uploads = [entry[0].path for entry in httpserver.log if entry[0].path.startswith("/up/")]
    assert uploads == ["/up/J1", "/up/J2"]
    tokens = [entry[0].headers.get("Authorization") for entry in httpserver.log]
    assert tokens.count("T") == 2  # the two job requests; never the upload URL


class _Paced(NullEvents):
    """Keeps the pacing events the runner tells."""

    def __init__(self) -> None:
        self.waits: list[tuple[int, float]] = []

    def pacing(self, part: Part, seconds: float) -> None:
        self.waits.append((part.number, seconds))


def test_a_wait_between_paced_sends_is_told_and_shown(tmp_path: Path) -> None:
    """A pause of a second or more before a paced send is an event, and a line on stderr."""
    parts = one_byte_parts(tmp_path, 2)
    events = _Paced()
    with httpx.Client() as client:
        run_session(client, _PacedRemote(1.1), parts, concurrency=1, events=events)
    assert [number for number, _ in events.waits] == [2]
    assert 0.9 <= events.waits[0][1] <= 1.1
    stream = io.StringIO()
    PlainUploadProgress(Console(stream=stream)).pacing(parts[1], 42.4)
    assert stream.getvalue() == (
        "waiting 42 s before sending part 2 (the API's minimum interval between sends, "
        "--min-interval)\n"
    )


@pytest.mark.slow
def test_the_sandbox_command_takes_the_xandr_settings(cli: Cli, tmp_path: Path) -> None:
    """`bulkctl sandbox --xandr-fail-jobs/--xandr-seg-fields/...` shape the emulated member."""
    path = write(tmp_path, "s.csv", CSV)
    base = ["push", "--target", "xandr-bss", *FAST, "--wait", "--json"]
    failing = ["--xandr-fail-jobs", "FILE_UNREADABLE", "--xandr-polls-per-phase", "2"]
    with SandboxProcess(tmp_path / "a.db", *failing) as sandbox:
        result = cli([*base, "--endpoint", sandbox.url, str(path)], env=ENV)
    assert result.exit_code == 5, result.stderr
    assert "FILE_UNREADABLE" in json.loads(result.stdout)["error"]
    fields = ["--xandr-seg-fields", "SEG_ID,EXPIRATION,VALUE", "--xandr-data-provider"]
    with SandboxProcess(tmp_path / "b.db", *fields) as sandbox:
        result = cli([*base, "--endpoint", sandbox.url, str(path)], env=ENV)
    assert result.exit_code == 5, result.stderr  # lines Xandr could not parse: rejected
    assert json.loads(result.stdout)["remote"]["counts"]["num_invalid_format"] == 3
    bad = cli(["sandbox", "--port", "0", "--xandr-seg-fields", "SEG_ID,,X"])
    assert bad.exit_code == 2 and "--xandr-seg-fields" in bad.stderr

"""xandr-bss: a job that completed with pairs the API rejected is no success (exit 5), and
following the tool's hints after a wait that gave up never uploads a file a second time.

The CLI against the sandbox's Xandr emulator, in process (`cli`) or as `bulkctl sandbox`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SandboxProcess

from bulkctl.jobs.store import JobStore
from bulkctl.sandbox import RunningSandbox, XandrConfig, start_sandbox

Cli = Callable[..., Any]
ENV = {
    "BULKCTL_XANDR_USERNAME": "api-user",
    "BULKCTL_XANDR_PASSWORD": "s3cret-pw",
    "BULKCTL_XANDR_MEMBER_ID": "958",
}
FAST = ["--min-interval", "0", "--interval", "0.01"]
# Three users, four pairs; segment 10002 is one the member does not have.
CSV = b"uid,seg_id,expiration\n1001,10000,1440\n1001,10001,1440\n1002,10000,0\n1003,10002,-1\n"
KNOWN = frozenset({10000, 10001})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.sqlite3"


@pytest.fixture
def serve(db: Path) -> Iterator[Callable[..., RunningSandbox]]:
    running: list[RunningSandbox] = []

    def start(config: XandrConfig | None = None) -> RunningSandbox:
        running.append(start_sandbox(db, xandr=config))
        return running[-1]

    yield start
    for sandbox in running:
        sandbox.stop()


def csv_file(tmp_path: Path, data: bytes = CSV) -> Path:
    path = tmp_path / "segments.csv"
    path.write_bytes(data)
    return path


def push(cli: Cli, url: str, *args: str) -> Any:
    return cli(["push", "--target", "xandr-bss", "--endpoint", url, *FAST, *args], env=ENV)


def remote_jobs(db: Path) -> int:
    """How many jobs the emulated Xandr was asked to create (each one is a file to process)."""
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM _xandr_jobs").fetchone()
    conn.close()
    return int(count)


# -- rejected pairs ------------------------------------------------------------------------------


def test_a_job_completed_with_an_invalid_segment_exits_5_with_the_counts(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """num_invalid_segment 1 of a completed job: exit 5, the counts and an error in --json."""
    sandbox = serve(XandrConfig(known_segments=KNOWN))
    result = push(cli, sandbox.url, str(csv_file(tmp_path)), "--wait", "--json")
    assert result.exit_code == 5, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed_with_rejections"
    assert summary["remote"]["phase"] == "completed"
    assert summary["remote"]["counts"]["num_valid"] == 3
    assert summary["remote"]["counts"]["num_invalid_segment"] == 1
    assert summary["remote"]["rejected"] == {"num_invalid_segment": 1}
    assert "num_invalid_segment 1" in summary["error"]
    # The report on standard error still shows the counts, then the error says why exit 5.
    assert "num_invalid_segment 1" in result.stderr
    assert "bulkctl: error: the API rejected part of what it was sent" in result.stderr


def test_the_error_log_lines_go_to_rejects(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """--rejects gets one entry per error_log_lines line: the unknown segment, the bad user."""
    sandbox = serve(XandrConfig(known_segments=KNOWN))
    data = CSV + b"not-a-user,10000,60\n"
    rejects = tmp_path / "rejects.ndjson"
    result = push(
        cli, sandbox.url, str(csv_file(tmp_path, data)), "--wait", "--rejects", str(rejects)
    )
    assert result.exit_code == 5, result.stderr
    entries = [json.loads(line) for line in rejects.read_text().splitlines()]
    messages = [entry["errors"][0]["message"] for entry in entries]
    assert any("segment 10002 does not exist" in text for text in messages), messages
    assert any("invalid user id 'not-a-user'" in text for text in messages), messages
    assert all(entry["source"].startswith("remote job ") for entry in entries)


def test_status_of_a_job_completed_with_rejections_exits_5(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """`status JOB --wait` asks Xandr and exits 5 for the same job, with the same status."""
    sandbox = serve(XandrConfig(known_segments=KNOWN))
    pushed = push(cli, sandbox.url, str(csv_file(tmp_path)), "--json")
    assert pushed.exit_code == 0, pushed.stderr  # not waited for: not known yet
    job = json.loads(pushed.stdout)["job"]
    result = cli(["status", job, "--wait", "--interval", "0.01", "--json"], env=ENV)
    assert result.exit_code == 5, result.stderr
    shown = json.loads(result.stdout)
    assert shown["status"] == "completed_with_rejections"
    assert "num_invalid_segment 1" in shown["error"]
    assert "num_invalid_segment 1" in result.stderr


def test_a_job_without_rejections_still_exits_0(
    cli: Cli, serve: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    """Every pair valid: exit 0, `completed`, no error."""
    sandbox = serve(XandrConfig(known_segments=KNOWN | {10002}))
    result = push(cli, sandbox.url, str(csv_file(tmp_path)), "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["error"]) == ("completed", None)
    assert summary["remote"]["rejected"] == {}


@pytest.mark.slow
def test_the_sandbox_flag_names_the_members_segments(cli: Cli, tmp_path: Path) -> None:
    """`bulkctl sandbox --xandr-segments 10000,10001` makes segment 10002 invalid."""
    with SandboxProcess(tmp_path / "a.db", "--xandr-segments", "10000,10001") as sandbox:
        result = push(cli, sandbox.url, str(csv_file(tmp_path)), "--wait", "--json")
    assert result.exit_code == 5, result.stderr
    assert json.loads(result.stdout)["remote"]["counts"]["num_invalid_segment"] == 1
    bad = cli(["sandbox", "--port", "0", "--xandr-segments", "10000,x"])
    assert bad.exit_code == 2 and "--xandr-segments" in bad.stderr


# -- a wait that gave up, then the hint followed --------------------------------------------------


def test_a_wait_that_gives_up_points_at_status_and_resume_sends_nothing(
    cli: Cli, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """--wait --timeout: exit 4 with `status JOB --wait`; `resume` refuses, no second job.

    `status JOB` in between stores the phase Xandr reports, which is not a final status.
    """
    sandbox = serve(XandrConfig(polls_per_phase=1_000_000))
    result = push(cli, sandbox.url, str(csv_file(tmp_path)), "--wait", "--timeout", "0.2", "--json")
    assert result.exit_code == 4, result.stderr
    job = json.loads(result.stdout)["job"]
    assert f"`bulkctl status {job} --wait`" in result.stderr
    assert "resume" not in result.stderr
    assert remote_jobs(db) == 1
    looked = cli(["status", job], env=ENV)  # records the phase Xandr reports (`uploading`)
    assert looked.exit_code == 0, looked.stderr
    resumed = cli(["resume", job, "--json"], env=ENV)
    assert resumed.exit_code == 2, resumed.stderr
    assert "nothing to resume: every file was uploaded" in resumed.stderr
    assert f"`bulkctl status {job} --wait`" in resumed.stderr
    assert remote_jobs(db) == 1  # the file was not uploaded again


def test_resume_never_reads_the_input_again_after_a_file_was_uploaded(
    cli: Cli, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """A job with one file uploaded and the other's part gone: resume refuses (exit 2).

    The job is the store's record of a push cut short after its first file; reading the input
    again would upload both files again.
    """
    sandbox = serve()
    first = push(cli, sandbox.url, str(csv_file(tmp_path)), "--json")
    assert first.exit_code == 0, first.stderr
    job = json.loads(first.stdout)["job"]
    with JobStore() as store:
        (part,) = store.list_parts(job)
        second = part.to_part()
        second.number, second.path, second.part_id = 2, tmp_path / "gone.txt.gz", None
        store.add_parts(job, [second])
        store.update_job(job, status="uploading", finished_at=None)
    resumed = cli(["resume", job, "--force"], env=ENV)
    assert resumed.exit_code == 2, resumed.stderr
    assert "1 of its files were uploaded already" in resumed.stderr
    assert "part 2" in resumed.stderr
    assert remote_jobs(db) == 1

"""`bulkctl status JOB`: lookups, human and JSON output, exit codes, and --wait on a real store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkctl.jobs.store import JobStore
from bulkctl.pack.parts import Part

Cli = Callable[..., Any]


@pytest.fixture
def store(isolated_env: Path) -> Iterator[JobStore]:
    """The store the CLI uses (BULKCTL_HOME points into tmp_path)."""
    with JobStore() as opened:
        yield opened


def make_job(store: JobStore, status: str, **changes: Any) -> str:
    job_id = store.create_job(
        "segment-bulk",
        "https://objects-bulk-api.segmentapis.com",
        ["rooms.ndjson"],
        {"lanes": 2, "part_size": 64_000_000, "stream": False, "dry_run": False},
    )
    store.update_job(job_id, status=status, **changes)
    return job_id


def add_parts(store: JobStore, job_id: str, directory: Path, count: int) -> list[Part]:
    """Write `count` real part files and record them as spooled."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for n in range(1, count + 1):
        path = directory / f"part-{n:02d}.ndjson.gz"
        path.write_bytes(b"\x1f\x8b" + b"x" * (100 * n))
        parts.append(
            Part(
                number=n,
                lane=(n - 1) % 2,
                lane_seq=(n - 1) // 2,
                path=path,
                records=10 * n,
                bytes_uncompressed=1000 * n,
                bytes_compressed=path.stat().st_size,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
    store.add_parts(job_id, parts)
    return parts


def test_status_by_local_id_shows_what_the_store_knows(cli: Cli, store: JobStore) -> None:
    """The human view lists target, endpoint, inputs, options, counts, remote id and the note."""
    job_id = make_job(
        store,
        "finished",
        remote_id="sync-abc",
        records=30,
        valid=28,
        rejected=2,
        parts=2,
        bytes_uncompressed=3000,
        bytes_sent=300,
    )
    result = cli(["status", job_id])
    assert result.exit_code == 0, result.stderr
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines()[:10])
    assert fields["job"] == job_id
    assert fields["target"] == "segment-bulk"
    assert fields["endpoint"] == "https://objects-bulk-api.segmentapis.com"
    assert fields["inputs"] == "rooms.ndjson"
    assert fields["options"] == "dry_run=false lanes=2 part_size=64000000 stream=false"
    # The session was applied without the 2 rejected records (--on-invalid skip).
    assert fields["status"] == "finished_with_rejections (recorded: finished)"
    assert "records    30 (28 valid, 2 rejected)" in result.stdout
    assert "remote id  sync-abc" in result.stdout
    assert "the Bulk API has no status endpoint; this is what bulkctl recorded" in result.stdout


def test_status_shows_each_part(cli: Cli, store: JobStore, tmp_path: Path) -> None:
    """Each part is a row: number, lane, seq, records, sizes, sha256 prefix, id, attempts, file."""
    job_id = make_job(store, "uploading", remote_id="sync-1")
    parts = add_parts(store, job_id, tmp_path / "bulkctl-spool", 2)
    store.mark_part_uploaded(job_id, 1, "part-id-1", 3)
    (tmp_path / "bulkctl-spool" / "part-02.ndjson.gz").unlink()
    result = cli(["status", job_id])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(
        "part\tlane\tseq\trecords\traw\tgz\tsha256\tpart id\tattempts\tstatus\tfile"
    )
    rows = [line.split("\t") for line in lines[header + 1 :]]
    sha = [p.sha256[:12] for p in parts]
    assert rows == [
        ["1", "0", "0", "10", "1.0 kB", "102 B", sha[0], "part-id-1", "3", "uploaded", "on disk"],
        ["2", "1", "0", "20", "2.0 kB", "202 B", sha[1], "-", "0", "spooled", "gone"],
    ]
    assert "status     uploading (34%)" in result.stdout  # 102 of 304 bytes uploaded


def test_status_by_remote_id(cli: Cli, store: JobStore) -> None:
    """The remote id (the sync id) finds the same job as its local id."""
    make_job(store, "finished", remote_id="sync-other")
    job_id = make_job(store, "finished", remote_id="sync-wanted")
    result = cli(["status", "sync-wanted", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["job"] == job_id


def test_status_last_is_the_newest_job(cli: Cli, store: JobStore) -> None:
    """`last` is the most recently created job."""
    make_job(store, "finished")
    newest = make_job(store, "dry_run")
    result = cli(["status", "last", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["job"] == newest


def test_unknown_job_is_a_usage_error_with_a_hint(cli: Cli, store: JobStore) -> None:
    """An id the store does not know exits 2 and points at `bulkctl jobs`."""
    make_job(store, "finished")
    result = cli(["status", "20990101-zzzz"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no job '20990101-zzzz' found" in result.stderr
    assert "`bulkctl jobs` lists recent jobs" in result.stderr


def test_last_on_an_empty_store_is_a_usage_error(cli: Cli) -> None:
    """`status last` with no job recorded exits 2 and says no job was recorded yet."""
    result = cli(["status", "last"])
    assert result.exit_code == 2
    assert "no job has been recorded yet" in result.stderr


def test_json_is_the_job_with_its_parts(cli: Cli, store: JobStore, tmp_path: Path) -> None:
    """--json prints one object: the job in push --json's words, its parts as `part_list`."""
    job_id = make_job(store, "finished", remote_id="sync-9", parts=3, records=60)
    parts = add_parts(store, job_id, tmp_path / "bulkctl-spool", 3)
    parts[2].path.unlink()
    result = cli(["status", job_id, "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    job = store.get_job(job_id).as_dict()
    job["job"] = job.pop("id")
    assert {k: v for k, v in data.items() if k in job} == job
    assert data["parts"] == 3
    assert data["bytes_compressed"] == sum(p.bytes_compressed for p in parts)
    assert [p["number"] for p in data["part_list"]] == [1, 2, 3]
    assert [p["on_disk"] for p in data["part_list"]] == [True, True, False]
    assert data["part_list"][0] == {
        "job_id": job_id,
        "number": 1,
        "lane": 0,
        "lane_seq": 0,
        "path": str(parts[0].path),
        "records": 10,
        "bytes_uncompressed": 1000,
        "bytes_compressed": 102,
        "sha256": parts[0].sha256,
        "part_id": None,
        "attempts": 0,
        "status": "spooled",
        "uploaded_at": None,
        "on_disk": True,
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("finished", 0),
        ("dry_run", 0),
        ("created", 0),
        ("packing", 0),
        ("uploading", 0),
        ("failed", 5),
        ("interrupted", 5),
        ("aborted", 5),
    ],
)
def test_exit_code_follows_the_status(cli: Cli, store: JobStore, status: str, code: int) -> None:
    """0 for finished, dry runs and running jobs; 5 for failed, interrupted and aborted ones."""
    job_id = make_job(store, status)
    result = cli(["status", job_id])
    assert result.exit_code == code, result.stderr
    assert f"status     {status}" in result.stdout


def test_a_failed_job_exits_5_with_its_stored_error(cli: Cli, store: JobStore) -> None:
    """The stored error is in the message, and --json still prints the job first."""
    job_id = make_job(store, "failed", error="upload of part 3 failed: HTTP 500")
    result = cli(["status", job_id, "--json"])
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"] == "upload of part 3 failed: HTTP 500"
    assert f"job {job_id} ended failed: upload of part 3 failed: HTTP 500" in result.stderr
    assert "resume" not in result.stderr


def test_an_interrupted_job_points_at_resume(cli: Cli, store: JobStore) -> None:
    """An interrupted push exits 5 and says `bulkctl resume JOB` continues it."""
    job_id = make_job(store, "interrupted", error="interrupted")
    result = cli(["status", job_id])
    assert result.exit_code == 5
    assert f"`bulkctl resume {job_id}` continues it" in result.stderr


def test_wait_on_a_final_job_returns_at_once(cli: Cli, store: JobStore) -> None:
    """--wait on a job that already ended prints it and exits by its status, with no poll lines."""
    job_id = make_job(store, "finished")
    result = cli(["status", job_id, "--wait", "--timeout", "0.1"])
    assert result.exit_code == 0
    assert result.stderr == ""


def test_wait_gives_up_at_the_timeout_with_exit_4(cli: Cli, store: JobStore) -> None:
    """A job still uploading at --timeout exits 4 with how to wait again, after printing it."""
    job_id = make_job(store, "uploading")
    result = cli(["status", job_id, "--wait", "--interval", "0.05", "--timeout", "0.2", "--json"])
    assert result.exit_code == 4
    assert json.loads(result.stdout)["status"] == "uploading"
    assert "gave up waiting after 0.2 s; the job is still uploading" in result.stderr
    assert f"run `bulkctl status {job_id} --wait` again" in result.stderr
    assert f"job {job_id}: uploading" in result.stderr


@pytest.mark.parametrize("option", [["--interval", "0"], ["--timeout", "-1"]])
def test_bad_wait_options_are_usage_errors(cli: Cli, store: JobStore, option: list[str]) -> None:
    """A zero interval or a negative timeout exits 2."""
    job_id = make_job(store, "uploading")
    result = cli(["status", job_id, "--wait", *option])
    assert result.exit_code == 2


class Waiter:
    """`bulkctl status ... --wait` in a subprocess whose stderr lines can be read one by one."""

    def __init__(self, home: Path, *args: str) -> None:
        env = os.environ | {"BULKCTL_HOME": str(home)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bulkctl", "status", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def next_line(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.readline()

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


def test_wait_follows_a_push_running_elsewhere_to_the_end(
    store: JobStore, isolated_env: Path, tmp_path: Path
) -> None:
    """--wait prints a line per status change while another process moves the job to finished."""
    job_id = make_job(store, "uploading", remote_id="sync-w")
    add_parts(store, job_id, tmp_path / "bulkctl-spool", 2)
    waiter = Waiter(isolated_env, "last", "--wait", "--interval", "0.05", "--timeout", "30")
    try:
        assert waiter.next_line().endswith(f"job {job_id}: uploading (0%)\n")
        store.mark_part_uploaded(job_id, 1, "p1", 1)
        store.mark_part_uploaded(job_id, 2, "p2", 1)
        store.update_job(job_id, status="finished", records=30, parts=2)
        code, out, err = waiter.finish()
    finally:
        waiter.process.kill()
    assert code == 0, err
    assert err.strip().endswith(f"job {job_id}: finished")
    assert "status     finished" in out
    assert "records    30 (0 valid, 0 rejected)" in out


def test_wait_on_last_stays_with_the_job_it_started_with(
    store: JobStore, isolated_env: Path
) -> None:
    """A newer job recorded during `status last --wait` does not replace the one being waited on."""
    job_id = make_job(store, "packing")
    waiter = Waiter(
        isolated_env, "last", "--wait", "--interval", "0.05", "--timeout", "20", "--json"
    )
    try:
        assert waiter.next_line().endswith(f"job {job_id}: packing\n")
        make_job(store, "created")
        store.update_job(job_id, status="interrupted", error="killed")
        code, out, err = waiter.finish()
    finally:
        waiter.process.kill()
    assert code == 5, err
    assert json.loads(out)["job"] == job_id
    assert f"job {job_id}: interrupted" in err

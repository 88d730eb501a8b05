"""A job store locked by another process: a push waits for it (saying so), refuses to start a
session it could not record, and never turns data the API applied into a failure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from helpers import base_env, bulkctl_exe, write_ndjson
from localstate import KEY, LineReader, StoreLocker, bulk_api
from pytest_httpserver import HTTPServer

from bulkctl.jobs.store import STORE_NAME, TIMEOUT_ENV, JobStore

WAITING = "is locked by another process; waiting up to"


def push_args(tmp_path: Path, server: HTTPServer) -> list[str]:
    rows = [{"id": f"r{n}", "collection": "rooms", "properties": {"n": n}} for n in range(20)]
    path = write_ndjson(tmp_path / "rooms.ndjson", rows)
    return [
        str(bulkctl_exe()),
        "push",
        str(path),
        "--endpoint",
        server.url_for(""),
        "--json",
        "--concurrency",
        "1",
    ]


def start_push(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(BULKCTL_WRITE_KEY=KEY, **env),
    )


def summary_of(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    return document


def test_a_lock_during_finish_is_waited_out_and_the_push_is_recorded(
    httpserver: HTTPServer, tmp_path: Path, isolated_env: Path
) -> None:
    """Locked while the session finishes: the push says it waits, and records 'finished'."""
    store = isolated_env / STORE_NAME
    with StoreLocker(store) as locker:
        seen = bulk_api(httpserver, on_finish=locker.lock)
        proc = start_push(push_args(tmp_path, httpserver))
        try:
            assert proc.stderr is not None
            stderr = LineReader(proc.stderr)
            waiting = stderr.wait_for(WAITING)
            locker.release()  # released only once the push says it is waiting
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert waiting, stderr.rest()
        assert proc.returncode == 0, stderr.rest()
    assert [kind for kind, _ in seen] == ["start", "upload", "finish"]
    summary = summary_of(stdout)
    assert (summary["status"], summary["error"]) == ("finished", None)
    assert "warnings" not in summary
    with JobStore(store) as jobs:
        assert jobs.get_job(summary["job"]).status == "finished"


def test_a_store_still_locked_after_the_finish_is_a_warning_not_a_failure(
    httpserver: HTTPServer, tmp_path: Path, isolated_env: Path
) -> None:
    """Locked past the timeout after the finish: exit 0, 'applied', a warning naming the store."""
    store = isolated_env / STORE_NAME
    with StoreLocker(store) as locker:
        seen = bulk_api(httpserver, on_finish=locker.lock)
        proc = start_push(push_args(tmp_path, httpserver), **{TIMEOUT_ENV: "0.2"})
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        locker.release()  # held until the push had ended
    assert proc.returncode == 0, stderr
    assert [kind for kind, _ in seen] == ["start", "upload", "finish"]
    assert json.loads(seen[-1][1] or b"{}").get("error") in (None, "")
    summary = summary_of(stdout)
    assert (summary["status"], summary["error"]) == ("finished", None)
    (warning,) = summary["warnings"]
    for text in (warning, stderr):
        assert "was applied" in text and str(store) in text and "locked" in text
    assert "bulkctl: warning:" in stderr
    assert "bulkctl: error" not in stderr


def test_a_store_locked_before_the_push_is_exit_6_and_nothing_is_sent(
    httpserver: HTTPServer, tmp_path: Path, isolated_env: Path
) -> None:
    """Locked from the start: exit 6 naming the store, one JSON object, no session opened."""
    store = isolated_env / STORE_NAME
    JobStore(store).close()
    seen = bulk_api(httpserver)
    with StoreLocker(store) as locker:
        locker.lock()
        proc = start_push(push_args(tmp_path, httpserver), **{TIMEOUT_ENV: "0.2"})
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        locker.release()
    assert proc.returncode == 6, stderr
    assert seen == []
    summary = summary_of(stdout)
    assert summary["status"] == "failed"
    assert str(store) in summary["error"] and "locked by another process" in summary["error"]
    assert TIMEOUT_ENV in stderr


def test_a_store_locked_while_uploading_ends_the_session_with_an_error(
    httpserver: HTTPServer, tmp_path: Path, isolated_env: Path
) -> None:
    """A part's record cannot be written: exit 6, and the session is ended so nothing applies."""
    store = isolated_env / STORE_NAME
    with StoreLocker(store) as locker:
        seen = bulk_api(httpserver, on_upload=lambda number: locker.lock())
        proc = start_push(push_args(tmp_path, httpserver), **{TIMEOUT_ENV: "0.2"})
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        locker.release()
    assert proc.returncode == 6, stderr
    assert [kind for kind, _ in seen] == ["start", "upload", "finish"]
    assert "locked" in json.loads(seen[-1][1])["error"]
    summary = summary_of(stdout)
    assert summary["status"] == "failed"
    assert str(store) in summary["error"] and "ended with an error" in summary["error"]


def test_status_and_jobs_read_a_store_another_process_is_writing(
    cli: Any, isolated_env: Path
) -> None:
    """Reading commands never wait for the write lock: status and jobs answer at once."""
    store = isolated_env / STORE_NAME
    with JobStore(store) as jobs:
        job = jobs.create_job("segment-bulk", "http://127.0.0.1:1", ["a.ndjson"], {})
        jobs.update_job(job, status="finished")
    with StoreLocker(store) as locker:
        locker.lock()
        env = {TIMEOUT_ENV: "0.2"}
        shown = cli(["status", job, "--json"], env=env)
        listed = cli(["jobs", "--json"], env=env)
        locker.release()
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "finished"
    assert listed.exit_code == 0, listed.stderr
    assert [row["job"] for row in json.loads(listed.stdout)] == [job]

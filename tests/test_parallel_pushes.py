"""Two cron jobs pushing at once: two installed `bulkctl push` processes started together against
one slow sandbox, sharing one (fresh) job store. Both must be recorded whole and both applied.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import SandboxProcess, base_env, bulkctl_exe, run_bulkctl, write_ndjson
from test_cli_resume import make_records, merged, table

from bulkctl.jobs.store import STORE_NAME, JobStore

pytestmark = pytest.mark.slow

KEY = "wk_Parallel_sandbox_Key"


def with_prefix(records: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The same records under ids of their own, so two pushes never touch one object."""
    return [record | {"id": prefix + record["id"]} for record in records]


def session_parts(db: Path) -> dict[str, tuple[str, set[str]]]:
    """{session id: (status, part ids)} from the sandbox's bookkeeping."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        sessions = conn.execute("SELECT id, status FROM _sandbox_sessions").fetchall()
        parts = conn.execute("SELECT session_id, part_id FROM _sandbox_parts").fetchall()
    finally:
        conn.close()
    return {sid: (status, {pid for s, pid in parts if s == sid}) for sid, status in sessions}


def test_two_pushes_at_once_are_both_recorded_and_both_applied(
    tmp_path: Path, isolated_env: Path
) -> None:
    """Two jobs, each with its own parts, counts, sync id and status finished; both applied."""
    inputs = {
        tmp_path / "a.ndjson": with_prefix(make_records(2500, seed=21), "a-"),
        tmp_path / "b.ndjson": with_prefix(make_records(2000, seed=22), "b-"),
    }
    for path, records in inputs.items():
        write_ndjson(path, records)
    assert not (isolated_env / STORE_NAME).exists()  # both processes create the store at once
    db = tmp_path / "warehouse.sqlite3"
    env = base_env(BULKCTL_WRITE_KEY=KEY)
    with SandboxProcess(db, "--latency", "150", write_key=KEY) as sandbox:
        flags = ["--endpoint", sandbox.url, "--part-size", "1MB", "--concurrency", "2", "--json"]
        procs = {
            path: subprocess.Popen(
                [str(bulkctl_exe()), "push", str(path), *flags],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for path in inputs
        }
        outputs = {path: proc.communicate(timeout=120) for path, proc in procs.items()}
        sessions = session_parts(db)
        rooms, hosts = table(db, "rooms"), table(db, "hosts")
        listed = run_bulkctl(["jobs", "--json"])

    for path, proc in procs.items():
        assert proc.returncode == 0, outputs[path][1]
    summaries = {path: json.loads(out) for path, (out, _) in outputs.items()}
    everything = [record for records in inputs.values() for record in records]
    assert rooms == merged(everything, "rooms")
    assert hosts == merged(everything, "hosts")

    with JobStore() as store:
        jobs = {job.id: job for job in store.list_jobs()}
        parts = {job_id: store.list_parts(job_id) for job_id in jobs}
    assert set(jobs) == {s["job"] for s in summaries.values()}
    assert len(jobs) == 2
    remote_ids = {job.remote_id for job in jobs.values()}
    assert len(remote_ids) == 2 and None not in remote_ids
    assert set(sessions) == remote_ids  # no other session was started
    for path, summary in summaries.items():
        job = jobs[summary["job"]]
        count = len(inputs[path])
        assert job.status == summary["status"] == "finished"
        assert job.inputs == [str(path)]
        assert job.remote_id == summary["remote_id"]
        assert (job.records, job.valid, job.rejected) == (count, count, 0)
        assert job.parts == summary["parts"] == len(parts[job.id]) >= 3
        assert job.finished_at is not None
        own = parts[job.id]
        assert [p.number for p in own] == list(range(1, job.parts + 1))
        assert all(p.status == "uploaded" for p in own)
        assert sum(p.records for p in own) == count
        status, received = sessions[job.remote_id or ""]
        assert status == "finished"
        assert {p.part_id for p in own} == received  # its parts, and only its, in its session

    rows = json.loads(listed.stdout)
    assert listed.returncode == 0, listed.stderr
    assert {row["job"]: (row["status"], row["remote_id"]) for row in rows} == {
        job.id: ("finished", job.remote_id) for job in jobs.values()
    }

"""The SQLite job store: schema, rows, lookups, threads and processes at once, no secrets."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkctl.errors import BulkctlError, UsageError
from bulkctl.jobs.store import MIGRATIONS, JobStore, PartRow
from bulkctl.pack.parts import Part
from bulkctl.redact import redact_url, redact_urls


def make_parts(count: int, lanes: int = 2) -> list[Part]:
    """Parts as a packer would report them (files need not exist for the store)."""
    return [
        Part(
            number=n,
            lane=(n - 1) % lanes,
            lane_seq=(n - 1) // lanes,
            path=Path(f"/spool/part-{n}.ndjson.gz"),
            records=10 * n,
            bytes_uncompressed=1000 * n,
            bytes_compressed=100 * n,
            sha256=f"{n:064x}",
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "jobs.sqlite3") as opened:
        yield opened


def test_create_and_get_round_trip(store: JobStore) -> None:
    """A created job reads back with its target, endpoint, inputs, options and 'created' status."""
    job_id = store.create_job(
        "segment-bulk",
        "https://objects-bulk-api.segmentapis.com",
        ["rooms.ndjson", Path("more.csv"), "-"],
        {"lanes": 4, "part_size": 512_000_000, "spool_dir": Path("/tmp"), "stream": False},
    )
    job = store.get_job(job_id)
    assert job.id == job_id
    assert job.target == "segment-bulk"
    assert job.endpoint == "https://objects-bulk-api.segmentapis.com"
    assert job.inputs == ["rooms.ndjson", "more.csv", "-"]
    assert job.options == {
        "lanes": 4,
        "part_size": 512_000_000,
        "spool_dir": "/tmp",
        "stream": False,
    }
    assert job.status == "created"
    assert (job.remote_id, job.error, job.finished_at) == (None, None, None)
    assert (job.records, job.parts, job.bytes_sent) == (0, 0, 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", job.created_at)
    assert job.updated_at == job.created_at


def test_job_ids_are_short_unique_and_start_with_the_day(store: JobStore) -> None:
    """Job ids look like 20261122-7kq3 and never repeat."""
    ids = [store.create_job("segment-bulk", "http://127.0.0.1", [], {}) for _ in range(200)]
    assert len(set(ids)) == len(ids)
    created_day = store.get_job(ids[0]).created_at[:10].replace("-", "")
    for job_id in ids:
        assert re.fullmatch(r"\d{8}-[0-9a-hjkmnp-tv-z]{4}", job_id)
    assert ids[0].startswith(created_day)


def test_an_id_collision_draws_another_id(tmp_path: Path) -> None:
    """When a drawn id is taken, create_job retries with a new one instead of failing."""
    drawn = iter(["20261122-aaaa", "20261122-aaaa", "20261122-bbbb"])
    with JobStore(tmp_path / "jobs.sqlite3", new_id=lambda: next(drawn)) as store:
        first = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
        second = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
        assert (first, second) == ("20261122-aaaa", "20261122-bbbb")
        assert [j.id for j in store.list_jobs()] == [second, first]


def test_update_job_sets_fields_and_stamps_final_jobs(store: JobStore) -> None:
    """update_job changes counts and status; a final status records finished_at."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", ["a.ndjson"], {})
    store.update_job(job_id, status="uploading", remote_id="sync-1", records=5, valid=4, rejected=1)
    job = store.get_job(job_id)
    assert (job.status, job.remote_id, job.records, job.valid, job.rejected) == (
        "uploading",
        "sync-1",
        5,
        4,
        1,
    )
    assert job.finished_at is None
    store.update_job(job_id, status="finished", parts=2, bytes_uncompressed=900, bytes_sent=300)
    job = store.get_job(job_id)
    assert job.status == "finished" and job.finished_at is not None
    assert (job.parts, job.bytes_uncompressed, job.bytes_sent) == (2, 900, 300)
    assert job.updated_at >= job.created_at


def test_update_job_refuses_unknown_fields_and_jobs(store: JobStore) -> None:
    """Only whitelisted fields can change, and only on a job that exists."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    with pytest.raises(ValueError, match="cannot update endpoint"):
        store.update_job(job_id, endpoint="https://elsewhere")
    with pytest.raises(ValueError, match="no job"):
        store.update_job("20000101-zzzz", status="failed")


def test_parts_are_recorded_and_marked(store: JobStore) -> None:
    """Parts read back as added; uploaded and failed marks keep part_id, attempts and time."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    parts = make_parts(3)
    store.add_parts(job_id, parts)
    store.mark_part_uploaded(job_id, 1, "part-abc", attempts=2)
    store.mark_part_failed(job_id, 3, attempts=8)
    rows = store.list_parts(job_id)
    assert [r.number for r in rows] == [1, 2, 3]
    assert [r.status for r in rows] == ["uploaded", "spooled", "failed"]
    assert (rows[0].part_id, rows[0].attempts) == ("part-abc", 2)
    assert rows[0].uploaded_at is not None and rows[1].uploaded_at is None
    assert rows[2].attempts == 8
    assert rows[1].to_part() == parts[1]
    assert rows[1].as_dict()["path"] == "/spool/part-2.ndjson.gz"


def test_reset_parts_prepares_a_resend(store: JobStore) -> None:
    """reset_parts forgets part ids and attempts so a new session sends every part again."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    store.add_parts(job_id, make_parts(2))
    store.mark_part_uploaded(job_id, 1, "p1", 1)
    assert store.reset_parts(job_id) == 2
    rows = store.list_parts(job_id)
    assert {(r.status, r.part_id, r.attempts, r.uploaded_at) for r in rows} == {
        ("spooled", None, 0, None)
    }


def test_part_mistakes_are_refused(store: JobStore) -> None:
    """Marking a missing part, adding a part twice or to no job raise ValueError."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    store.add_parts(job_id, make_parts(1))
    with pytest.raises(ValueError, match="no part 9"):
        store.mark_part_uploaded(job_id, 9, "x", 1)
    with pytest.raises(ValueError, match="already has"):
        store.add_parts(job_id, make_parts(1))
    with pytest.raises(ValueError, match="unknown"):
        store.add_parts("20000101-zzzz", make_parts(1))
    assert len(store.list_parts(job_id)) == 1


def test_get_job_by_local_id_remote_id_or_last(store: JobStore) -> None:
    """A job is found by its local id, its remote id, or `last` for the newest."""
    first = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    second = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    store.update_job(first, remote_id="sync-77")
    assert store.get_job("sync-77").id == first
    assert store.get_job(first).id == first
    assert store.get_job("last").id == second


def test_a_job_is_found_by_the_remote_id_of_any_of_its_parts(store: JobStore) -> None:
    """`status J2`: a later remote job of a push (Xandr: one a file) finds that push."""
    job_id = store.create_job("xandr-bss", "http://127.0.0.1", [], {})
    store.create_job("xandr-bss", "http://127.0.0.1", [], {})
    store.update_job(job_id, remote_id="J1")
    store.add_parts(job_id, make_parts(2))
    store.mark_part_uploaded(job_id, 1, "J1", attempts=1)
    store.mark_part_uploaded(job_id, 2, "J2", attempts=1)
    assert store.get_job("J2").id == job_id
    assert store.get_job("J1").id == job_id
    with pytest.raises(UsageError, match="no job 'J3' found"):
        store.get_job("J3")


def test_unknown_job_is_a_usage_error_that_says_how_to_find_ids(store: JobStore) -> None:
    """A missing job (or `last` in an empty store) names `bulkctl jobs` as the way to list ids."""
    with pytest.raises(UsageError, match="no job has been recorded yet") as empty:
        store.get_job("last")
    assert "bulkctl jobs" in str(empty.value)
    store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    with pytest.raises(UsageError, match="no job 'nope' found") as missing:
        store.get_job("nope")
    assert "bulkctl jobs" in str(missing.value)


def test_list_jobs_newest_first_with_filters(store: JobStore) -> None:
    """list_jobs returns newest first, honours limit, and filters by target and status."""
    ids = []
    for n in range(6):
        target = "segment-bulk" if n % 2 == 0 else "brevo-objects"
        ids.append(store.create_job(target, "http://127.0.0.1", [], {}))
    store.update_job(ids[0], status="failed")
    store.update_job(ids[4], status="failed")
    assert [j.id for j in store.list_jobs()] == ids[::-1]
    assert [j.id for j in store.list_jobs(limit=2)] == [ids[5], ids[4]]
    assert [j.id for j in store.list_jobs(target="segment-bulk")] == [ids[4], ids[2], ids[0]]
    assert [j.id for j in store.list_jobs(status="failed")] == [ids[4], ids[0]]
    assert [j.id for j in store.list_jobs(target="brevo-objects", status="failed")] == []


def test_schema_is_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    """A new store is in WAL mode at the latest user_version; reopening changes nothing."""
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as store:
        job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    with JobStore(path) as store:
        assert store.get_job(job_id).id == job_id
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_a_store_from_a_newer_bulkctl_is_refused(tmp_path: Path) -> None:
    """A schema version beyond the known migrations is an error, not a silent downgrade."""
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(BulkctlError, match="newer than this bulkctl"):
        JobStore(path)


def test_a_file_that_is_not_a_database_is_a_bulkctl_error(tmp_path: Path) -> None:
    """A corrupt store is reported as a BulkctlError naming the file, not a raw sqlite3 error."""
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BulkctlError, match=r"jobs\.sqlite3 cannot be used"):
        JobStore(path)


def test_default_path_is_in_the_data_dir(isolated_env: Path) -> None:
    """Without a path the store lives at <data dir>/jobs.sqlite3 (BULKCTL_HOME in tests)."""
    with JobStore() as store:
        assert store.path == isolated_env / "jobs.sqlite3"
        store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    assert (isolated_env / "jobs.sqlite3").is_file()


def test_upload_threads_can_mark_parts_concurrently(store: JobStore) -> None:
    """Eight threads marking 400 parts through one store lose no update."""
    job_id = store.create_job("segment-bulk", "http://127.0.0.1", [], {})
    store.add_parts(job_id, make_parts(400))

    def mark(offset: int) -> None:
        for number in range(1 + offset, 401, 8):
            store.mark_part_uploaded(job_id, number, f"p{number}", attempts=1)

    threads = [threading.Thread(target=mark, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.list_parts(job_id)
    assert [(r.status, r.part_id) for r in rows] == [("uploaded", f"p{n}") for n in range(1, 401)]


WORKER_NAMES = ("cron-a", "cron-b", "cron-c", "cron-d")
JOBS_EACH = 15
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bulkctl.jobs.store import JobStore
    from bulkctl.pack.parts import Part

    db, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    while not go.exists():
        time.sleep(0.005)
    for n in range(40):  # all workers race to create the same fresh files
        JobStore(db.parent / f"fresh-{n}.sqlite3").close()
    for n in range(int(sys.argv[4])):
        with JobStore(db) as store:
            job = store.create_job("segment-bulk", "http://127.0.0.1", [f"{name}-{n}"], {})
            store.update_job(job, status="uploading", remote_id=f"{name}-sync-{n}")
            store.add_parts(job, [
                Part(number=k, lane=0, lane_seq=k - 1, path=Path(f"{name}-{n}-{k}"),
                     records=1, bytes_uncompressed=1, bytes_compressed=1, sha256="0" * 64)
                for k in range(1, 5)
            ])
            for k in range(1, 5):
                store.mark_part_uploaded(job, k, f"{name}-{n}-{k}", 1)
            store.update_job(job, status="finished", records=4)
    """
)


def test_parallel_processes_record_all_their_jobs(tmp_path: Path) -> None:
    """Four processes racing to create stores and record jobs all succeed, losing no row."""
    db, go = tmp_path / "fresh" / "jobs.sqlite3", tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(go), name, str(JOBS_EACH)],
            cwd=Path(__file__).resolve().parents[1],  # import this checkout's bulkctl
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in WORKER_NAMES
    ]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    with JobStore(db) as store:
        jobs = store.list_jobs(limit=None)
        assert len(jobs) == len(WORKER_NAMES) * JOBS_EACH
        assert {j.status for j in jobs} == {"finished"}
        assert sorted(j.inputs[0] for j in jobs) == sorted(
            f"{name}-{n}" for name in WORKER_NAMES for n in range(JOBS_EACH)
        )
        for job in jobs:
            parts: list[PartRow] = store.list_parts(job.id)
            assert [(p.status, p.part_id) for p in parts] == [
                ("uploaded", f"{job.inputs[0]}-{k}") for k in range(1, 5)
            ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@host.example/v0", "https://host.example/v0"),
        ("https://sk_live_1:@host", "https://host"),
        ("http://a:p@ss@127.0.0.1:8080/x?y=1", "http://127.0.0.1:8080/x?y=REDACTED"),
        ("https://host.example/v0/start", "https://host.example/v0/start"),
        (
            "failed: POST https://k:@h/v0/upload/s1 gave 500",
            "failed: POST https://h/v0/upload/s1 gave 500",
        ),
        (
            '{"endpoint": "https://k:@H.example/v0?token=s3cr3t#f", "other": "https://Up.example/a"}',
            '{"endpoint": "https://h.example/v0?token=REDACTED", "other": "https://Up.example/a"}',
        ),
    ],
)
def test_redact_urls_removes_user_info_and_query_values_of_every_url(
    text: str, expected: str
) -> None:
    """Every URL in a text (a message, the options' JSON) loses its user info (the write key
    as Basic user name), query values and fragment; a URL with none of them stays as written."""
    assert redact_urls(text) == expected
    if text.startswith("http"):
        assert redact_url(text) == expected  # one rule for one URL and for a text


def test_secret_option_names_are_refused(store: JobStore) -> None:
    """Options named like a secret (write_key, api_key, password, token) are never stored."""
    for name in ("write_key", "api_key", "xandr_password", "token"):
        with pytest.raises(ValueError, match="looks like a secret"):
            store.create_job("segment-bulk", "http://127.0.0.1", [], {name: "x"})
    store.create_job("segment-bulk", "http://127.0.0.1", [], {"write_key_file": "/etc/key"})


def test_no_secret_reaches_the_database_file(tmp_path: Path) -> None:
    """A push-like sequence with a key in the endpoint's user info leaves no trace of the key."""
    secret = "sk_live_SuperSecretWriteKey42"
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as store:
        job_id = store.create_job(
            "segment-bulk",
            f"https://{secret}:@objects-bulk-api.segmentapis.com",
            ["rooms.ndjson"],
            {"lanes": 4, "endpoint": f"https://{secret}@eu.example"},
        )
        store.update_job(job_id, status="packing", records=3, valid=3)
        store.add_parts(job_id, make_parts(2))
        store.update_job(job_id, status="uploading", remote_id="sync-1")
        store.mark_part_uploaded(job_id, 1, "p1", 1)
        store.mark_part_failed(job_id, 2, 8)
        store.update_job(
            job_id,
            status="failed",
            error=f"upload of part 2 to https://{secret}:@objects-bulk-api.segmentapis.com failed",
        )
        job = store.get_job("last")
        assert secret not in repr(job)
        assert job.endpoint == "https://objects-bulk-api.segmentapis.com"
        during = b"".join(p.read_bytes() for p in tmp_path.glob("jobs.sqlite3*"))
    after = b"".join(p.read_bytes() for p in tmp_path.glob("jobs.sqlite3*"))
    assert b"objects-bulk-api" in during + after  # the files do hold the job
    assert secret.encode() not in during
    assert secret.encode() not in after

"""`bulkctl resume JOB`: a push killed mid-upload (SIGKILL) is finished, checked record by record
in the sandbox warehouse and part by part in the sandbox's session bookkeeping; the refusals
(stdin without spool, finished, unknown, still running); `parts_to_send` and `plan_resume`.

The end-to-end tests run the installed `bulkctl push` and `bulkctl sandbox --latency` as
subprocesses and synchronise on what they print or record (a "part N uploaded" line, a session
row turning 'expired', a job row in 'packing'), never on sleeps.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import queue
import random
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest
from helpers import (
    SandboxProcess,
    base_env,
    bulkctl_exe,
    merged,
    ndjson_bytes,
    run_bulkctl,
    write_ndjson,
)

from bulkctl.errors import UsageError
from bulkctl.jobs.store import JobRow, JobStore, PartRow
from bulkctl.pack.parts import Part
from bulkctl.run.resume import parts_to_send, plan_resume

Cli = Callable[..., Any]
KEY = "wk_Resume_sandbox_Key"
LATENCY_MS = "200"
UPLOADED = r"^part \d+ uploaded"
PUSH_FLAGS = ("--part-size", "1MB", "--concurrency", "2")


# -- helpers ---------------------------------------------------------------------------------


def make_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Partial updates of a few hundred ids in two collections, about 1.2 kB a record."""
    rng = random.Random(seed)
    records = []
    for n in range(count):
        hosts = n % 10 == 0
        props: dict[str, Any] = {f"p{k}": rng.randrange(1000) for k in rng.sample(range(6), 2)}
        if n % 3 == 0:
            props["label"] = f"v{n}"
        props["blob"] = rng.randbytes(560).hex()
        records.append(
            {
                "id": f"h{rng.randrange(60)}" if hosts else f"r{rng.randrange(500)}",
                "collection": "hosts" if hosts else "rooms",
                "properties": props,
            }
        )
    return records


def _read_db(db: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        cursor = conn.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        conn.close()


def table(db: Path, collection: str) -> dict[str, dict[str, Any]]:
    """A warehouse table as {id: {column: value}}, NULL columns left out."""
    names, rows = _read_db(db, f'SELECT * FROM "{collection}"')
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        record_id = values.pop("id")
        out[record_id] = {k: v for k, v in values.items() if v is not None}
    return out


def assert_warehouse_is_merge_of(db: Path, records: list[dict[str, Any]]) -> None:
    """Every row of both collections equals the merge of the input, and nothing else is there."""
    for collection in ("rooms", "hosts"):
        assert table(db, collection) == merged(records, collection), collection


Signature = tuple[int, int, int]


def signature(part: PartRow) -> Signature:
    """What both sides know of a part: compressed bytes, uncompressed bytes, lines."""
    return (part.bytes_compressed, part.bytes_uncompressed, part.records)


def sessions_of(db: Path) -> dict[str, str]:
    """{session id: status} from the sandbox's bookkeeping."""
    _, rows = _read_db(db, "SELECT id, status FROM _sandbox_sessions")
    return {str(sid): str(status) for sid, status in rows}


def received(db: Path, session: str) -> list[tuple[str, Signature]]:
    """(part id, signature) of every part the sandbox accepted into `session`, in order."""
    _, rows = _read_db(
        db,
        "SELECT part_id, bytes_compressed, bytes_uncompressed, lines FROM _sandbox_parts "
        f"WHERE session_id = '{session}' ORDER BY seq",
    )
    return [(str(r[0]), (int(r[1]), int(r[2]), int(r[3]))) for r in rows]


def stored(ref: str = "last") -> tuple[JobRow, list[PartRow]]:
    """A job and its parts as the job store (the one the subprocesses share) has them now."""
    with JobStore() as store:
        job = store.get_job(ref)
        return job, store.list_parts(job.id)


def lane_tails(parts: Sequence[PartRow]) -> set[int]:
    """Part numbers the lane-tail rule resends: per lane, every part from the first unacked."""
    chosen: set[int] = set()
    behind: set[int] = set()
    for part in sorted(parts, key=lambda p: (p.lane, p.lane_seq)):
        if part.lane in behind or not part.part_id:
            behind.add(part.lane)
            chosen.add(part.number)
    return chosen


def resume(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `bulkctl resume ARGS --json` with the sandbox's key."""
    return run_bulkctl(["resume", *args, "--json"], env=base_env(BULKCTL_WRITE_KEY=KEY))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll an observable condition (a database row) until it holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Running:
    """An installed `bulkctl` command in the background; its stderr read line by line."""

    def __init__(self, args: Sequence[str | Path], *, stdin: bytes | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(bulkctl_exe()), *map(str, args)],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=base_env(BULKCTL_WRITE_KEY=KEY),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True).start()
        if stdin is not None:
            threading.Thread(target=self._feed, args=(stdin,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queue.put(None)

    def _feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except OSError:  # the process was killed before it read everything
            pass

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """Read stderr until a line matches `pattern`; fail if the process ends first."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r}:\n" + "\n".join(self.lines)
                ) from None
            if line is None:
                self.proc.wait()
                raise AssertionError(
                    f"ended ({self.proc.returncode}) before a line matching {pattern!r}:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def kill(self) -> None:
        """SIGKILL, which nothing in bulkctl can catch; it must still have been running."""
        assert self.proc.poll() is None, "the push ended before it could be killed"
        self.proc.kill()
        self.proc.wait(10)

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def killed_push(
    url: str, source: str | Path, spool: Path, *, stdin: bytes | None = None, until: str = UPLOADED
) -> tuple[JobRow, list[PartRow]]:
    """A push SIGKILLed as soon as a stderr line matches `until`; the job as it left it."""
    spool.mkdir(exist_ok=True)
    args = ["push", source, "--endpoint", url, *PUSH_FLAGS, "--spool-dir", spool]
    with Running(args, stdin=stdin) as push:
        push.wait_for(until)
        push.kill()
    job, parts = stored()
    assert job.status == "uploading"
    assert job.options["pid"] == push.proc.pid
    assert job.options["packed"] is True
    assert job.remote_id
    assert len({signature(p) for p in parts}) == len(parts) >= 4  # parts tell apart by size
    assert all(p.path.is_file() for p in parts)
    return job, parts


# -- end to end: killed, then resumed --------------------------------------------------------


@pytest.mark.slow
def test_killed_push_resumes_into_its_open_session_sending_only_unacknowledged_parts(
    tmp_path: Path,
) -> None:
    """Session alive: resume says so, sends per lane from the first unacked part, one session."""
    records = make_records(4000)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    spool = tmp_path / "spool"
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, "--latency", LATENCY_MS, write_key=KEY) as sandbox:
        job, before = killed_push(sandbox.url, path, spool)
        acked = [p for p in before if p.part_id]
        assert acked and len(acked) < len(before)  # killed mid-upload
        result = resume("last")
        assert result.returncode == 0, result.stderr
        sessions = sessions_of(db)
        got = received(db, job.remote_id or "")
        assert_warehouse_is_merge_of(db, records)
        again = resume("last")

    summary = json.loads(result.stdout)
    assert summary["job"] == job.id
    assert summary["status"] == "finished"
    assert summary["remote_id"] == job.remote_id
    assert summary["records"] == summary["valid"] == len(records)
    assert summary["parts"] == len(before)
    resent = lane_tails(before)
    assert {p.number for p in before if not p.part_id} <= resent
    assert (
        f"session {job.remote_id} is still open: sending {len(resent)} of {len(before)} parts"
        in result.stderr
    )
    # One session, applied, holding every part: acknowledged ones (outside the lanes' tails)
    # exactly once; resent ones once, or twice when the killed push's last upload got through.
    assert sessions == {job.remote_id: "finished"}
    counts = Counter(sig for _, sig in got)
    assert set(counts) == {signature(p) for p in before}
    for part in before:
        if part.number in resent:
            assert counts[signature(part)] in (1, 2), part.number
        else:
            assert counts[signature(part)] == 1, part.number
    assert {p.part_id for p in acked if p.number not in resent} <= {pid for pid, _ in got}

    after, parts = stored(job.id)
    assert after.status == "finished"
    assert after.remote_id == job.remote_id
    assert after.options["pid"] != job.options["pid"]  # the resume claimed the job
    assert [p.status for p in parts] == ["uploaded"] * len(before)
    assert {p.part_id for p in parts} <= {pid for pid, _ in got}
    assert list(spool.iterdir()) == []  # the spooled parts and their directory are gone

    assert again.returncode == 2
    assert "nothing to resume" in again.stderr


@pytest.mark.slow
def test_stdin_push_whose_session_expired_resumes_from_its_spool_in_a_new_session(
    tmp_path: Path,
) -> None:
    """Session expired: a new session gets every spooled part once; stdin is not needed."""
    records = make_records(4000, seed=8)
    spool = tmp_path / "spool"
    db = tmp_path / "warehouse.sqlite3"
    flags = ("--latency", LATENCY_MS, "--session-timeout", "1")
    with SandboxProcess(db, *flags, write_key=KEY) as sandbox:
        job, before = killed_push(sandbox.url, "-", spool, stdin=ndjson_bytes(records))
        assert job.inputs == ["<stdin>"]
        wait_until(
            lambda: sessions_of(db).get(job.remote_id or "") == "expired", "the session to expire"
        )
        result = resume(job.id)
        assert result.returncode == 0, result.stderr
        sessions = sessions_of(db)
        summary = json.loads(result.stdout)
        got = received(db, summary["remote_id"])
        assert_warehouse_is_merge_of(db, records)

    assert summary["job"] == job.id
    assert summary["status"] == "finished"
    new = summary["remote_id"]
    assert new != job.remote_id
    assert (
        f"starting a new session and sending all {len(before)} spooled parts again" in result.stderr
    )
    assert sessions == {job.remote_id: "expired", new: "finished"}
    assert sorted(sig for _, sig in got) == sorted(signature(p) for p in before)
    after, parts = stored(job.id)
    assert (after.status, after.remote_id) == ("finished", new)
    assert {p.part_id for p in parts} == {pid for pid, _ in got}
    assert after.records == len(records)


@pytest.mark.slow
def test_push_whose_spool_was_deleted_is_read_again_under_the_same_job(tmp_path: Path) -> None:
    """Spool gone (its whole --spool-dir): the input is read again; same job id, finished."""
    records = make_records(4000, seed=9)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    spool = tmp_path / "spool"
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, "--latency", LATENCY_MS, write_key=KEY) as sandbox:
        job, before = killed_push(sandbox.url, path, spool)
        shutil.rmtree(spool)
        result = resume("last")
        assert result.returncode == 0, result.stderr
        sessions = sessions_of(db)
        summary = json.loads(result.stdout)
        got = received(db, summary["remote_id"])
        assert_warehouse_is_merge_of(db, records)
        listed = run_bulkctl(["jobs", "--json"])

    assert "reading its input again" in result.stderr
    assert f"its spool directory {spool} is gone: spooling in the temp dir instead" in result.stderr
    assert summary["job"] == job.id
    assert summary["status"] == "finished"
    assert summary["records"] == summary["valid"] == len(records)
    new = summary["remote_id"]
    assert new != job.remote_id
    assert sessions[new] == "finished"
    assert sessions[job.remote_id or ""] == "open"  # the killed push's session: never applied
    assert sorted(sig for _, sig in got) == sorted(signature(p) for p in before)

    assert [row["job"] for row in json.loads(listed.stdout)] == [job.id]
    after, parts = stored(job.id)
    assert (after.status, after.remote_id, after.records) == ("finished", new, len(records))
    assert len(parts) == len(before)
    assert {p.part_id for p in parts} == {pid for pid, _ in got}


@pytest.mark.slow
def test_stdin_push_whose_spool_is_gone_cannot_be_resumed(tmp_path: Path) -> None:
    """Input was stdin and the parts are gone: exit 2, saying it cannot be resumed."""
    records = make_records(4000, seed=10)
    spool = tmp_path / "spool"
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, "--latency", LATENCY_MS, write_key=KEY) as sandbox:
        job, _ = killed_push(sandbox.url, "-", spool, stdin=ndjson_bytes(records))
        shutil.rmtree(spool)
        result = resume("last")
        sessions = sessions_of(db)

    assert result.returncode == 2, result.stderr
    assert f"job {job.id} read standard input" in result.stderr
    assert "cannot be resumed" in result.stderr
    assert sessions == {job.remote_id: "open"}  # nothing was started or sent
    after, _ = stored(job.id)
    assert after.status == "uploading"


@pytest.mark.slow
def test_push_killed_while_finishing_is_finished_into_its_session(tmp_path: Path) -> None:
    """Every part acknowledged, killed while its finish was retried: resume applies that session."""
    records = make_records(2500, seed=11)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    db = tmp_path / "warehouse.sqlite3"
    flags = ("--latency", LATENCY_MS, "--status-for", "finish=500,500,500,500,500")
    with SandboxProcess(db, *flags, write_key=KEY) as sandbox:
        job, before = killed_push(
            sandbox.url, path, tmp_path / "spool", until=r"^retrying finish of session"
        )
        assert all(p.part_id for p in before)
        result = resume("last")
        assert result.returncode == 0, result.stderr
        sessions = sessions_of(db)
        got = received(db, job.remote_id or "")
        tables = {name: table(db, name) for name in ("rooms", "hosts")}

    summary = json.loads(result.stdout)
    assert (summary["status"], summary["remote_id"]) == ("finished", job.remote_id)
    n = len(before)
    assert f"session {job.remote_id} is still open: sending 1 of {n} parts" in result.stderr
    assert sessions == {job.remote_id: "finished"}
    counts = Counter(sig for _, sig in got)
    assert set(counts) == {signature(p) for p in before}
    assert sorted(counts.values()) == [1] * (n - 1) + [2]  # one lane's tail went again
    assert tables == {name: merged(records, name) for name in ("rooms", "hosts")}
    assert stored(job.id)[0].status == "finished"


@pytest.mark.slow
def test_resume_killed_while_reading_again_leaves_a_job_that_reads_again(tmp_path: Path) -> None:
    """A re-read cut short while packing: its few parts are not taken for the whole spool."""
    records = make_records(14_000, seed=12)
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    dead = "http://127.0.0.1:9"  # nothing listens: the push fails once packed
    spool = tmp_path / "spool"
    spool.mkdir()
    pushed = run_bulkctl(
        [
            "push",
            path,
            "--endpoint",
            dead,
            *PUSH_FLAGS,
            "--max-attempts",
            "1",
            "--spool-dir",
            spool,
        ],
        env=base_env(BULKCTL_WRITE_KEY=KEY),
    )
    assert pushed.returncode == 4, pushed.stderr
    job, _ = stored()
    assert job.status == "failed" and job.options["packed"] is True
    for kept in spool.iterdir():  # the failed push kept its parts; without them resume re-reads
        shutil.rmtree(kept)

    with JobStore() as store:

        def packing_some() -> bool:
            row = store.get_job(job.id)
            return row.status == "packing" and len(store.list_parts(job.id)) > 0

        with Running(["resume", job.id, "--max-attempts", "1"]) as again:
            wait_until(packing_some, "the re-read to record its first part")
            with pytest.raises(UsageError, match="still running"):
                plan_resume(store, job.id)  # a second resume meanwhile is refused
            again.kill()
        assert store.get_job(job.id).status == "packing"
        left = store.list_parts(job.id)
        assert left and all(row.path.is_file() and row.path.is_relative_to(spool) for row in left)
        plan = plan_resume(store, job.id)
    assert not plan.spooled
    assert plan.problem == "its input was not completely packed into parts"


# -- refusals through the CLI ----------------------------------------------------------------


def test_push_failed_by_the_api_keeps_its_parts_and_resume_sends_them(
    cli: Cli, tmp_path: Path
) -> None:
    """A piped push whose upload fails (exit 4) keeps its spool; resume sends it, no stdin."""
    from bulkctl.sandbox import Faults, start_sandbox
    from bulkctl.targets import sandbox_credentials
    from bulkctl.targets.segment_bulk import WRITE_KEY

    records = make_records(3000)
    spool = tmp_path / "spool"
    spool.mkdir()
    db = tmp_path / "w.sqlite3"
    credentials = sandbox_credentials()
    env = {"BULKCTL_WRITE_KEY": credentials.get(WRITE_KEY.key).reveal()}
    with start_sandbox(db, credentials=credentials, faults=Faults(fail_uploads=1)) as box:
        failed = cli(
            [
                *("push", "-", "--endpoint", box.url, "--max-attempts", "1"),
                *("--spool-dir", spool, "--concurrency", "1"),
            ],
            input=ndjson_bytes(records),
            env=env,
        )
        assert failed.exit_code == 4
        job = JobStore().get_job("last")
        assert f"bulkctl resume {job.id}" in failed.stderr
        assert job.status == "failed"
        assert any(spool.iterdir()), "the parts of a push the API failed stay for resume"
        resumed = cli(["resume", job.id], env=env)
    assert resumed.exit_code == 0, resumed.stderr
    assert JobStore().get_job(job.id).status == "finished"
    assert not any(spool.iterdir()), "a finished resume removes the spool"
    columns, rows = _read_db(db, "SELECT * FROM rooms")
    got = {row[columns.index("id")]: row for row in rows}
    assert set(got) == set(merged(records, "rooms"))


def test_resume_of_a_finished_job_has_nothing_to_do(cli: Cli) -> None:
    """A finished job: exit 2, "nothing to resume"."""
    with JobStore() as store:
        job = store.create_job("segment-bulk", "https://api.example", ["in.ndjson"], {})
        store.update_job(job, status="finished", remote_id="sync123")
    result = cli(["resume", job])
    assert result.exit_code == 2
    assert f"job {job} is finished: there is nothing to resume" in result.stderr


@pytest.mark.parametrize(
    ("ref", "message"),
    [("20200101-zzzz", "no job '20200101-zzzz' found"), ("last", "no job has been recorded yet")],
)
def test_resume_of_an_unknown_job_is_a_usage_error(cli: Cli, ref: str, message: str) -> None:
    """An unknown id (or `last` with no job): exit 2, naming what was looked for."""
    with JobStore() as store:
        if ref != "last":
            store.create_job("segment-bulk", "https://api.example", ["in.ndjson"], {})
    result = cli(["resume", ref])
    assert result.exit_code == 2
    assert message in result.stderr


def test_resume_of_a_job_whose_push_still_runs_is_refused_without_force(
    cli: Cli, tmp_path: Path
) -> None:
    """A live pid on an uploading job: refused (exit 2) unless --force; a dead one is not."""
    gone = str(tmp_path / "gone.ndjson")
    child = subprocess.Popen(["sleep", "30"])
    try:
        with JobStore() as store:
            job = store.create_job(
                "segment-bulk", "http://127.0.0.1:9", [gone], {"pid": child.pid, "lanes": 2}
            )
            store.update_job(job, status="uploading", remote_id="sync-live")
        refused = cli(["resume", job])
        forced = cli(["resume", job, "--force"])
    finally:
        child.kill()
        child.wait()
    after = cli(["resume", job])

    assert refused.exit_code == 2
    assert f"process {child.pid}) is still running" in refused.stderr
    assert "--force" in refused.stderr
    for passed in (forced, after):  # past the check: stops at the missing input instead
        assert passed.exit_code == 2
        assert "still running" not in passed.stderr
        assert f"its input {gone} is gone" in passed.stderr


# -- parts_to_send: the lane-tail rule -------------------------------------------------------


def _part(number: int, lane: int, seq: int, acked: bool, size: int = 100) -> Part:
    return Part(
        number=number,
        lane=lane,
        lane_seq=seq,
        path=Path(f"/spool/part-{number}.ndjson.gz"),
        records=10,
        bytes_uncompressed=size * 3,
        bytes_compressed=size,
        sha256="0" * 64,
        part_id=f"id{number}" if acked else None,
        attempts=2 if acked else 0,
    )


def _mixed() -> list[Part]:
    """Four lanes: acked prefix, an acked part after an unacked one, all acked, none acked."""
    layout = [  # number, lane, lane_seq, acked
        (1, 0, 0, True),
        (2, 1, 0, True),
        (3, 2, 0, True),
        (4, 3, 0, False),
        (5, 0, 1, True),
        (6, 1, 1, False),
        (7, 2, 1, True),
        (8, 3, 1, True),
        (9, 0, 2, False),
        (10, 1, 2, True),
    ]
    parts = [_part(*row) for row in layout]
    random.Random(3).shuffle(parts)
    return parts


@pytest.mark.parametrize("atomic", [True, False])
def test_parts_to_send_resends_each_lane_from_its_first_unacknowledged_part(atomic: bool) -> None:
    """Rejoined (or separate jobs): per lane, everything from the first part not acknowledged."""
    parts = _mixed()
    chosen = parts_to_send(parts, rejoined=atomic, atomic=atomic)
    assert [(p.lane, p.lane_seq) for p in chosen] == [(0, 2), (1, 1), (1, 2), (3, 0), (3, 1)]
    assert all(p.part_id is None and p.attempts == 0 for p in chosen)
    kept = {p.number: p.part_id for p in parts if p not in chosen}
    assert kept == {1: "id1", 5: "id5", 2: "id2", 3: "id3", 7: "id7"}


def test_parts_to_send_into_a_new_session_sends_every_part_in_lane_order() -> None:
    """A new atomic session: all parts, each lane in lane_seq order, ids forgotten."""
    parts = _mixed()
    chosen = parts_to_send(parts, rejoined=False, atomic=True)
    assert [(p.lane, p.lane_seq) for p in chosen] == sorted((p.lane, p.lane_seq) for p in parts)
    assert all(p.part_id is None and p.attempts == 0 for p in chosen)


def test_parts_to_send_into_a_session_with_every_part_acked_sends_one_lane_tail() -> None:
    """All acked but not finished: the smallest lane's last part goes again, so it can finish."""
    parts = [
        _part(1, 0, 0, True, size=500),
        _part(2, 1, 0, True, size=400),
        _part(3, 0, 1, True, size=300),
        _part(4, 1, 1, True, size=200),
        _part(5, 1, 2, True, size=50),  # smaller, but not a lane's last
        _part(6, 1, 3, True, size=250),
    ]
    chosen = parts_to_send(parts, rejoined=True, atomic=True)
    assert [p.number for p in chosen] == [6]
    assert chosen[0].part_id is None
    assert [p.part_id for p in parts if p.number != 6] == ["id1", "id2", "id3", "id4", "id5"]


def test_parts_to_send_for_separate_jobs_all_sent_sends_nothing() -> None:
    """Separate remote jobs all sent: nothing is sent again."""
    parts = [_part(1, 0, 0, True), _part(2, 0, 1, True)]
    assert parts_to_send(parts, rejoined=False, atomic=False) == []


# -- plan_resume: is the spool intact? -------------------------------------------------------


@pytest.fixture
def spooled_job(tmp_path: Path) -> Iterator[tuple[JobStore, str, list[Path]]]:
    """A killed push's job: three real gzip parts on disk, recorded with sizes and sha256."""
    spool = tmp_path / "spool" / "bulkctl-abc"
    spool.mkdir(parents=True)
    parts = []
    for n in range(1, 4):
        body = gzip.compress(ndjson_bytes(make_records(50, seed=n)), mtime=0)
        path = spool / f"part-{n:05d}.ndjson.gz"
        path.write_bytes(body)
        digest = hashlib.sha256(body).hexdigest()
        parts.append(Part(n, (n - 1) % 2, (n - 1) // 2, path, 50, len(body) * 3, len(body), digest))
    with JobStore() as store:
        job = store.create_job(
            "segment-bulk",
            "http://127.0.0.1:9",
            [str(tmp_path / "in.ndjson")],
            {"packed": True, "lanes": 2, "pid": 999_999_999},
        )
        store.add_parts(job, parts)
        store.update_job(job, status="uploading", remote_id="sync1")
        yield store, job, [p.path for p in parts]


def test_plan_resume_uses_an_intact_spool(spooled_job: tuple[JobStore, str, list[Path]]) -> None:
    """Every part there with its recorded size and sha256: spooled, all parts in order."""
    store, job, paths = spooled_job
    plan = plan_resume(store, job)
    assert plan.spooled and plan.problem is None
    assert [p.number for p in plan.parts] == [1, 2, 3]
    assert [p.path for p in plan.parts] == paths


def test_plan_resume_rejects_a_part_with_one_changed_byte(
    spooled_job: tuple[JobStore, str, list[Path]],
) -> None:
    """One byte changed in a part (same size): not spooled, the part is named."""
    store, job, paths = spooled_job
    data = bytearray(paths[1].read_bytes())
    data[len(data) // 2] ^= 0x01
    paths[1].write_bytes(bytes(data))
    plan = plan_resume(store, job)
    assert not plan.spooled
    assert plan.problem == f"part 2 ({paths[1]}) has changed since it was spooled"


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_plan_resume_rejects_a_truncated_or_missing_part(
    spooled_job: tuple[JobStore, str, list[Path]], damage: str
) -> None:
    """A part shorter than recorded, or gone: not spooled, the part is named."""
    store, job, paths = spooled_job
    if damage == "truncated":
        paths[2].write_bytes(paths[2].read_bytes()[:-1])
        want = f"part 3 ({paths[2]}) has changed since it was spooled"
    else:
        paths[2].unlink()
        want = f"part 3 ({paths[2]}) is gone"
    plan = plan_resume(store, job)
    assert (plan.spooled, plan.problem) == (False, want)


def test_plan_resume_does_not_trust_parts_of_a_job_that_was_not_fully_packed(
    spooled_job: tuple[JobStore, str, list[Path]],
) -> None:
    """Parts intact but packing never ended: not spooled (parts may be missing)."""
    store, job, _ = spooled_job
    store.update_job(job, options=store.get_job(job).options | {"packed": False})
    plan = plan_resume(store, job)
    assert (plan.spooled, plan.problem) == (False, "its input was not completely packed into parts")


def test_plan_resume_refuses_a_finished_job(
    spooled_job: tuple[JobStore, str, list[Path]],
) -> None:
    """A finished job needs no resume: a UsageError says so."""
    store, job, _ = spooled_job
    store.update_job(job, status="finished")
    with pytest.raises(UsageError, match="nothing to resume"):
        plan_resume(store, job)

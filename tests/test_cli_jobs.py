"""`bulkctl jobs`: listing with filters and JSON, and `--prune` of old spooled parts."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bulkctl.jobs.store import STORE_NAME, JobStore
from bulkctl.jobs.view import JOB_COLUMNS, job_cells, print_table
from bulkctl.pack.packer import MANIFEST_NAME
from bulkctl.pack.parts import Part

Cli = Callable[..., Any]
HEADER = "job\ttarget\tstarted\tstatus\trecords\trejected\tparts\tremote id"


@pytest.fixture
def store(isolated_env: Path) -> Iterator[JobStore]:
    """The store the CLI uses (BULKCTL_HOME points into tmp_path)."""
    with JobStore() as opened:
        yield opened


def make_job(store: JobStore, status: str, target: str = "segment-bulk", **options: Any) -> str:
    job_id = store.create_job(
        target, "https://example.test", ["in.ndjson"], {"lanes": 2, "dry_run": False} | options
    )
    store.update_job(job_id, status=status)
    return job_id


def add_parts(store: JobStore, job_id: str, directory: Path, sizes: list[int]) -> list[Path]:
    """Write real part files of the given sizes and record them as spooled."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for n, size in enumerate(sizes, start=1):
        path = directory / f"part-{n:02d}.ndjson.gz"
        path.write_bytes(b"z" * size)
        parts.append(Part(n, 0, n - 1, path, 1, size * 3, size, f"{n:064x}"))
    store.add_parts(job_id, parts)
    return [p.path for p in parts]


def backdate(home: Path, job_id: str, days: float) -> None:
    """Make a job look created and last active `days` ago (the store has no API for that)."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with sqlite3.connect(home / STORE_NAME) as conn:
        conn.execute(
            "UPDATE jobs SET created_at = ?, updated_at = ? WHERE id = ?", (stamp, stamp, job_id)
        )
    conn.close()


def listed(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert lines[0] == HEADER
    return [line.split("\t") for line in lines[1:]]


# -- listing -------------------------------------------------------------------------------------


def test_an_empty_store_says_so_and_exits_0(cli: Cli) -> None:
    """With no job recorded, stdout is empty and stderr says `no jobs yet`."""
    result = cli(["jobs"])
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.strip() == "no jobs yet"


def test_an_empty_store_in_json_is_an_empty_array(cli: Cli) -> None:
    """`jobs --json` on an empty store prints []."""
    result = cli(["jobs", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_jobs_are_listed_newest_first_with_a_header(cli: Cli, store: JobStore) -> None:
    """Without a terminal the list is tab-separated under a header, the newest job first."""
    first = make_job(store, "finished")
    store.update_job(first, records=1234, rejected=5, parts=2, remote_id="sync-1")
    second = make_job(store, "failed", target="segment-objects")
    result = cli(["jobs"])
    assert result.exit_code == 0, result.stderr
    rows = listed(result.stdout)
    assert [row[0] for row in rows] == [second, first]
    assert rows[1][1:2] + rows[1][3:] == [
        "segment-bulk",
        "finished_with_rejections",  # applied, without the 5 rejected records
        "1234",
        "5",
        "2",
        "sync-1",
    ]
    assert rows[0][1:2] + rows[0][3:] == ["segment-objects", "failed", "0", "0", "0", "-"]
    assert len(rows[0][2]) == len("2026-11-22 14:03")


def test_the_parts_column_counts_parts_of_a_running_push(
    cli: Cli, store: JobStore, tmp_path: Path
) -> None:
    """A push that has not recorded its part count yet shows the parts it spooled so far."""
    job_id = make_job(store, "uploading")
    add_parts(store, job_id, tmp_path / "bulkctl-x", [10, 10, 10])
    rows = listed(cli(["jobs"]).stdout)
    assert rows[0][6] == "3"


def test_filters_by_target_and_status(cli: Cli, store: JobStore) -> None:
    """--target and --status keep only matching jobs, alone and together."""
    a = make_job(store, "finished")
    b = make_job(store, "failed")
    c = make_job(store, "finished", target="xandr-bss")
    by_target = listed(cli(["jobs", "--target", "segment-bulk"]).stdout)
    assert [row[0] for row in by_target] == [b, a]
    by_status = listed(cli(["jobs", "--status", "finished"]).stdout)
    assert [row[0] for row in by_status] == [c, a]
    both = listed(cli(["jobs", "--status", "finished", "--target", "xandr-bss"]).stdout)
    assert [row[0] for row in both] == [c]


def test_a_filter_matching_nothing_says_which(cli: Cli, store: JobStore) -> None:
    """When filters match no job, stderr names them and the exit code is 0."""
    make_job(store, "finished")
    result = cli(["jobs", "--status", "failed", "--target", "segment-bulk"])
    assert (result.exit_code, result.stdout) == (0, "")
    assert "no jobs with target segment-bulk and status failed" in result.stderr


def test_limit_keeps_the_newest(cli: Cli, store: JobStore) -> None:
    """--limit N shows the N newest jobs; the default is 20."""
    ids = [make_job(store, "finished") for _ in range(23)]
    assert [row[0] for row in listed(cli(["jobs", "--limit", "2"]).stdout)] == ids[:-3:-1]
    assert len(listed(cli(["jobs"]).stdout)) == 20


def test_json_is_an_array_of_job_objects(cli: Cli, store: JobStore) -> None:
    """--json prints one array of jobs in push --json's words (`job`, `parts`), newest first."""
    first = make_job(store, "finished")
    second = make_job(store, "uploading")
    result = cli(["jobs", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [job["job"] for job in data] == [second, first]
    row = store.get_job(first).as_dict()
    row["job"] = row.pop("id")
    assert {k: v for k, v in data[1].items() if k in row} == row
    assert set(data[1]) - set(row) == {"elapsed_s", "bytes_compressed", "recorded_status"}


@pytest.mark.parametrize(
    "args",
    [
        ["--limit", "0"],
        ["--older-than", "3"],
        ["--prune", "--status", "failed"],
        ["--prune", "--limit", "5"],
        ["--prune", "--older-than", "-1"],
    ],
)
def test_bad_option_combinations_are_usage_errors(cli: Cli, args: list[str]) -> None:
    """A zero limit, --older-than without --prune, or listing filters with --prune exit 2."""
    assert cli(["jobs", *args]).exit_code == 2


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in a +05:30 time zone, and restore the real one afterwards."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_started_is_local_time(cli: Cli, store: JobStore, kolkata: None) -> None:
    """The started column shows the UTC creation time in the local zone, to the minute."""
    job_id = make_job(store, "finished")
    created = datetime.fromisoformat(store.get_job(job_id).created_at.replace("Z", "+00:00"))
    expected = (created + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert listed(cli(["jobs"]).stdout)[0][2] == expected


def test_a_terminal_gets_a_table_with_grouped_counts(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the jobs are a rich table (no tabs) with thousands separators."""
    monkeypatch.setenv("COLUMNS", "160")
    job_id = make_job(store, "finished")
    store.update_job(job_id, records=1_234_567, remote_id="3f1c0a4e-1111-4222-8333-444455556666")
    out = io.StringIO()
    rows = [job_cells(job, grouped=True) for job in store.list_jobs()]
    print_table(out, JOB_COLUMNS, rows, terminal=True)
    header, row = out.getvalue().splitlines()
    assert header.split() == ["job", "target", "started", "status", "records", "rejected",
                              "parts", "remote", "id"]  # fmt: skip
    assert "\t" not in row
    assert row.split()[0] == job_id
    assert row.split()[5:] == ["1,234,567", "0", "0", "3f1c0a4e-1111-4222-8333-444455556666"]


def test_a_narrow_terminal_wraps_cells_but_keeps_the_job_id_whole(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns a long remote id wraps onto more lines; the job id stays on one line."""
    monkeypatch.setenv("COLUMNS", "80")
    job_id = make_job(store, "interrupted", target="packagex-batches")
    store.update_job(job_id, remote_id="3f1c0a4e-1111-4222-8333-444455556666")
    out = io.StringIO()
    rows = [job_cells(job, grouped=True) for job in store.list_jobs()]
    print_table(out, JOB_COLUMNS, rows, terminal=True)
    header, *lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split()[0] == job_id
    start = header.index("remote id")
    assert "".join(line[start:].strip() for line in lines) == (
        "3f1c0a4e-1111-4222-8333-444455556666"
    )


# -- prune ---------------------------------------------------------------------------------------


class Setup:
    """A store with one job of every kind that prune must tell apart, each with part files."""

    def __init__(self, store: JobStore, home: Path, root: Path) -> None:
        self.root = root
        self.finished = make_job(store, "finished")
        self.finished_files = add_parts(store, self.finished, root / "bulkctl-fin", [100, 200])
        self.old_interrupted = make_job(store, "interrupted")
        self.old_files = add_parts(store, self.old_interrupted, root / "bulkctl-old", [1000])
        backdate(home, self.old_interrupted, 8)
        self.fresh_interrupted = make_job(store, "interrupted")
        self.fresh_files = add_parts(store, self.fresh_interrupted, root / "bulkctl-new", [50])
        self.failed = make_job(store, "failed")
        self.failed_files = add_parts(store, self.failed, root / "bulkctl-fail", [60, 70])
        self.running = make_job(store, "uploading")
        self.running_files = add_parts(store, self.running, root / "bulkctl-run", [80])
        self.dry_out = make_job(store, "dry_run", dry_run=True)
        out = root / "my-parts"
        self.out_files = add_parts(store, self.dry_out, out, [300, 300])
        (out / MANIFEST_NAME).write_text("{}")
        backdate(home, self.dry_out, 30)
        self.gone = make_job(store, "finished")
        for path in add_parts(store, self.gone, root / "bulkctl-gone", [5]):
            path.unlink()

    def exists(self, paths: list[Path]) -> list[bool]:
        return [p.exists() for p in paths]


@pytest.fixture
def setup(store: JobStore, isolated_env: Path, tmp_path: Path) -> Setup:
    return Setup(store, isolated_env, tmp_path / "spools")


def test_prune_frees_done_and_old_parts_only(cli: Cli, setup: Setup) -> None:
    """Finished jobs' and week-old jobs' parts go; fresh resumable and --out parts stay."""
    result = cli(["jobs", "--prune"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("pruned 3 parts of 2 jobs, freed 1.3 kB;")
    assert "kept 4 parts of unfinished jobs active in the last 7 days" in result.stdout
    assert "left 2 --dry-run --out parts" in result.stdout
    assert setup.exists(setup.finished_files) == [False, False]
    assert setup.exists(setup.old_files) == [False]
    assert setup.exists(setup.fresh_files) == [True]
    assert setup.exists(setup.failed_files) == [True, True]
    assert setup.exists(setup.running_files) == [True]
    assert setup.exists(setup.out_files) == [True, True]
    assert (setup.root / "my-parts" / MANIFEST_NAME).exists()


def test_prune_removes_emptied_spool_directories(cli: Cli, setup: Setup) -> None:
    """A spool directory left empty by prune is removed; the others stay."""
    cli(["jobs", "--prune"])
    remaining = sorted(p.name for p in setup.root.iterdir())
    assert remaining == ["bulkctl-fail", "bulkctl-gone", "bulkctl-new", "bulkctl-run", "my-parts"]


def test_prune_json_reports_exact_bytes(cli: Cli, setup: Setup) -> None:
    """--json reports files, bytes, jobs and what was kept, as one object."""
    result = cli(["jobs", "--prune", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "pruned_parts": 3,
        "bytes_freed": 1300,
        "jobs": [setup.finished, setup.old_interrupted],  # newest first
        "directories_removed": 2,
        "kept_unfinished": 4,
        "kept_out": 2,
        "errors": [],
        "older_than_days": 7,
    }


def test_older_than_zero_prunes_every_resumable_job_but_not_out(cli: Cli, setup: Setup) -> None:
    """--older-than 0 frees unfinished jobs' parts too, and still never the --out directory."""
    result = cli(["jobs", "--prune", "--older-than", "0", "--json"])
    data = json.loads(result.stdout)
    assert (data["pruned_parts"], data["bytes_freed"]) == (7, 1300 + 50 + 130 + 80)
    assert data["kept_out"] == 2
    assert setup.exists(setup.out_files) == [True, True]
    assert not any(setup.exists(setup.fresh_files + setup.failed_files + setup.running_files))


def test_a_second_prune_finds_nothing(cli: Cli, setup: Setup) -> None:
    """Files already pruned are not counted again."""
    cli(["jobs", "--prune"])
    result = cli(["jobs", "--prune"])
    assert result.stdout.startswith("pruned 0 parts of 0 jobs, freed 0 B;")


def test_pruned_parts_show_as_gone_in_status(cli: Cli, setup: Setup) -> None:
    """After prune, `status` reports the finished job's parts as no longer on disk."""
    cli(["jobs", "--prune"])
    data = json.loads(cli(["status", setup.finished, "--json"]).stdout)
    assert [p["on_disk"] for p in data["part_list"]] == [False, False]
    assert [p["status"] for p in data["part_list"]] == ["spooled", "spooled"]


def test_prune_never_touches_parts_beside_a_manifest(
    cli: Cli, store: JobStore, tmp_path: Path
) -> None:
    """Parts next to a manifest.json (a --dry-run --out directory) stay, whatever the job."""
    job_id = make_job(store, "finished")
    files = add_parts(store, job_id, tmp_path / "bulkctl-looks-like-spool", [10])
    (tmp_path / "bulkctl-looks-like-spool" / MANIFEST_NAME).write_text("{}")
    data = json.loads(cli(["jobs", "--prune", "--json"]).stdout)
    assert (data["pruned_parts"], data["kept_out"]) == (0, 1)
    assert files[0].exists()


def test_prune_of_one_target(cli: Cli, store: JobStore, tmp_path: Path) -> None:
    """--target limits prune to that target's jobs."""
    ours = make_job(store, "finished")
    theirs = make_job(store, "finished", target="xandr-bss")
    our_files = add_parts(store, ours, tmp_path / "bulkctl-a", [10])
    their_files = add_parts(store, theirs, tmp_path / "bulkctl-b", [10])
    data = json.loads(cli(["jobs", "--prune", "--target", "xandr-bss", "--json"]).stdout)
    assert data["jobs"] == [theirs]
    assert (our_files[0].exists(), their_files[0].exists()) == (True, False)


def test_an_unfinished_dry_run_is_treated_as_one_with_out(
    cli: Cli, store: JobStore, isolated_env: Path, tmp_path: Path
) -> None:
    """A dry run cut short (no manifest yet) may have written into --out: its parts stay."""
    job_id = make_job(store, "interrupted", dry_run=True)
    files = add_parts(store, job_id, tmp_path / "out", [10, 20])
    backdate(isolated_env, job_id, 30)
    data = json.loads(cli(["jobs", "--prune", "--older-than", "0", "--json"]).stdout)
    assert (data["pruned_parts"], data["kept_out"]) == (0, 2)
    assert [p.exists() for p in files] == [True, True]


def test_a_dry_run_that_recorded_no_out_dir_is_pruned(
    cli: Cli, store: JobStore, tmp_path: Path
) -> None:
    """A dry run whose options record `out_dir: null` spooled to a temp dir: its parts go."""
    job_id = make_job(store, "dry_run", dry_run=True, out_dir=None)
    files = add_parts(store, job_id, tmp_path / "bulkctl-tmp", [10, 20])
    data = json.loads(cli(["jobs", "--prune", "--json"]).stdout)
    assert (data["pruned_parts"], data["bytes_freed"]) == (2, 30)
    assert [p.exists() for p in files] == [False, False]

"""No spooled record data outlives what needs it: `resume` removes the part files of the run it
supersedes, and `jobs --prune` finds every spool directory bulkctl made, recorded or not."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import base_env, bulkctl_exe, ndjson_bytes, write_ndjson
from localstate import KEY, bulk_api
from pytest_httpserver import HTTPServer

Cli = Callable[..., Any]
ENV = {"BULKCTL_WRITE_KEY": KEY}


def spooled_files() -> list[Path]:
    """Every file in a bulkctl spool directory of this test's temp dir (conftest's TMPDIR)."""
    base = Path(os.environ["TMPDIR"])
    return sorted(p for d in base.glob("bulkctl-*") for p in d.iterdir() if p.is_file())


def part_files() -> list[Path]:
    return [p for p in spooled_files() if p.name.startswith("part-")]


def rows(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"id": f"r{n}", "collection": "rooms", "properties": {"pad": rng.randbytes(400).hex()}}
        for n in range(count)
    ]


def test_resume_removes_the_part_files_of_the_killed_stream_push(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """--stream push SIGKILLed mid-upload, then resume: it succeeds and no part file stays."""
    path = write_ndjson(tmp_path / "rooms.ndjson", rows(6000))
    arrived, release = threading.Event(), threading.Event()

    def first_upload_hangs(number: int) -> None:
        if number == 1:
            arrived.set()
            release.wait(30)

    seen = bulk_api(httpserver, on_upload=first_upload_hangs)
    args = ["push", str(path), "--endpoint", httpserver.url_for(""), "--stream"]
    args += ["--part-size", "1MB", "--concurrency", "1"]
    proc = subprocess.Popen(
        [str(bulkctl_exe()), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=base_env(**ENV),
    )
    try:
        assert arrived.wait(30), "the first upload never arrived"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert part_files(), "the killed push should have left spooled parts"
    result = cli(["resume", "last", "--json"], env=ENV)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "finished"
    assert [kind for kind, _ in seen].count("finish") == 1
    assert spooled_files() == []
    assert list(Path(os.environ["TMPDIR"]).glob("bulkctl-*")) == []


def test_prune_finds_the_spool_of_a_push_killed_while_packing(
    cli: Cli, httpserver: HTTPServer
) -> None:
    """A push killed before any part was recorded: --prune --older-than 0 still removes it."""
    seen = bulk_api(httpserver)
    proc = subprocess.Popen(
        [str(bulkctl_exe()), "push", "-", "--endpoint", httpserver.url_for("")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=base_env(**ENV),
    )
    stop = threading.Event()

    def feed() -> None:
        assert proc.stdin is not None
        block = ndjson_bytes(rows(500))
        try:
            for _ in range(100):  # at most ~40 MB, far below one 512 MB part
                if stop.is_set():
                    break
                proc.stdin.write(block)
                proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        while not part_files() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)  # waiting for the part file to appear, not for a duration
        assert part_files(), "the push never started a part"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        feeder.join(10)
    assert seen == []
    result = cli(["jobs", "--prune", "--older-than", "0", "--json"])
    assert result.exit_code == 0, result.stderr
    pruned = json.loads(result.stdout)
    assert pruned["pruned_parts"] >= 1 and pruned["directories_removed"] == 1
    assert spooled_files() == []

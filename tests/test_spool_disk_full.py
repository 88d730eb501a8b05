"""A full spool disk is a local failure (exit 6) naming the spool directory and --spool-dir:
nothing is sent, or with --stream the open session is ended with an error."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import base_env, bulkctl_exe, write_ndjson
from localstate import KEY, bulk_api, on_small_disk, private_mounts_work
from pytest_httpserver import HTTPServer

pytestmark = pytest.mark.skipif(
    not private_mounts_work(), reason="needs unshare with a private tmpfs"
)


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    """A threaded server: the finish must get through while an upload is being held."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def incompressible(tmp_path: Path, count: int) -> Path:
    """About 1 kB a record that gzip cannot shrink below ~0.55 kB."""
    rng = random.Random(11)
    records = [
        {"id": f"r{n}", "collection": "rooms", "properties": {"pad": rng.randbytes(500).hex()}}
        for n in range(count)
    ]
    return write_ndjson(tmp_path / "rooms.ndjson", records)


def push_on_small_spool(
    tmp_path: Path, server: HTTPServer, size: str, *options: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    spool = tmp_path / "spool"
    spool.mkdir()
    args = [str(bulkctl_exe()), "push", str(incompressible(tmp_path, 3000))]
    args += ["--endpoint", server.url_for(""), "--spool-dir", str(spool), "--json", *options]
    done = subprocess.run(
        on_small_disk(spool, size, args, fill=False),
        capture_output=True,
        text=True,
        env=base_env(BULKCTL_WRITE_KEY=KEY),
        timeout=120,
        check=False,
    )
    return done, spool


def summary_of(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    return document


def test_a_full_spool_disk_is_exit_6_and_sends_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Spooling fails with ENOSPC: exit 6, the spool dir and --spool-dir named, no request."""
    seen = bulk_api(httpserver)
    done, spool = push_on_small_spool(tmp_path, httpserver, "256k")
    assert done.returncode == 6, done.stderr
    summary = summary_of(done.stdout)
    assert summary["status"] == "failed"
    for text in (summary["error"], done.stderr):
        assert str(spool) in text and "No space left on device" in text and "--spool-dir" in text
    assert seen == []


def test_a_full_spool_disk_while_streaming_ends_the_session_with_an_error(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """--stream: the spool fills while part 1 is uploading; the session ends with an error."""
    finished = threading.Event()

    def hold_first_upload(number: int) -> None:
        if number == 1:
            finished.wait(60)  # part 1 stays on disk until the session was ended

    seen = bulk_api(httpserver, on_upload=hold_first_upload, on_finish=finished.set)
    try:
        done, spool = push_on_small_spool(
            tmp_path, httpserver, "1m", "--stream", "--part-size", "1MB", "--concurrency", "1"
        )
    finally:
        finished.set()
    assert done.returncode == 6, done.stderr
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "start" and kinds[-1] == "finish" and kinds.count("finish") == 1
    error = json.loads(seen[-1][1])["error"]
    assert "No space left on device" in error
    summary = summary_of(done.stdout)
    assert summary["status"] == "failed"
    assert str(spool) in summary["error"] and "ended with an error" in summary["error"]

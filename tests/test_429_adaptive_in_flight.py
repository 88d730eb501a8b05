"""429s lower the requests in flight, spend retry time rather than attempts, and pushes with
one key on one machine share its limit of 20 requests in flight (a lock-file semaphore)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from helpers import base_env, bulkctl_exe, write_ndjson

from bulkctl.sandbox import Faults, start_sandbox

KEY = "wk_Adaptive_429_Key"
FILLER = "f" * 31_000  # 9 of them make a ~280 kB line: 3 lines a 1 MB part


def many_parts(tmp_path: Path, parts: int) -> Path:
    """An input that packs into about `parts` parts of 1 MB (3 big records each)."""
    props = {f"p{k}": FILLER for k in range(9)}
    records = [
        {"id": f"r{n}", "collection": "rooms", "properties": props} for n in range(3 * parts)
    ]
    return write_ndjson(tmp_path / "rooms.ndjson", records)


def push_args(path: Path, url: str, *extra: str) -> list[str]:
    return ["push", str(path), "--endpoint", url, "--part-size", "1MB", "--json", *extra]


def test_429s_spend_retry_time_not_attempts(cli: Any, tmp_path: Path) -> None:
    """Five 429s in a row with --max-attempts 2: the upload still gets through."""
    path = many_parts(tmp_path, 1)
    faults = Faults(status_for={"upload": (429,) * 5}, retry_after=0)
    with start_sandbox(tmp_path / "w.sqlite3", write_key=KEY, faults=faults) as sandbox:
        result = cli(
            push_args(path, sandbox.url, "--max-attempts", "2"), env={"BULKCTL_WRITE_KEY": KEY}
        )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "finished"


def test_concurrency_20_against_a_5_in_flight_server_finishes(cli: Any, tmp_path: Path) -> None:
    """-c 20 against a server that takes 5 at once: the push lowers its requests in flight
    and finishes, with far fewer 429s than requests (no lockstep storm)."""
    path = many_parts(tmp_path, 40)
    faults = Faults(latency_ms=100)
    with start_sandbox(
        tmp_path / "w.sqlite3", write_key=KEY, faults=faults, max_in_flight=5
    ) as sandbox:
        result = cli(
            push_args(path, sandbox.url, "--concurrency", "20"), env={"BULKCTL_WRITE_KEY": KEY}
        )
        refused = sandbox.refused
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["parts"] >= 40
    assert refused < summary["parts"], refused


def test_pushes_with_one_key_share_its_20_requests_in_flight(tmp_path: Path) -> None:
    """Three pushes at once with one key, -c 20 each: the server never sees more than 20 at
    once and answers no 429 (each request takes a slot of the key's shared semaphore)."""
    path = many_parts(tmp_path, 40)
    env = base_env(BULKCTL_WRITE_KEY=KEY)
    with start_sandbox(
        tmp_path / "w.sqlite3", write_key=KEY, faults=Faults(latency_ms=1000)
    ) as sandbox:
        procs = [
            subprocess.Popen(
                [str(bulkctl_exe()), *push_args(path, sandbox.url, "--concurrency", "20")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(3)
        ]
        outputs = [proc.communicate(timeout=300) for proc in procs]
        peak, refused = sandbox.in_flight_peak, sandbox.refused
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out)["status"] == "finished"
    assert refused == 0
    assert peak <= 20
    assert peak > 5  # the pushes did overlap
    lock_dirs = list((tmp_path / "bulkctl-home" / "in-flight").iterdir())
    assert len(lock_dirs) == 1
    assert KEY not in lock_dirs[0].name

"""One vocabulary for every `--json`: `push`, `status` and `jobs` name a job's fields alike
(CLI.md's summary keys: `job`, `parts` as a count, ...); `status` shows options as plain
`name=value` words wrapped between words on a terminal; `--on-invalid skip` says
`finished_with_rejections` with an error; an expired session is not said to be "left open".

The CLI in process against the embedded sandbox (or pytest-httpserver for the expired session);
the terminal case runs the installed `bulkctl status` on a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import base_env, bulkctl_exe, write_ndjson
from pytest_httpserver import HTTPServer

from bulkctl.sandbox import RunningSandbox, start_sandbox

Cli = Callable[..., Any]
KEY = "wk_Vocabulary_Key"
ENV = {"BULKCTL_WRITE_KEY": KEY}
CONTRACT = (
    "job",
    "target",
    "remote_id",
    "status",
    "records",
    "valid",
    "rejected",
    "parts",
    "bytes_uncompressed",
    "bytes_sent",
    "elapsed_s",
    "error",
)
SAME = ("job", "target", "remote_id", "status", "records", "valid", "rejected", "parts")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "warehouse.sqlite3", write_key=KEY, log=None)
    yield running
    running.stop()


def rooms(tmp_path: Path, *, invalid: int = 0) -> Path:
    records: list[dict[str, Any]] = [
        {"id": f"r{n}", "collection": "rooms", "properties": {"beds": n}} for n in range(20)
    ]
    records += [{"id": "", "collection": "rooms", "properties": {}}] * invalid
    return write_ndjson(tmp_path / "rooms.ndjson", records)


def push(cli: Cli, sandbox: RunningSandbox, path: Path, *args: str) -> Any:
    return cli(["push", path, "--endpoint", sandbox.url, "--json", *args], env=ENV)


def test_push_status_and_jobs_use_the_same_keys(
    cli: Cli, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Every --json of a job has CLI.md's keys, with the values push reported."""
    pushed = push(cli, sandbox, rooms(tmp_path), "--part-size", "1MB")
    assert pushed.exit_code == 0, pushed.stderr
    summary = json.loads(pushed.stdout)
    shown = json.loads(cli(["status", summary["job"], "--json"]).stdout)
    (listed,) = json.loads(cli(["jobs", "--json"]).stdout)
    for data in (summary, shown, listed):
        assert set(CONTRACT) <= set(data), sorted(set(CONTRACT) - set(data))
        assert {k: data[k] for k in SAME} == {k: summary[k] for k in SAME}
        assert data["bytes_uncompressed"] == summary["bytes_uncompressed"]
        assert "id" not in data and "part_count" not in data
    assert isinstance(shown["parts"], int)
    assert [p["number"] for p in shown["part_list"]] == list(range(1, summary["parts"] + 1))
    assert shown["bytes_compressed"] == summary["bytes_compressed"]


def test_status_shows_options_as_words_not_a_python_dict(
    cli: Cli, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """`options` lists `read.format=auto`-style words; no braces, quotes or None."""
    pushed = push(cli, sandbox, rooms(tmp_path), "-c", "rooms")
    job = json.loads(pushed.stdout)["job"]
    result = cli(["status", job])
    assert result.exit_code == 0, result.stderr
    (line,) = [text for text in result.stdout.splitlines() if text.startswith("options")]
    assert "read.collection=rooms" in line
    assert "read.format=auto" in line
    assert not re.search(r"[{}']|None", line), line
    assert "pid_start" not in line


def test_status_wraps_long_values_between_words_on_a_terminal(
    cli: Cli, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """On a 60-column terminal no line is wider than 60 and every option stays whole."""
    pushed = push(cli, sandbox, rooms(tmp_path), "-c", "rooms")
    job = json.loads(pushed.stdout)["job"]
    plain = cli(["status", job]).stdout
    (options,) = [text for text in plain.splitlines() if text.startswith("options")]
    words = options.split()[1:]
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [str(bulkctl_exe()), "status", job],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
        env=base_env(COLUMNS="60", TERM="dumb"),
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(30) == 0
    lines = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    start = next(n for n, text in enumerate(lines) if text.startswith("options"))
    end = next(n for n, text in enumerate(lines) if text.startswith("status"))
    assert end - start > 1, "the options did not need wrapping: make them longer"
    assert all(len(text) <= 60 for text in lines[start:end])
    assert " ".join(lines[start:end]).split()[1:] == words


def test_on_invalid_skip_says_finished_with_rejections(
    cli: Cli, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Exit 1, `finished_with_rejections` and an error text, in push, status and jobs."""
    pushed = push(cli, sandbox, rooms(tmp_path, invalid=2), "--on-invalid", "skip")
    assert pushed.exit_code == 1, pushed.stderr
    summary = json.loads(pushed.stdout)
    assert summary["status"] == "finished_with_rejections"
    assert summary["error"] == "2 of 22 records were rejected and not sent"
    assert (summary["valid"], summary["rejected"]) == (20, 2)
    shown = cli(["status", summary["job"], "--json"])
    assert shown.exit_code == 0, shown.stderr  # the job is done: nothing to wait for or resume
    data = json.loads(shown.stdout)
    assert (data["status"], data["error"]) == (summary["status"], summary["error"])
    (listed,) = json.loads(cli(["jobs", "--json"]).stdout)
    assert listed["status"] == "finished_with_rejections"
    resumed = cli(["resume", summary["job"]], env=ENV)
    assert resumed.exit_code == 2
    assert "nothing to resume" in resumed.stderr


def test_a_session_that_expired_is_not_said_to_be_left_open(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Upload and error finish answered 400 `expired`: nothing of it is applied, not 'left open'."""
    expired = {"error": "session S1 expired (no call for 600 s); start a new session"}
    httpserver.expect_request("/v0/start").respond_with_json({"sync_id": "S1"}, status=201)
    httpserver.expect_request("/v0/upload/S1").respond_with_json(expired, status=400)
    httpserver.expect_request("/v0/finish/S1").respond_with_json(expired, status=400)
    result = cli(
        ["push", rooms(tmp_path), "--endpoint", httpserver.url_for("/"), "--json"], env=ENV
    )
    assert result.exit_code == 4, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "left open" not in error
    assert "session S1 is gone" in error
    assert "nothing of it is applied" in error

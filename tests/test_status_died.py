"""A push whose process is gone shows as `died`: `status` exits 5 and says what `resume` can do,
`status --wait` returns at once (or as soon as the push dies), and `jobs` lists it as died.

End to end: the installed `bulkctl push` against `bulkctl sandbox --latency`, SIGKILLed (which
nothing in bulkctl can catch or record) once it printed that a part was uploaded. The pid-reuse
cases write the job row the way a push does, naming a live process that is not the push.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest
from helpers import SandboxProcess, base_env, bulkctl_exe, write_ndjson
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bulkctl.jobs.store import JobStore

Cli = Callable[..., Any]
KEY = "wk_Died_sandbox_Key"
PROC = Path("/proc")


class Background:
    """An installed `bulkctl` command running in the background, its stderr read line by line."""

    def __init__(self, args: Sequence[str | Path]) -> None:
        self.proc = subprocess.Popen(
            [str(bulkctl_exe()), *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base_env(BULKCTL_WRITE_KEY=KEY),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Read stderr until a line contains `text`; fail if the command ends first."""
        end = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            if line is None:
                raise AssertionError(f"ended before {text!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Wait for the end: exit code, standard output, the rest of standard error."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read().decode()
        code = self.proc.wait(timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code, out, "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A sandbox slow enough (300 ms a request) that a push can be killed mid-upload."""
    with SandboxProcess(tmp_path / "warehouse.sqlite3", "--latency", "300", write_key=KEY) as box:
        yield box


def records(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"r{n}", "collection": "rooms", "properties": {"blob": os.urandom(300).hex()}}
        for n in range(count)
    ]


def start_push(url: str, tmp_path: Path) -> Background:
    """A push of several 1 MB parts, one lane, that has uploaded its first part."""
    path = write_ndjson(tmp_path / "rooms.ndjson", records(6000))
    args = ["push", path, "--endpoint", url, "--part-size", "1MB", "--concurrency", "1"]
    push = Background([*args, "--spool-dir", tmp_path])
    push.wait_for("part 1 uploaded")
    return push


def kill(push: Background) -> None:
    assert push.proc.poll() is None, "the push ended before it could be killed"
    push.proc.kill()
    push.proc.wait(10)


def last_job() -> str:
    with JobStore() as store:
        return store.get_job("last").id


@pytest.mark.slow
def test_a_killed_push_is_shown_as_died_and_status_exits_5(
    cli: Cli, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """status: `died (recorded: uploading)`, exit 5, and what resume does with the spool."""
    push = start_push(sandbox.url, tmp_path)
    kill(push)
    job = last_job()
    result = cli(["status", job])
    assert result.exit_code == 5, result.stderr
    assert "status     died (recorded: uploading)" in result.stdout
    assert f"job {job} died while uploading (its process {push.proc.pid} is gone)" in (
        result.stderr
    )
    assert f"`bulkctl resume {job}` continues it from its" in result.stderr
    assert "spooled parts, without reading the input again" in result.stderr
    shown = json.loads(cli(["status", job, "--json"]).stdout)
    assert (shown["status"], shown["recorded_status"]) == ("died", "uploading")


@pytest.mark.slow
def test_status_wait_on_a_died_push_returns_at_once(
    cli: Cli, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """--wait --timeout 60 on a push already dead: exit 5 (died), not exit 4 after 60 s."""
    push = start_push(sandbox.url, tmp_path)
    kill(push)
    job = last_job()
    started = time.monotonic()
    result = cli(["status", job, "--wait", "--timeout", "60", "--json"])
    assert result.exit_code == 5, result.stderr
    assert time.monotonic() - started < 30
    assert json.loads(result.stdout)["status"] == "died"


def test_status_wait_ends_when_the_push_it_waits_for_dies(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A `status --wait` started while the push runs ends with exit 5 once the push is killed.

    The API holds the push's first upload unanswered until the test ends, so the push is
    surely still uploading while the waiter starts, however slow the machine.
    """
    arrived, release = threading.Event(), threading.Event()

    def hold(request: Request) -> Response:
        arrived.set()
        release.wait(60)
        return Response("{}", status=503)

    httpserver.expect_request("/v0/start").respond_with_json({"sync_id": "S1"}, status=201)
    httpserver.expect_request("/v0/upload/S1").respond_with_handler(hold)
    httpserver.expect_request("/v0/finish/S1").respond_with_data("", status=200)
    path = write_ndjson(tmp_path / "rooms.ndjson", records(10))
    push = Background(["push", path, "--endpoint", httpserver.url_for("/")])
    waiter = None
    try:
        assert arrived.wait(60), "the push never uploaded"
        job = last_job()
        wait = ["--wait", "--interval", "0.05", "--timeout", "120", "--json"]
        waiter = Background(["status", job, *wait])
        waiter.wait_for(f"job {job}: uploading")
        kill(push)
        code, out, err = waiter.finish(timeout=60)
    finally:
        release.set()
        if waiter is not None:
            waiter.stop()
        push.stop()
    assert code == 5, err
    assert f"job {job} died while uploading" in err
    assert json.loads(out)["status"] == "died"


@pytest.mark.slow
def test_jobs_lists_a_died_push_as_died(cli: Cli, sandbox: SandboxProcess, tmp_path: Path) -> None:
    """`jobs` shows `died` in the status column, and `--status died` finds it."""
    push = start_push(sandbox.url, tmp_path)
    kill(push)
    job = last_job()
    listed = cli(["jobs"])
    rows = [line.split("\t") for line in listed.stdout.splitlines()[1:]]
    assert [row[3] for row in rows if row[0] == job] == ["died"]
    found = cli(["jobs", "--status", "died", "--json"])
    assert [row["job"] for row in json.loads(found.stdout)] == [job]
    assert cli(["jobs", "--status", "uploading", "--json"]).stdout.strip() == "[]"


# -- pid reuse and what cannot be told -------------------------------------------------------------


def start_token(pid: int) -> str:
    """What a push records of its process: the boot id and the start time in ticks (proc(5))."""
    stat = (PROC / str(pid) / "stat").read_text()
    ticks = stat[stat.rfind(")") + 2 :].split()[19]
    return (PROC / "sys/kernel/random/boot_id").read_text().strip() + ":" + ticks


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a push: the id a died push's id may have been given to."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def job_owned_by(options: dict[str, Any]) -> str:
    with JobStore() as store:
        job = store.create_job("segment-bulk", "https://example.invalid", ["a.ndjson"], options)
        store.update_job(job, status="uploading")
    return job


@pytest.mark.skipif(not (PROC / "self/stat").exists(), reason="needs /proc")
def test_a_pid_given_to_another_process_is_still_died(
    cli: Cli, other_process: subprocess.Popen[bytes]
) -> None:
    """The recorded pid is alive but started at another time: that is not the push."""
    pid = other_process.pid
    host = socket.gethostname()
    reused = job_owned_by({"pid": pid, "pid_start": "another-boot:1", "host": host})
    result = cli(["status", reused])
    assert result.exit_code == 5, result.stderr
    assert "status     died (recorded: uploading)" in result.stdout
    running = job_owned_by({"pid": pid, "pid_start": start_token(pid), "host": host})
    result = cli(["status", running])
    assert result.exit_code == 0, result.stderr
    assert "status     uploading" in result.stdout


def test_a_job_recorded_on_another_host_is_not_judged(cli: Cli) -> None:
    """A shared BULKCTL_HOME: a pid from another host says nothing here, so no `died`."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    elsewhere = job_owned_by({"pid": gone.pid, "pid_start": "x:1", "host": "other-host.example"})
    result = cli(["status", elsewhere])
    assert result.exit_code == 0, result.stderr
    assert "status     uploading" in result.stdout
    here = job_owned_by({"pid": gone.pid, "pid_start": "x:1", "host": socket.gethostname()})
    assert cli(["status", here]).exit_code == 5

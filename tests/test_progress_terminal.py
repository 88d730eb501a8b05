"""Progress tells the truth, in a real pseudo-terminal, against a server that holds its answers.

A part counts as uploaded only when its answer came (bytes written may sit in buffers while
the server still reads): before the answer the bars are not at 100% and the part says it
waits. Finishing a session shows a spinner. The reading bar labels its elapsed time and has
an ETA when the input's size is known. Without a terminal there are no bars, carriage
returns or colour. An interrupt before anything was sent does not claim a session was ended.
(issue 11 item 8). Every wait is on an event: the server's, or text appearing in the output.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import queue
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import ANSI_ESCAPE, assert_plain_text, base_env, bulkctl_exe, write_ndjson
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

KEY = "wk_T3stKey_progress"
SYNC_ID = "SYNC-P"
WAIT = 30.0  # seconds: the most any event may take before the test fails


@dataclass
class Hold:
    """A request the server holds: `arrived` once its body is read; answered on `release`."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    active: bool = True

    def wait_release(self) -> None:
        self.arrived.set()
        if self.active:
            self.release.wait(WAIT)


@dataclass
class HeldApi:
    """The Bulk API on pytest-httpserver; uploads and finish wait for the test to release them."""

    server: HTTPServer
    upload: Hold = field(default_factory=Hold)
    finish: Hold = field(default_factory=Hold)
    parts: int = 0

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def install(self) -> None:
        def start(request: Request) -> Response:
            return Response(json.dumps({"sync_id": SYNC_ID}), content_type="application/json")

        def upload(request: Request) -> Response:
            request.get_data()  # the whole body is in: only the answer is missing
            self.parts += 1
            number = self.parts
            self.upload.wait_release()
            return Response(json.dumps({"part_id": f"P{number}"}), 201)

        def finish(request: Request) -> Response:
            request.get_data()
            self.finish.wait_release()
            return Response("{}", content_type="application/json")

        self.server.expect_request("/v0/start", method="POST").respond_with_handler(start)
        self.server.expect_request(f"/v0/upload/{SYNC_ID}", method="POST").respond_with_handler(
            upload
        )
        self.server.expect_request(f"/v0/finish/{SYNC_ID}", method="POST").respond_with_handler(
            finish
        )

    def release_all(self) -> None:
        for hold in (self.upload, self.finish):
            hold.active = False
            hold.release.set()


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[HeldApi]:
    held = HeldApi(httpserver)
    held.install()
    try:
        yield held
    finally:
        held.release_all()  # never leave the server's thread waiting


class Terminal:
    """`bulkctl ARGS` with standard error on a pseudo-terminal (160 columns), read as it comes."""

    def __init__(self, args: list[str], *, stdin: int | None = subprocess.DEVNULL) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = base_env(BULKCTL_WRITE_KEY=KEY, COLUMNS="160", LINES="50")
        self.proc = subprocess.Popen(
            [str(bulkctl_exe()), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        self._master = master
        self._raw = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the other side closed
                data = b""
            with self._changed:
                if not data:
                    self._raw += b"\0EOF"
                    self._changed.notify_all()
                    return
                self._raw += data
                self._changed.notify_all()

    def text(self) -> str:
        """Everything written so far, escapes removed, one screen line or frame a line."""
        with self._changed:
            raw = bytes(self._raw).replace(b"\0EOF", b"")
        plain = ANSI_ESCAPE.sub("", raw.decode(errors="replace"))
        return plain.replace("\r", "\n")

    def wait_for(self, predicate_text: str, *, line_with: str | None = None) -> str:
        """Wait until `predicate_text` appears (on a line holding `line_with`, if given)."""

        def found() -> bool:
            lines = self.text().splitlines()
            return any(
                predicate_text in line and (line_with is None or line_with in line)
                for line in lines
            )

        with self._changed:
            ok = self._changed.wait_for(lambda: found() or b"\0EOF" in self._raw, WAIT)
        text = self.text()
        assert ok and found(), f"{predicate_text!r} never appeared:\n{text[-4000:]}"
        return text

    def finish(self) -> tuple[int, str, str]:
        if self.proc.stdin is not None and self.proc.stdin.closed:
            self.proc.stdin = None  # communicate() would flush it
        out, _ = self.proc.communicate(timeout=WAIT)
        self._reader.join(WAIT)
        os.close(self._master)
        return self.proc.returncode, out.decode(), self.text()


def lines_with(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


def push_args(api: HeldApi, *args: str | Path) -> list[str]:
    return ["push", "--endpoint", api.url, "--concurrency", "1", *map(str, args)]


def small_input(tmp_path: Path) -> Path:
    rows = ({"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(2000))
    return write_ndjson(tmp_path / "rooms.ndjson", rows)


def test_an_upload_is_not_done_before_its_answer(api: HeldApi, tmp_path: Path) -> None:
    """Body read, answer held: the part waits for the answer, and no bar is at 100%."""
    term = Terminal(push_args(api, small_input(tmp_path)))
    try:
        assert api.upload.arrived.wait(WAIT), "the upload never reached the server"
        text = term.wait_for("waiting for the answer", line_with="part 1")
        uploading = lines_with(text, "uploading")
        assert uploading, text
        assert all("100%" not in line for line in uploading), uploading
        assert "0 of 1 parts answered" in text
        assert "1 of 1 parts answered" not in text
    finally:
        api.release_all()
    code, _, text = term.finish()
    assert code == 0, text


def test_finishing_a_session_shows_a_spinner(api: HeldApi, tmp_path: Path) -> None:
    """Finish held: "finishing session SYNC …" shows until the answer comes."""
    api.upload.active = False
    term = Terminal(push_args(api, small_input(tmp_path)))
    try:
        assert api.finish.arrived.wait(WAIT), "the finish never reached the server"
        term.wait_for(f"finishing session {SYNC_ID} …")
    finally:
        api.release_all()
    code, _, text = term.finish()
    assert code == 0, text


def test_the_reading_bar_labels_elapsed_and_eta_for_a_file(api: HeldApi, tmp_path: Path) -> None:
    """A file of known size, reading stalled by a held upload (--stream): elapsed and ETA."""
    rows = (
        {"id": str(n), "collection": "rooms", "properties": {"t": "x" * 90}} for n in range(200_000)
    )
    path = write_ndjson(tmp_path / "big.ndjson", rows)
    term = Terminal(push_args(api, path, "--stream", "--part-size", "1MB"))
    try:
        assert api.upload.arrived.wait(WAIT)
        text = term.wait_for("ETA", line_with="reading")
        reading = lines_with(text, "reading ")
        assert any("elapsed 0:" in line for line in reading), reading
    finally:
        api.release_all()
    code, _, text = term.finish()
    assert code == 0, text


def test_the_reading_bar_has_no_eta_for_standard_input(api: HeldApi) -> None:
    """Standard input has no known size: elapsed time, but no ETA and no percentage."""
    term = Terminal(push_args(api, "-", "--stream"), stdin=subprocess.PIPE)
    assert term.proc.stdin is not None
    record = b'{"id": "1", "collection": "rooms", "properties": {"t": "%s"}}\n' % (b"x" * 90)
    try:
        term.proc.stdin.write(record * 20_000)
        term.proc.stdin.flush()
        # The reader blocks on the open pipe; the bar goes on showing the time it takes.
        text = term.wait_for("elapsed 0:00:01", line_with="reading")
        reading = lines_with(text, "reading ")
        assert any("elapsed 0:" in line for line in reading), reading
        assert not any("ETA" in line or "%" in line for line in reading), reading
    finally:
        term.proc.stdin.close()
        api.release_all()
    code, _, text = term.finish()
    assert code == 0, text


def test_without_a_terminal_there_are_no_bars(api: HeldApi, tmp_path: Path) -> None:
    """stderr a pipe, even with the answers held a while: whole lines only, no bars or colour."""
    api.release_all()
    env = base_env(BULKCTL_WRITE_KEY=KEY)
    result = subprocess.run(
        [str(bulkctl_exe()), *push_args(api, small_input(tmp_path))],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_plain_text(result.stderr)
    assert "━" not in result.stderr
    assert f"finishing session {SYNC_ID}" in result.stderr
    assert "part 1 uploaded" in result.stderr


@pytest.mark.parametrize("mode", [[], ["--stream"]])
def test_an_interrupt_while_reading_says_no_session_was_opened(
    api: HeldApi, mode: list[str]
) -> None:
    """SIGINT while reading standard input: exit 130, no session claimed, nothing sent."""
    env = base_env(BULKCTL_WRITE_KEY=KEY)
    proc = subprocess.Popen(
        [str(bulkctl_exe()), *push_args(api, "-", "--json", *mode)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stderr is not None
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()])
    reader.start()
    # More than the format sniffer reads (64 kB), less than a pipe holds; stdin stays open.
    proc.stdin.write(b'{"id": "1", "collection": "rooms", "properties": {}}\n' * 2000)
    proc.stdin.flush()
    first = lines.get(timeout=WAIT).decode()  # written as reading starts
    assert first.startswith("reading <stdin>"), first
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read() if proc.stdout is not None else b""
    proc.stdin.close()
    proc.wait(WAIT)
    reader.join(WAIT)
    stderr = first + b"".join(lines.queue).decode()
    assert proc.returncode == 130, stderr
    assert "was ended with an error" not in stderr
    assert "no session was opened" in stderr or "before a session was started" in stderr
    assert out == b""  # --json prints nothing when interrupted (CLI.md)
    assert [request.path for request, _ in api.server.log] == []

"""The sandbox writes a request's log line before its answer, so a client can read it at once.

The log stream here holds each write until the client says it has its answer (or a bound
passes): if the server answered first, the client would find the line missing every time;
once the line is written before the answer, the client can only get its answer afterwards.
"""

from __future__ import annotations

import gzip
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from bulkctl.sandbox import Faults, RunningSandbox, start_sandbox

_HOLD_BOUND_S = 1.0  # once fixed, each write waits this long for an answer that cannot come


class HeldLog(io.StringIO):
    """A log stream whose writes wait until the client has had its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = threading.Event()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        self.answered.wait(_HOLD_BOUND_S)
        with self.lock:
            return super().write(text)

    def lines(self) -> list[str]:
        with self.lock:
            return self.getvalue().splitlines()


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[RunningSandbox, HeldLog]]:
    log = HeldLog()
    sandbox = start_sandbox(tmp_path / "warehouse.sqlite3", log=log)
    try:
        yield sandbox, log
    finally:
        log.answered.set()
        sandbox.stop()


def test_the_log_line_is_there_when_the_answer_arrives(
    held: tuple[RunningSandbox, HeldLog],
) -> None:
    """A client holding a 201 already finds `POST /v0/start 201` in the log."""
    sandbox, log = held
    with httpx.Client(base_url=sandbox.url, timeout=30) as client:
        response = client.post("/v0/start")
        seen = log.lines()
        log.answered.set()
    assert response.status_code == 201, response.text
    assert [line.split()[1:4] for line in seen] == [["POST", "/v0/start", "201"]]


def test_a_refused_body_is_logged_before_its_400(held: tuple[RunningSandbox, HeldLog]) -> None:
    """The early 400 (a body framing the sandbox refuses) is logged before it is sent, too."""
    sandbox, log = held
    request = b"POST /v0/start HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    with socket.create_connection((sandbox.host, sandbox.port), timeout=30) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline()
        seen = log.lines()
        log.answered.set()
    assert status_line.startswith(b"HTTP/1.1 400 "), status_line
    assert [line.split()[1:4] for line in seen] == [["POST", "/v0/start", "400"]]


def test_a_dropped_connection_is_logged_before_it_closes(tmp_path: Path) -> None:
    """With --drop-connection-on, the client sees the close only after the `dropped` line."""
    log = HeldLog()
    faults = Faults(drop_connection_on=1)
    with start_sandbox(tmp_path / "warehouse.sqlite3", log=log, faults=faults) as sandbox:
        body = gzip.compress(orjson.dumps({"id": "1"}) + b"\n")
        with httpx.Client(base_url=sandbox.url, timeout=30) as client:
            with pytest.raises(httpx.TransportError):
                client.post("/v0/start", content=body)
            seen = log.lines()
            log.answered.set()
    assert [line.split()[1:4] for line in seen] == [["POST", "/v0/start", "dropped"]]

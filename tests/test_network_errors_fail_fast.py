"""A down endpoint or an unknown host fails fast, and every network error names the host.

Nothing leaves loopback: the refused endpoint is a closed local port, and a name under
`.invalid` (RFC 2606) never resolves.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import write_ndjson

from bulkctl.send.retry import CONNECT_RETRY_TIME, RetryPolicy

KEY = "wk_Fail_fast_Key"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rooms(tmp_path: Path) -> Path:
    records = [{"id": "r1", "collection": "rooms", "properties": {"n": 1}}]
    return write_ndjson(tmp_path / "rooms.ndjson", records)


def test_a_refused_connection_gives_up_within_about_ten_seconds(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused (real backoff): exit 4 within ~10 s, naming host:port and the bound."""
    monkeypatch.delenv("BULKCTL_NO_BACKOFF")
    port = closed_port()
    started = time.monotonic()
    result = cli(
        ["push", rooms(tmp_path), "--endpoint", f"http://127.0.0.1:{port}", "--json"],
        env={"BULKCTL_WRITE_KEY": KEY},
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 4, result.stderr
    error = json.loads(result.stdout)["error"]
    assert f"cannot connect to 127.0.0.1:{port}" in error
    assert f"no connection for {CONNECT_RETRY_TIME:g} s" in error
    assert "--max-retry-time" in error
    assert elapsed < CONNECT_RETRY_TIME + 5


def test_a_host_name_that_does_not_resolve_is_not_retried(cli: Any, tmp_path: Path) -> None:
    """An unknown host: one attempt, exit 4, the message names the host and says check it."""
    started = time.monotonic()
    result = cli(
        ["push", rooms(tmp_path), "--endpoint", "https://no-such-host.invalid", "--json"],
        env={"BULKCTL_WRITE_KEY": KEY},
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 4, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "the host name no-such-host.invalid does not resolve" in error
    assert "retrying" not in result.stderr
    assert "--endpoint" in result.stderr
    assert elapsed < 5


def test_max_retry_time_also_bounds_connection_retries() -> None:
    """`--max-retry-time` given raises (or lowers) the 10 s bound on connection retries."""
    assert RetryPolicy.from_options(8, None).connect_retry_time == CONNECT_RETRY_TIME
    assert RetryPolicy.from_options(8, None).max_retry_time == 300.0
    assert RetryPolicy.from_options(8, 120.0).connect_retry_time == 120.0
    assert RetryPolicy.from_options(8, 3.0).connect_retry_time == 3.0


def test_a_refused_connection_with_a_short_max_retry_time(cli: Any, tmp_path: Path) -> None:
    """--max-retry-time 0 on a refused endpoint: one attempt, the bound is named."""
    port = closed_port()
    endpoint = f"http://localhost:{port}"
    args = ["push", rooms(tmp_path), "--endpoint", endpoint, "--max-retry-time", "0", "--json"]
    result = cli(args, env={"BULKCTL_WRITE_KEY": KEY})
    assert result.exit_code == 4, result.stderr
    error = json.loads(result.stdout)["error"]
    assert f"localhost:{port}" in error
    assert "failed after 1 attempt" in error

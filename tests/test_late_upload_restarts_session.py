"""An upload whose answer never came may land late: the session is ended, every part goes again.

The sandbox's `--late-upload` fault holds part 1's first upload and applies it only when the
session is finished, after the parts sent since (the API applying it 1, 2, 3, 1). Pushing in
that session would end with the old version of X; bulkctl ends the session with an error and
sends every part again in a fresh one, so X ends with the newer value.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_ndjson

from bulkctl.sandbox import Faults, RunningSandbox, start_sandbox

KEY = "wk_Late_upload_Key"
FILLER = "f" * 31_000  # a value under the 32 kB limit; 9 of them make a ~280 kB line


def records() -> list[dict[str, Any]]:
    """X old in part 1, X new in part 3 (1 MB parts): fillers push X's versions apart."""
    out: list[dict[str, Any]] = [{"id": "X", "collection": "rooms", "properties": {"v": "old"}}]
    for n in range(9):
        props = {f"p{k}": FILLER for k in range(9)}
        out.append({"id": f"fill{n}", "collection": "rooms", "properties": props})
    out.append({"id": "X", "collection": "rooms", "properties": {"v": "new"}})
    return out


def value_of_x(db: Path) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT v FROM rooms WHERE id = 'X'").fetchone()[0]
    finally:
        conn.close()


def sessions(db: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT status, error FROM _sandbox_sessions ORDER BY rowid").fetchall()
    finally:
        conn.close()
    return [(row[0], row[1]) for row in rows]


@pytest.fixture
def late(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningSandbox]:
    drop, uploads = request.param
    with start_sandbox(
        tmp_path / "w.sqlite3",
        write_key=KEY,
        faults=Faults(late_uploads=frozenset(uploads), late_drop=drop),
    ) as sandbox:
        yield sandbox


def push(cli: Any, tmp_path: Path, url: str, *extra: str) -> Any:
    path = write_ndjson(tmp_path / "rooms.ndjson", records())
    args = ["push", path, "--endpoint", url, "--concurrency", "1", "--part-size", "1MB"]
    # A delayed answer is given up on after 2 s (the answer deadline, scaled down for tests).
    env = {"BULKCTL_WRITE_KEY": KEY, "BULKCTL_ANSWER_TIMEOUT": "2"}
    return cli([*args, "--json", *extra], env=env)


@pytest.mark.parametrize(
    "late", [(True, {1}), (False, {1})], indirect=True, ids=["dropped", "delayed"]
)
def test_a_late_first_attempt_never_overtakes_newer_parts(
    cli: Any, tmp_path: Path, late: RunningSandbox
) -> None:
    """No answer to part 1 (dropped, or delayed past the deadline): X still ends `new`, exit 0."""
    result = push(cli, tmp_path, late.url, "--quiet")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["parts"] == 3
    assert value_of_x(late.db_path) == "new"
    statuses = [status for status, _ in sessions(late.db_path)]
    assert statuses == ["discarded", "finished"]
    # The job store follows the new session, each part acknowledged in it.
    jobs = cli(["status", summary["job"], "--json"])
    assert jobs.exit_code == 0, jobs.stderr
    assert summary["remote_id"] in jobs.stdout


@pytest.mark.parametrize("late", [(True, {1})], indirect=True, ids=["dropped"])
def test_the_restart_is_said_on_stderr(cli: Any, tmp_path: Path, late: RunningSandbox) -> None:
    """The push says the session was ended and every part is sent again in a new one."""
    result = push(cli, tmp_path, late.url)
    assert result.exit_code == 0, result.stderr
    assert "upload of part 1 got no answer" in result.stderr
    assert "sending every part again in a new session (session 2 of at most 3)" in result.stderr


@pytest.mark.parametrize("late", [(True, {1, 2, 3})], indirect=True, ids=["dropped"])
def test_restarts_are_bounded_and_never_report_success(
    cli: Any, tmp_path: Path, late: RunningSandbox
) -> None:
    """Every session's first upload unanswered: exit 4 after 3 sessions, nothing applied."""
    result = push(cli, tmp_path, late.url)
    assert result.exit_code == 4, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert "in 3 sessions in a row" in summary["error"]
    assert [status for status, _ in sessions(late.db_path)] == ["discarded"] * 3
    conn = sqlite3.connect(late.db_path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "rooms" not in tables or value_of_x(late.db_path) is None


@pytest.mark.parametrize("late", [(True, {2})], indirect=True, ids=["dropped"])
def test_a_stream_push_cannot_resend_and_says_resume(
    cli: Any, tmp_path: Path, late: RunningSandbox
) -> None:
    """--stream removed part 1 once sent, then part 2 got no answer: exit 4, `resume` re-reads."""
    result = push(cli, tmp_path, late.url, "--stream")
    assert result.exit_code == 4, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert "upload of part 2 got no answer" in summary["error"]
    assert "--stream removes each once sent" in summary["error"]
    assert f"bulkctl resume {summary['job']}" in result.stderr
    assert [status for status, _ in sessions(late.db_path)] == ["discarded"]

"""`bulkctl sandbox` and its `query`, `show`, `sessions` subcommands, as users run them."""

from __future__ import annotations

import gzip
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bulkctl.sandbox import default_db_path, start_sandbox

Cli = Callable[..., Any]
GZIP = {"Content-Encoding": "gzip"}
ROOMS = [
    {"id": "2561341", "collection": "rooms", "properties": {"name": "Beach Room", "reviews": 47}},
    {"id": "7", "collection": "rooms", "properties": {"name": "Attic"}},
    {"id": "2561341", "collection": "rooms", "properties": {"reviews": 48}},
]


def gz_lines(*objects: dict[str, Any]) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(obj) + b"\n" for obj in objects))


def push(url: str, objects: list[dict[str, Any]], *, error: str = "", auth: Any = None) -> str:
    """One start → upload → finish over HTTP; returns the sync id."""
    with httpx.Client(base_url=url, timeout=30, auth=auth) as client:
        start = client.post("/v0/start")
        assert start.status_code == 201, start.text
        sync_id = str(start.json()["sync_id"])
        uploaded = client.post(f"/v0/upload/{sync_id}", content=gz_lines(*objects), headers=GZIP)
        assert uploaded.status_code == 201, uploaded.text
        finished = client.post(f"/v0/finish/{sync_id}", json={"error": error})
        assert finished.status_code == 202, finished.text
    return sync_id


def fill(db: Path) -> tuple[str, str]:
    """A warehouse with one applied session and one discarded one."""
    with start_sandbox(db) as sandbox:
        applied = push(sandbox.url, ROOMS)
        discarded = push(sandbox.url, ROOMS[:1], error="stopped by the test")
    return applied, discarded


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "w.sqlite3"


@pytest.fixture
def sessions(db: Path) -> tuple[str, str]:
    return fill(db)


def test_show_prints_merged_rows_as_json(cli: Cli, db: Path, sessions: Any) -> None:
    """`show COLLECTION --json` prints one array of the merged rows in arrival order."""
    result = cli(["sandbox", "show", "rooms", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"id": "2561341", "name": "Beach Room", "reviews": 48},
        {"id": "7", "name": "Attic", "reviews": None},
    ]


def test_show_plain_and_limited(cli: Cli, db: Path, sessions: Any) -> None:
    """Off a terminal the table is tab-separated with a header; --limit caps the rows."""
    result = cli(["sandbox", "show", "rooms", "--db", str(db), "--limit", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "id\tname\treviews\n2561341\tBeach Room\t48\n"


def test_show_unknown_collection_lists_the_known_ones(cli: Cli, db: Path, sessions: Any) -> None:
    """An unknown collection is a usage error naming the collections there are."""
    result = cli(["sandbox", "show", "users", "--db", str(db)])
    assert result.exit_code == 2
    assert "'users'" in result.stderr and "rooms" in result.stderr
    assert result.stdout == ""


def test_show_reads_the_default_warehouse(cli: Cli) -> None:
    """Without --db, the warehouse in the bulkctl data directory is used."""
    fill(default_db_path())
    result = cli(["sandbox", "show", "rooms", "--json"])
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in json.loads(result.stdout)] == ["2561341", "7"]


def test_query_runs_sql(cli: Cli, db: Path, sessions: Any) -> None:
    """`query SQL --json` prints the statement's rows as objects named by its columns."""
    sql = "SELECT name, reviews * 2 AS doubled FROM rooms WHERE reviews IS NOT NULL"
    result = cli(["sandbox", "query", sql, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"name": "Beach Room", "doubled": 96}]


def test_query_with_no_rows_prints_an_empty_array(cli: Cli, db: Path, sessions: Any) -> None:
    """An empty result is still one JSON array."""
    result = cli(["sandbox", "query", "SELECT * FROM rooms WHERE 0", "--db", str(db), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM rooms", "readonly"),
        ("SELEC * FROM rooms", "syntax error"),
        ("SELECT * FROM nowhere", "no such table: nowhere"),
    ],
)
def test_query_errors_are_usage_errors(
    cli: Cli, db: Path, sessions: Any, sql: str, message: str
) -> None:
    """SQLite errors exit 2 with SQLite's message, and the warehouse is never changed."""
    result = cli(["sandbox", "query", sql, "--db", str(db)])
    assert result.exit_code == 2
    assert message in result.stderr
    again = cli(["sandbox", "query", "SELECT count(*) AS n FROM rooms", "--db", str(db), "--json"])
    assert json.loads(again.stdout) == [{"n": 2}]


def test_sessions_lists_outcomes(cli: Cli, db: Path, sessions: tuple[str, str]) -> None:
    """`sessions --json` lists each session with its status, parts, objects and error."""
    applied, discarded = sessions
    result = cli(["sandbox", "sessions", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.stderr
    listed = {row["id"]: row for row in json.loads(result.stdout)}
    assert listed[applied]["status"] == "finished"
    assert (listed[applied]["parts"], listed[applied]["objects"]) == (1, 3)
    assert listed[discarded]["status"] == "discarded"
    assert listed[discarded]["error"] == "stopped by the test"
    assert listed[discarded]["objects"] is None


def test_missing_warehouse_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    """Reading a warehouse that does not exist says so and how to make one."""
    result = cli(["sandbox", "sessions", "--db", str(tmp_path / "none.sqlite3")])
    assert result.exit_code == 2
    assert "no sandbox warehouse" in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_help_documents_each_fault_with_an_example(cli: Cli) -> None:
    """Every fault flag is in --help with an example."""
    result = cli(["sandbox", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = result.stdout
    for example in (
        "--fail-uploads 2",
        "--status-for upload=503,503",
        "--retry-after 2",
        "--latency 250",
        "--drop-connection-on 3",
    ):
        assert example in text


@pytest.mark.parametrize(
    "args",
    [["--status-for", "upload"], ["--status-for", "upload=fast"], ["--status-for", "push=503"]],
)
def test_bad_fault_flags_are_usage_errors(cli: Cli, db: Path, args: list[str]) -> None:
    """Malformed --status-for values stop before serving, with exit 2."""
    result = cli(["sandbox", "--port", "0", "--db", str(db), *args])
    assert result.exit_code == 2
    assert "--status-for" in result.stderr


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.mark.slow
def test_sandbox_process_serves_until_sigint(tmp_path: Path, db: Path) -> None:
    """`bulkctl sandbox --port 0` prints its URL, serves the API and exits 0 on SIGINT."""
    exe = Path(sys.executable).parent / "bulkctl"
    env = {**os.environ, "BULKCTL_SANDBOX_WRITE_KEY": "proc-key-123"}
    proc = subprocess.Popen(
        [str(exe), "sandbox", "--port", "0", "--db", str(db)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        while not any(line.startswith("export BULKCTL_ENDPOINT=") for line in seen):
            seen.append(lines.get(timeout=30))
        url = seen[-1].strip().split("=", 1)[1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and not url.endswith(":0")
        with httpx.Client(base_url=url) as client:
            assert client.post("/v0/start").status_code == 401
        push(url, ROOMS, auth=("proc-key-123", ""))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    rest: list[str] = []
    while not lines.empty():
        rest.append(lines.get())
    log = "".join(seen + rest)
    assert "POST /v0/start 401" in log
    assert "POST /v0/finish/" in log and " 202 " in log
    assert "stopped" in log
    assert "proc-key-123" not in log
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT id, name, reviews FROM rooms ORDER BY rowid").fetchall() == [
            ("2561341", "Beach Room", 48),
            ("7", "Attic", None),
        ]
    finally:
        conn.close()

"""The contract every target keeps, run through the CLI against its sandbox emulator.

Each registered target supplies only a fixture (`CASES`): how its sandbox requires
credentials, the environment that passes or fails them, sample valid and invalid input, how
to read back what the server received, and an endpoint to break. The tests are the same for
all: a push delivers exactly the records, refused credentials exit 3, a 5xx is retried, and an
invalid record is rejected with its line.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bulkctl.errors import UsageError
from bulkctl.sandbox import Faults, RunningSandbox, XandrConfig, start_sandbox
from bulkctl.targets import build, target_names

Cli = Callable[..., Any]
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class TargetCase:
    """What one target brings to the contract tests."""

    name: str
    sandbox: dict[str, Any]  # start_sandbox keywords that make it require credentials
    good_env: dict[str, str]
    bad_env: dict[str, str]
    valid_name: str
    valid: bytes
    expected: Rows  # what the server holds after the valid push, sorted
    received: Callable[[Path], Rows]  # read it back from the warehouse file, sorted
    invalid_name: str
    invalid: bytes
    invalid_line: int
    fault_endpoint: str  # a route name of its emulator, for --status-for
    args: list[str] = field(default_factory=list)
    remote_id: bool = True  # False for a target without remote sessions or jobs


def _query(sql: str) -> Callable[[Path], Rows]:
    def read(db: Path) -> Rows:
        with sqlite3.connect(db) as conn:
            try:
                rows = conn.execute(sql).fetchall()
            except sqlite3.OperationalError:
                rows = []  # the table does not exist: nothing arrived
        conn.close()
        return sorted(rows)

    return read


SEGMENT = TargetCase(
    name="segment-bulk",
    sandbox={"write_key": "wk_contract"},
    good_env={"BULKCTL_WRITE_KEY": "wk_contract"},
    bad_env={"BULKCTL_WRITE_KEY": "wk_wrong"},
    valid_name="rooms.ndjson",
    valid=b'{"id": "1", "collection": "rooms", "properties": {"name": "Attic"}}\n'
    b'{"id": "2", "collection": "rooms", "properties": {"name": "Cellar"}}\n'
    b'{"id": "3", "collection": "rooms", "properties": {"name": "Loft"}}\n',
    expected=[("1", "Attic"), ("2", "Cellar"), ("3", "Loft")],
    received=_query("SELECT id, name FROM rooms"),
    invalid_name="rooms.ndjson",
    invalid=b'{"id": "1", "collection": "rooms", "properties": {"name": "Attic"}}\n'
    b'{"id": "2", "collection": "rooms", "properties": {"tags": ["a", "b"]}}\n',
    invalid_line=2,
    fault_endpoint="upload",
)

SEGMENT_OBJECTS = replace(
    SEGMENT, name="segment-objects", fault_endpoint="set", remote_id=False
)  # the same key, records and rules: only the API differs

XANDR = TargetCase(
    name="xandr-bss",
    sandbox={"xandr": XandrConfig(login=("contract-user", "contract-password"))},
    good_env={
        "BULKCTL_XANDR_USERNAME": "contract-user",
        "BULKCTL_XANDR_PASSWORD": "contract-password",
        "BULKCTL_XANDR_MEMBER_ID": "958",
    },
    bad_env={
        "BULKCTL_XANDR_USERNAME": "contract-user",
        "BULKCTL_XANDR_PASSWORD": "wrong-password",
        "BULKCTL_XANDR_MEMBER_ID": "958",
    },
    valid_name="segments.csv",
    valid=b"uid,seg_id,expiration\n1001,10000,1440\n1001,10001,1440\n1002,10000,0\n1003,10002,-1\n",
    expected=[
        ("1001", 10000, 1440),
        ("1001", 10001, 1440),
        ("1002", 10000, 0),
        ("1003", 10002, -1),
    ],
    received=_query("SELECT uid, seg_id, expiration FROM _xandr_segments"),
    invalid_name="segments.csv",
    invalid=b"uid,seg_id,expiration\n1001,10000,1440\n1002,ten,1440\n",
    invalid_line=3,
    fault_endpoint="segment-upload",
    args=["--min-interval", "0", "--wait", "--interval", "0.01"],
)

CASES = {case.name: case for case in (SEGMENT, SEGMENT_OBJECTS, XANDR)}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> TargetCase:
    return CASES[request.param]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.sqlite3"


@pytest.fixture
def serve(db: Path) -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes over `db` that are stopped after the test."""
    running: list[RunningSandbox] = []

    def start(case: TargetCase, faults: Faults | None = None) -> RunningSandbox:
        running.append(start_sandbox(db, faults=faults, **case.sandbox))
        return running[-1]

    yield start
    for sandbox in running:
        sandbox.stop()


def push(cli: Cli, case: TargetCase, sandbox: RunningSandbox, path: Path, *extra: str) -> Any:
    args = ["push", str(path), "--target", case.name, "--endpoint", sandbox.url, *case.args]
    return cli([*args, *extra], env=case.good_env)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_every_registered_target_has_a_contract_fixture() -> None:
    """A new target cannot be registered without joining the contract tests."""
    assert target_names() == sorted(CASES)


def test_an_unknown_target_is_a_usage_error_listing_the_names() -> None:
    """--target with a typo names every known target, sorted."""
    with pytest.raises(UsageError) as caught:
        build("xandr")
    assert f"known targets: {', '.join(sorted(CASES))}" in str(caught.value)


def test_the_cli_refuses_an_unknown_target_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    """`push --target nope` exits 2 before reading anything, naming the known targets."""
    path = write(tmp_path, "rooms.ndjson", SEGMENT.valid)
    result = cli(["push", str(path), "--target", "nope", "--dry-run"])
    assert result.exit_code == 2
    assert "known targets: segment-bulk, segment-objects, xandr-bss" in result.stderr


def test_push_delivers_exactly_the_sample_records(
    cli: Cli, case: TargetCase, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """A push of the sample succeeds, and the server holds exactly those records."""
    sandbox = serve(case)
    result = push(cli, case, sandbox, write(tmp_path, case.valid_name, case.valid), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["target"] == case.name
    assert summary["rejected"] == 0
    if case.remote_id:
        assert summary["remote_id"]
    else:  # each accepted request was applied: the summary counts them
        assert summary["remote_id"] is None
        assert summary["applied"] == len(case.expected)
    assert case.received(db) == case.expected


def test_refused_credentials_exit_3_and_never_show_the_secret(
    cli: Cli, case: TargetCase, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """Wrong credentials: exit 3, nothing is stored, the secret is in no output."""
    sandbox = serve(case)
    path = write(tmp_path, case.valid_name, case.valid)
    args = ["push", str(path), "--target", case.name, "--endpoint", sandbox.url, *case.args]
    result = cli(args, env=case.bad_env)
    assert result.exit_code == 3, result.stderr
    for secret in case.bad_env.values():
        if "wrong" in secret:
            assert secret not in result.stderr + result.stdout
    assert case.received(db) == []


def test_a_5xx_is_retried(
    cli: Cli, case: TargetCase, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """A 503 on the step that carries the data is retried, and the push still succeeds."""
    sandbox = serve(case, Faults(status_for={case.fault_endpoint: (503,)}))
    result = push(cli, case, sandbox, write(tmp_path, case.valid_name, case.valid))
    assert result.exit_code == 0, result.stderr
    assert "(HTTP 503; attempt 1 of 8 failed)" in result.stderr
    assert case.received(db) == case.expected


def test_an_invalid_record_is_rejected_with_its_line(
    cli: Cli, case: TargetCase, serve: Callable[..., RunningSandbox], db: Path, tmp_path: Path
) -> None:
    """One bad record: exit 1, its file:line on stderr and in --rejects, nothing sent."""
    sandbox = serve(case)
    path = write(tmp_path, case.invalid_name, case.invalid)
    rejects = tmp_path / "rejects.ndjson"
    result = push(cli, case, sandbox, path, "--rejects", str(rejects))
    assert result.exit_code == 1, result.stderr
    assert f"{path}:{case.invalid_line}: " in result.stderr
    (rejection,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rejection["line"] == case.invalid_line
    assert rejection["errors"]
    assert case.received(db) == []

"""An unusable job store (garbage, a directory, a damaged page, a full disk) is exit 6, found
before anything is sent, with a message naming the file and the fix, and `--json`'s object."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import base_env, bulkctl_exe, write_ndjson
from localstate import KEY, bulk_api, on_small_disk, private_mounts_work
from pytest_httpserver import HTTPServer

from bulkctl.jobs.store import STORE_NAME, JobStore
from bulkctl.pack.parts import Part

Cli = Callable[..., Any]
ENV = {"BULKCTL_WRITE_KEY": KEY}


def records_file(tmp_path: Path) -> Path:
    rows = [{"id": f"r{n}", "collection": "rooms", "properties": {"n": n}} for n in range(20)]
    return write_ndjson(tmp_path / "rooms.ndjson", rows)


def garbage(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    store = home / STORE_NAME
    store.write_bytes(b"these are not the bytes of a SQLite database\n" * 200)
    return store


def directory(home: Path) -> Path:
    store = home / STORE_NAME
    store.mkdir(parents=True)
    return store


def damaged(home: Path) -> Path:
    """A real store with many jobs, then one page of its `parts` table overwritten."""
    home.mkdir(parents=True, exist_ok=True)
    store = home / STORE_NAME
    with JobStore(store) as jobs:
        for n in range(40):
            job = jobs.create_job("segment-bulk", "http://127.0.0.1:1", ["a.ndjson"], {"n": n})
            part = Part(1, 0, 0, Path(f"/nowhere/part-{n}"), 1, 10, 10, "0" * 64)
            jobs.add_parts(job, [part])
    conn = sqlite3.connect(store)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'parts'").fetchone()[0]
    conn.close()
    with store.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * page_size)
    return store


BROKEN = {"garbage": garbage, "directory": directory, "damaged": damaged}


def assert_names_store_and_fix(text: str, store: Path) -> None:
    assert str(store) in text
    assert "move it aside" in text and "BULKCTL_HOME" in text


def one_object(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("dry_run", [False, True], ids=["push", "dry-run"])
def test_push_with_an_unusable_store_is_exit_6_and_sends_nothing(
    cli: Cli, httpserver: HTTPServer, tmp_path: Path, isolated_env: Path, kind: str, dry_run: bool
) -> None:
    """push (and --dry-run) on a broken store: exit 6, one JSON object, the file and the fix."""
    seen = bulk_api(httpserver)
    store = BROKEN[kind](isolated_env)
    args = ["push", records_file(tmp_path), "--endpoint", httpserver.url_for(""), "--json"]
    result = cli([*args, *(["--dry-run"] if dry_run else [])], env=ENV)
    assert result.exit_code == 6, result.stderr
    summary = one_object(result.stdout)
    assert summary["status"] == "failed"
    assert_names_store_and_fix(summary["error"], store)
    assert_names_store_and_fix(result.stderr, store)
    assert "internal error" not in result.stderr
    assert seen == []


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize(
    "command",
    [["status", "last"], ["jobs"], ["jobs", "--prune"], ["resume", "last"]],
    ids=["status", "jobs", "prune", "resume"],
)
def test_commands_reading_the_store_say_it_is_unusable(
    cli: Cli, isolated_env: Path, kind: str, command: list[str]
) -> None:
    """status, jobs, jobs --prune, resume: exit 6 naming the store and the fix; one object."""
    store = BROKEN[kind](isolated_env)
    result = cli([*command, "--json"], env=ENV)
    assert result.exit_code == 6, result.stderr
    assert_names_store_and_fix(result.stderr, store)
    document = one_object(result.stdout)
    assert_names_store_and_fix(document["error"], store)


def test_validate_does_not_need_the_store(cli: Cli, tmp_path: Path, isolated_env: Path) -> None:
    """validate sends nothing and records nothing: a broken store does not stop it."""
    garbage(isolated_env)
    result = cli(["validate", records_file(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert one_object(result.stdout)["valid"] == 20


@pytest.mark.skipif(not private_mounts_work(), reason="needs unshare with a private tmpfs")
@pytest.mark.parametrize("dry_run", [False, True], ids=["push", "dry-run"])
def test_a_full_data_directory_is_exit_6_before_anything_is_sent(
    httpserver: HTTPServer, tmp_path: Path, dry_run: bool
) -> None:
    """BULKCTL_HOME on a full disk: exit 6 'disk is full', naming the store; nothing sent."""
    seen = bulk_api(httpserver)
    home = tmp_path / "full-home"
    home.mkdir()
    args = [
        str(bulkctl_exe()),
        "push",
        str(records_file(tmp_path)),
        "--endpoint",
        httpserver.url_for(""),
        "--json",
        *(["--dry-run"] if dry_run else []),
    ]
    done = subprocess.run(
        on_small_disk(home, "256k", args, fill=True),
        capture_output=True,
        text=True,
        env=base_env(BULKCTL_HOME=str(home), **ENV),
        timeout=60,
        check=False,
    )
    assert done.returncode == 6, done.stderr
    summary = one_object(done.stdout)
    assert summary["status"] == "failed"
    assert str(home / STORE_NAME) in summary["error"] and "disk is full" in summary["error"]
    assert "BULKCTL_HOME" in done.stderr
    assert seen == []

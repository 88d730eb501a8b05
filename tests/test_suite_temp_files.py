"""The test suite leaves no /tmp/bulkctl-* folders behind.

A push whose API failed keeps its packed parts in a `bulkctl-*` folder of the temporary
directory, for `resume` (by design). The suite's autouse fixture points the temporary directory
into pytest's own tree, for the installed script and for in-process runs alike; these tests
make such a push both ways and check where the parts went.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SandboxProcess, base_env, run_bulkctl, write_ndjson

KEY = "wk_temp_files_key"
ROOMS = [{"id": str(n), "collection": "rooms", "properties": {"n": n}} for n in range(20)]
_KEPT = re.compile(r"the parts stay in (\S+?):? ")


def kept_folder(stderr: str) -> Path:
    """The folder the failed push's hint names."""
    found = _KEPT.search(" ".join(stderr.split()))
    assert found, stderr
    return Path(found[1])


@pytest.fixture
def failing_sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A sandbox answering 500 to every upload, so a push fails and keeps its parts."""
    with SandboxProcess(tmp_path / "warehouse.sqlite3", "--fail-uploads", "1000") as sandbox:
        yield sandbox


def test_the_installed_script_keeps_failed_parts_in_pytests_tree(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, failing_sandbox: SandboxProcess
) -> None:
    """`bulkctl push` run as a process keeps its parts under pytest's temporary tree."""
    path = write_ndjson(tmp_path / "rooms.ndjson", ROOMS)
    args = ["push", path, "--endpoint", failing_sandbox.url, "--max-attempts", "1"]
    result = run_bulkctl(args, env=base_env(BULKCTL_WRITE_KEY=KEY))
    assert result.returncode == 4, result.stderr
    folder = kept_folder(result.stderr)
    assert folder.name.startswith("bulkctl-") and any(folder.iterdir())
    assert folder.is_relative_to(tmp_path_factory.getbasetemp()), folder


def test_an_in_process_push_keeps_failed_parts_in_pytests_tree(
    cli: Callable[..., Any],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    failing_sandbox: SandboxProcess,
) -> None:
    """The same through the in-process `cli` fixture (tempfile's cached directory)."""
    path = write_ndjson(tmp_path / "rooms.ndjson", ROOMS)
    args = ["push", path, "--endpoint", failing_sandbox.url, "--max-attempts", "1"]
    result = cli(args, env={"BULKCTL_WRITE_KEY": KEY})
    assert result.exit_code == 4, result.stderr
    folder = kept_folder(result.stderr)
    assert folder.name.startswith("bulkctl-") and any(folder.iterdir())
    assert folder.is_relative_to(tmp_path_factory.getbasetemp()), folder

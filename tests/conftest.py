"""Shared fixtures: an isolated environment for every test and a way to run the CLI in-process."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulkctl.cli import run


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Clear BULKCTL_* variables, keep data and config under tmp_path, no colour, no backoff.

    A push the API failed keeps its parts for `resume` in the temporary directory: TMPDIR (and
    this process's tempfile) point into pytest's own temporary tree, so no test leaves
    /tmp/bulkctl-* folders behind (tmp_path itself stays as the test made it).
    """
    for name in list(os.environ):
        if name.startswith("BULKCTL_"):
            monkeypatch.delenv(name)
    temp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    home = tmp_path / "bulkctl-home"
    monkeypatch.setenv("BULKCTL_HOME", str(home))
    # An empty config (a missing BULKCTL_CONFIG file is warned about), beside tmp_path so that
    # tests which list tmp_path find only their own files.
    config = tmp_path.parent / f"{tmp_path.name}-config.toml"
    config.touch()
    monkeypatch.setenv("BULKCTL_CONFIG", str(config))
    monkeypatch.setenv("BULKCTL_NO_BACKOFF", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    yield home


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> object:
    """Run `bulkctl ARGS` in-process, as a user would, and capture its exit code and streams."""

    def invoke(
        args: Sequence[str], *, input: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> CliResult:
        runner = CliRunner()
        with runner.isolation(input=input, env=env) as (out, err, _):
            code = run([str(a) for a in args])
            sys.stdout.flush()
            sys.stderr.flush()
            return CliResult(code, out.getvalue().decode(), err.getvalue().decode())

    return invoke

"""Shell completion for pip users (issue 11 item 11): `bulkctl completion SHELL`, real values
for --target, --format, --on-invalid and job ids, and a `completions` module that parses its
arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import base_env, bulkctl_exe, write_ndjson

from bulkctl.cli.completions import SHELLS, script
from bulkctl.targets import target_names

REPO = Path(__file__).resolve().parents[1]


def complete_bash(words: str, cwd: Path) -> list[str]:
    """What the bash script's callback offers for the last word of `words` (as bash calls it)."""
    parts = words.split(" ")
    done = subprocess.run(
        [str(bulkctl_exe())],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=base_env(
            _BULKCTL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1)
        ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.split()


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_prints_the_script(cli: Any, shell: str) -> None:
    """`bulkctl completion SHELL` prints the same script as the committed completions/ file."""
    result = cli(["completion", shell])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == script(shell).rstrip("\n") + "\n"
    committed = (REPO / "completions" / SHELLS[shell]).read_text()
    assert result.stdout.rstrip("\n") == committed.rstrip("\n")


def test_completion_of_an_unknown_shell_is_a_usage_error(cli: Any) -> None:
    result = cli(["completion", "tcsh"])
    assert result.exit_code == 2
    assert "choose one of bash, zsh, fish" in result.stderr
    assert result.stdout == ""


def test_option_values_are_completed_instead_of_file_names(tmp_path: Path) -> None:
    """--target, --format, --on-invalid get their values, never the directory's files."""
    (tmp_path / "segment-notes.txt").write_text("a file a shell would offer")
    assert complete_bash("bulkctl push --target ", tmp_path) == target_names()
    assert complete_bash("bulkctl validate --target x", tmp_path) == ["xandr-bss"]
    assert complete_bash("bulkctl push -f ", tmp_path) == ["auto", "ndjson", "json", "csv", "tsv"]
    assert complete_bash("bulkctl push --format n", tmp_path) == ["ndjson"]
    assert complete_bash("bulkctl push --on-invalid ", tmp_path) == ["fail", "skip"]
    assert complete_bash("bulkctl push --region ", tmp_path) == ["us", "eu"]
    assert complete_bash("bulkctl jobs --target s", tmp_path) == [
        "segment-bulk",
        "segment-objects",
    ]
    assert complete_bash("bulkctl completion ", tmp_path) == ["bash", "zsh", "fish"]


def test_job_ids_are_completed_from_the_store(cli: Any, tmp_path: Path) -> None:
    """`status`/`resume` complete `last` and the recorded jobs; without a store, just `last`."""
    assert complete_bash("bulkctl status ", tmp_path) == ["last"]
    assert not (Path(base_env()["BULKCTL_HOME"]) / "jobs.sqlite3").exists()  # not created
    records = write_ndjson(
        tmp_path / "r.ndjson", [{"id": "1", "collection": "c", "properties": {}}]
    )
    ids = []
    for _ in range(2):
        result = cli(["push", records, "--dry-run", "--json"])
        assert result.exit_code == 0, result.stderr
        ids.append(json.loads(result.stdout)["job"])
    offered = complete_bash("bulkctl status ", tmp_path)
    assert offered[0] == "last" and set(ids) <= set(offered[1:])
    assert complete_bash(f"bulkctl resume {ids[0][:-1]}", tmp_path) == [ids[0]]


def test_completions_module_help_creates_nothing(tmp_path: Path) -> None:
    """`python -m bulkctl.cli.completions --help` prints usage; makes no directory named --help."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "bulkctl.cli.completions", "--help"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=base_env(),
        check=False,
    )
    assert done.returncode == 0
    assert "usage: python -m bulkctl.cli.completions [-h] [--check] DIR" in done.stdout
    assert list(cwd.iterdir()) == []


def test_completions_module_writes_and_checks(tmp_path: Path) -> None:
    """It writes the three scripts into DIR; --check fails on a stale one, naming it."""

    def completions(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bulkctl.cli.completions", *args],
            capture_output=True,
            text=True,
            env=base_env(),
            check=False,
        )

    out = tmp_path / "out"
    assert completions(str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(SHELLS.values())
    assert completions("--check", str(out)).returncode == 0
    (out / "bulkctl.bash").write_text("stale\n")
    stale = completions("--check", str(out))
    assert stale.returncode == 1
    assert str(out / "bulkctl.bash") in stale.stderr
    assert completions("--check").returncode == 2  # no DIR: a usage error, nothing written


@pytest.mark.parametrize(
    ("shell", "extra"),
    [("zsh", {}), ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"})],
)
def test_zsh_and_fish_get_the_same_values(
    tmp_path: Path, shell: str, extra: dict[str, str]
) -> None:
    """The zsh and fish callbacks offer the targets too (with a description), not files."""
    done = subprocess.run(
        [str(bulkctl_exe())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=base_env(
            _BULKCTL_COMPLETE=f"complete_{shell}",
            _TYPER_COMPLETE_ARGS="bulkctl push --target ",
            **extra,
        ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in target_names():
        assert name in done.stdout
    assert "_files" not in done.stdout

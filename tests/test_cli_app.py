"""The application shell: version, usage errors, the one error-to-exit-code mapping, completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import base_env, run_bulkctl

from bulkctl import __version__
from bulkctl.cli.completions import SHELLS, script

REPO = Path(__file__).resolve().parents[1]


def test_version_prints_the_package_version(cli: Any) -> None:
    """`bulkctl --version` prints `bulkctl X.Y.Z` first on stdout and exits 0."""
    result = cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"bulkctl {__version__}"


def test_python_dash_m_runs_the_same_entry_point() -> None:
    """`python -m bulkctl --version` works like the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "bulkctl", "--version"],
        capture_output=True,
        text=True,
        env=base_env(),
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == f"bulkctl {__version__}"


def test_unknown_option_is_a_usage_error(cli: Any) -> None:
    """A bad option exits 2 with click's message on stderr and nothing on stdout."""
    result = cli(["validate", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert result.stdout == ""


def test_expected_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    """A missing input exits 1 with one `bulkctl: error:` line naming the file, no traceback."""
    missing = tmp_path / "nope.ndjson"
    done = run_bulkctl(["validate", missing])
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bulkctl: error:")
    assert "nope.ndjson" in lines[0]
    assert "Traceback" not in done.stderr


def test_traceback_flag_and_env_show_the_traceback(tmp_path: Path) -> None:
    """`--traceback` and BULKCTL_TRACEBACK=1 add the Python traceback to the same message."""
    missing = tmp_path / "nope.ndjson"
    by_flag = run_bulkctl(["--traceback", "validate", missing])
    by_env = run_bulkctl(["validate", missing], env=base_env(BULKCTL_TRACEBACK="1"))
    for done in (by_flag, by_env):
        assert done.returncode == 1
        assert "Traceback (most recent call last)" in done.stderr
        assert done.stderr.rstrip().splitlines()[-1].startswith("bulkctl: error:")


def test_credentials_error_hides_the_key_even_with_traceback(tmp_path: Path) -> None:
    """A refused connection with --traceback never prints the write key."""
    records = tmp_path / "r.ndjson"
    records.write_text('{"id": "1", "collection": "rooms", "properties": {"a": 1}}\n')
    key = "sekrit-key-8c1f"
    done = run_bulkctl(
        [
            "--traceback",
            "push",
            records,
            "--endpoint",
            "http://127.0.0.1:9",
            "--max-attempts",
            "1",
        ],
        env=base_env(BULKCTL_WRITE_KEY=key),
    )
    assert done.returncode == 4
    assert key not in done.stderr and key not in done.stdout


def test_completion_scripts_are_current() -> None:
    """The checked-in completion scripts equal what the app generates now."""
    for shell, name in SHELLS.items():
        assert (REPO / "completions" / name).read_text() == script(shell)


def test_completion_callback_completes_commands() -> None:
    """The bash script's callback (`_BULKCTL_COMPLETE=complete_bash`) offers the commands."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bulkctl")],
        capture_output=True,
        text=True,
        env=base_env(_BULKCTL_COMPLETE="complete_bash", COMP_WORDS="bulkctl re", COMP_CWORD="1"),
        check=False,
    )
    assert done.returncode == 0
    assert "resume" in done.stdout.split()


def test_help_keeps_bracketed_text_that_rich_would_swallow(cli: Any) -> None:
    """Square-bracket notes in option help survive rich markup (escaped), e.g. `[env …]`."""
    result = cli(["push", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for text in ("[env: BULKCTL_ENDPOINT]", "[profiles.NAME]", "[default: the temp dir]"):
        assert text in result.stdout

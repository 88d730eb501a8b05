"""`--version` says what a bug report needs; the README's links stay inside the repository."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from helpers import base_env

from bulkctl import __version__

REPO = Path(__file__).resolve().parents[1]

# `bulkctl --version` in a fresh interpreter where `bulkctl._native` cannot be imported.
_WITHOUT_NATIVE = """
import sys
sys.modules["bulkctl._native"] = None
from bulkctl.cli import run
sys.exit(run(["--version"]))
"""


def test_version_names_python_libraries_and_the_fast_path(cli: Any) -> None:
    """`--version`: bulkctl first, then Python, httpx, orjson, isal and the C fast path."""
    result = cli(["--version"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"bulkctl {__version__}"
    assert f"Python {platform.python_version()}" in lines[1]
    for library in ("httpx", "orjson", "isal"):
        assert f"{library} {version(library)}" in result.stdout
    assert lines[-1] == "C fast path: built"


def test_version_says_when_the_fast_path_is_off_or_missing(cli: Any) -> None:
    """BULKCTL_NO_NATIVE=1 and a missing extension are both reported, not hidden."""
    off = cli(["--version"], env={"BULKCTL_NO_NATIVE": "1"})
    assert off.stdout.splitlines()[-1] == "C fast path: built, turned off by BULKCTL_NO_NATIVE"
    missing = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NATIVE],
        capture_output=True,
        text=True,
        env=base_env(),
        check=False,
    )
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.splitlines()[-1].startswith("C fast path: not built")


def test_readme_links_point_inside_the_repository() -> None:
    """Every relative link of the README names a file of this repository (docs/CLI.md …)."""
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    relative = [link for link in links if "://" not in link]
    assert "docs/CLI.md" in relative
    for link in relative:
        target = (REPO / link).resolve()
        assert target.is_relative_to(REPO), link
        assert target.exists(), link


def test_contract_marks_what_is_not_built_as_planned() -> None:
    """docs/CLI.md keeps the unbuilt targets and `session`, each marked planned, and the
    built ones unmarked."""
    from bulkctl.targets import target_names

    contract = (REPO / "docs" / "CLI.md").read_text()
    for name in ("brevo-objects", "packagex-batches"):
        assert name not in target_names()
        assert f"`{name}` (planned)" in contract
    assert "bulkctl session start|keep-alive|finish   (planned)" in contract
    for name in target_names():
        assert f"`{name}` (planned)" not in contract

"""What `bulkctl --version` reports: the versions a bug report needs, read without imports.

Versions come from the installed distributions' metadata, so httpx, orjson and isal are not
imported (`--version` stays as fast as `--help`); the C fast path is looked for, not loaded.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec

LIBRARIES = ("httpx", "orjson", "isal", "typer", "rich")


def library_version(name: str) -> str:
    """The installed version of distribution `name`, or "not installed"."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def fast_path() -> str:
    """Whether the C fast path was built and is in use."""
    if find_spec("bulkctl._native") is None:
        return "not built (no C compiler at install time; the same checks run in Python)"
    if os.environ.get("BULKCTL_NO_NATIVE"):
        return "built, turned off by BULKCTL_NO_NATIVE"
    return "built"


def describe_versions(bulkctl_version: str) -> str:
    """The `--version` text: `bulkctl X.Y.Z` first (scripts read that line), then the rest."""
    libraries = ", ".join(f"{name} {library_version(name)}" for name in LIBRARIES)
    return "\n".join(
        [
            f"bulkctl {bulkctl_version}",
            f"Python {platform.python_version()} ({platform.python_implementation()})",
            libraries,
            f"C fast path: {fast_path()}",
        ]
    )

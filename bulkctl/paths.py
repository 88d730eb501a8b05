"""Where bulkctl keeps its files: `BULKCTL_HOME` when set, else the platform's data dir."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The directory for the job store and the sandbox warehouse (created on first use)."""
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir_path() -> Path:
    """Where `data_dir` is, without creating it (`bulkctl config` only looks)."""
    home = os.environ.get("BULKCTL_HOME")
    if home:
        return Path(home)
    from platformdirs import user_data_path

    return user_data_path("bulkctl", appauthor=False)


def config_file() -> Path:
    """The TOML config file: `BULKCTL_CONFIG` when set, else the platform's config dir."""
    explicit = os.environ.get("BULKCTL_CONFIG")
    if explicit:
        return Path(explicit)
    from platformdirs import user_config_path

    return user_config_path("bulkctl", appauthor=False) / "config.toml"

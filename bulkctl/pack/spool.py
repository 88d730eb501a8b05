"""The spool directories bulkctl made, so `resume` and `jobs --prune` can find every one.

`packing.SpoolDir` writes a small marker (`.bulkctl-spool`: the job store, the job id and the
process id) into each directory it creates, so a directory whose parts the job store never
recorded (a push killed while packing, or one whose job was reset by `resume`) is still known
to be bulkctl's and whose. A `bulkctl-*` directory without a marker is taken as bulkctl's only
when it holds nothing but part files and is over an hour old (one made before markers
existed, by a push long gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bulkctl.processes import pid_alive

SPOOL_PREFIX = "bulkctl-"
MARKER_NAME = ".bulkctl-spool"
# A directory without a marker may be an older bulkctl's, still pushing.
UNMARKED_GRACE_S = 3600.0
_PART_FILE = re.compile(r"^part-\d+-\d+(\.[A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class SpoolInfo:
    """One spool directory found on disk, and what its marker says."""

    path: Path
    job: str | None  # None: no marker
    pid: int | None
    mtime: float
    store: str | None = None  # the job store the job is in

    def of_store(self, store: Path) -> bool:
        """Made for a job of `store` (or by a bulkctl that did not say which)."""
        return self.store is None or self.store == str(store)

    def in_use(self) -> bool:
        """Its push (another process) is still running."""
        return self.pid is not None and self.pid != os.getpid() and pid_alive(self.pid)


def write_marker(directory: Path, job: str | None, store: Path | None) -> None:
    """Mark a fresh spool directory as this process's, for `job` of `store`."""
    document = {"store": str(store) if store else None, "job": job, "pid": os.getpid()}
    (directory / MARKER_NAME).write_text(json.dumps(document) + "\n", encoding="utf-8")


def default_base() -> Path:
    """Where spool directories go without `--spool-dir`."""
    return Path(tempfile.gettempdir())


def spool_info(directory: Path) -> SpoolInfo | None:
    """What a directory is, or None when it is not one of bulkctl's spool directories."""
    if not directory.name.startswith(SPOOL_PREFIX):
        return None
    try:
        if not directory.is_dir() or directory.is_symlink():
            return None
        mtime = directory.stat().st_mtime
        names = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return None
    if MARKER_NAME in names:
        try:
            document = json.loads((directory / MARKER_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            document = {}
        job, pid, store = document.get("job"), document.get("pid"), document.get("store")
        return SpoolInfo(
            directory,
            job if isinstance(job, str) else None,
            pid if isinstance(pid, int) else None,
            mtime,
            store if isinstance(store, str) else None,
        )
    if all(_PART_FILE.match(name) for name in names) and mtime < time.time() - UNMARKED_GRACE_S:
        return SpoolInfo(directory, None, None, mtime)
    return None


def find_spool_dirs(bases: Iterable[Path]) -> list[SpoolInfo]:
    """Every spool directory of bulkctl directly under one of `bases`, by path."""
    found: dict[Path, SpoolInfo] = {}
    for base in set(bases):
        try:
            entries = [Path(entry.path) for entry in os.scandir(base)]
        except OSError:
            continue
        for entry in entries:
            info = spool_info(entry)
            if info is not None:
                found[entry] = info
    return [found[path] for path in sorted(found)]


def remove_spool_dir(directory: Path, errors: list[str]) -> tuple[int, int]:
    """Delete the part files and marker of a spool directory, then the directory when that
    leaves it empty; return (part files removed, bytes freed). Other files stay."""
    files = freed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0, 0
    for entry in entries:
        if entry.name != MARKER_NAME and not _PART_FILE.match(entry.name):
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"cannot remove {entry.path}: {exc.strerror or exc}")
            continue
        if entry.name != MARKER_NAME:
            files += 1
            freed += size
    with contextlib.suppress(OSError):
        directory.rmdir()
    return files, freed


def remove_empty_spool_dirs(directories: Iterable[Path]) -> int:
    """Remove spool directories that hold nothing but their marker; return how many went."""
    removed = 0
    for directory in set(directories):
        if not directory.name.startswith(SPOOL_PREFIX):
            continue
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        if names not in ([], [MARKER_NAME]):
            continue  # something else is there (another job's parts, other files): leave it
        with contextlib.suppress(OSError):
            if names:
                (directory / MARKER_NAME).unlink()
            directory.rmdir()
            removed += 1
    return removed


def remove_job_spools(job: str, store: Path, bases: Iterable[Path]) -> int:
    """Delete the spool directories marked for `job` whose push is not running: a resumed push
    reads its input again, and these hold what that supersedes. Return part files removed."""
    errors: list[str] = []
    removed = 0
    for info in find_spool_dirs(bases):
        if info.job == job and info.store == str(store) and not info.in_use():
            removed += remove_spool_dir(info.path, errors)[0]
    return removed

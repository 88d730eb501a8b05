"""Values the shells complete for options and arguments, instead of file names.

Each function is a Typer `autocompletion` callback: it runs only when a completion script
calls back (`_BULKCTL_COMPLETE` set), so its imports cost nothing on an ordinary start.
"""

from __future__ import annotations

from collections.abc import Iterable

from bulkctl.read.options import FORMATS

# The choices `--on-invalid` takes: options.py checks them, the shells offer them (and those
# of `--format`, whose one definition is the reader's).
ON_INVALID = {
    "fail": "any invalid record fails the run",
    "skip": "leave invalid records out, go on",
}


def _matching(values: Iterable[tuple[str, str]], incomplete: str) -> list[tuple[str, str]]:
    return [(value, help) for value, help in values if value.startswith(incomplete)]


def targets(incomplete: str) -> list[tuple[str, str]]:
    """The registered targets."""
    from bulkctl.targets import target_names

    return _matching(((name, "target") for name in target_names()), incomplete)


def formats(incomplete: str) -> list[tuple[str, str]]:
    """The input formats `--format` takes."""
    return _matching(((name, "input format") for name in FORMATS), incomplete)


def on_invalid(incomplete: str) -> list[tuple[str, str]]:
    """`fail` and `skip`."""
    return _matching(ON_INVALID.items(), incomplete)


def regions(incomplete: str) -> list[tuple[str, str]]:
    """Every region a target declares, with the public host of the first that has it."""
    from bulkctl.targets import target_class, target_names

    hosts: dict[str, str] = {}
    for name in target_names():
        for region, host in target_class(name).hosts.items():
            if region:
                hosts.setdefault(region, host)
    return _matching(hosts.items(), incomplete)


def shells(incomplete: str) -> list[tuple[str, str]]:
    """The shells `bulkctl completion` writes a script for."""
    from bulkctl.cli.completions import SHELLS

    return _matching(((shell, "shell") for shell in SHELLS), incomplete)


def job_ids(incomplete: str) -> list[tuple[str, str]]:
    """`last` and the recent jobs of the local store (never creating the store)."""
    import sqlite3

    from bulkctl.errors import BulkctlError
    from bulkctl.jobs.store import STORE_NAME, JobStore
    from bulkctl.paths import data_dir_path

    found = [("last", "the latest job")]
    path = data_dir_path() / STORE_NAME
    if path.is_file():
        try:
            with JobStore(path) as store:
                rows = store.list_jobs(limit=50)
        except (BulkctlError, sqlite3.Error, OSError):  # a completion never prints an error
            rows = []
        found += [(row.id, f"{row.target} {row.status}") for row in rows]
    return _matching(found, incomplete)

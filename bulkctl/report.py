"""Results for people (stderr: tables or plain lines) and for machines (--json on stdout)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson

from bulkctl.console import Console
from bulkctl.validation import Tally


def print_json(summary: dict[str, Any]) -> None:
    """The one JSON object `--json` promises on standard output."""
    sys.stdout.write(orjson.dumps(summary, default=str).decode() + "\n")
    sys.stdout.flush()


def validation_summary(tally: Tally, *, error: str | None = None) -> dict[str, Any]:
    """The keys of the push summary that make sense offline (CLI.md), and a few more."""
    return {
        "status": "invalid" if tally.rejected or error else "valid",
        "records": tally.records,
        "valid": tally.valid,
        "rejected": tally.rejected,
        "collections": dict(sorted(tally.per_collection.items())),
        "errors": tally.first_errors,
        "hints": tally.hints.as_dict(),
        "error": error,
    }


def render_validation(console: Console, tally: Tally, sources: Sequence[str]) -> None:
    """Counts per collection and the hints, on standard error."""
    if console.quiet:
        return
    if tally.records == 0:
        console.info(f"no records in {', '.join(sources)}")
    lines = [
        f"{tally.records:,} records: {tally.valid:,} valid, {tally.rejected:,} rejected",
    ]
    for collection, count in sorted(tally.per_collection.items()):
        lines.append(f"  {collection}: {count:,} valid")
    for hint in tally.hints.lines():
        lines.append(f"hint: {hint}")
    for line in lines:
        console.info(line)

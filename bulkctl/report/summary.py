"""Results for people (stderr: tables or plain lines) and for machines (--json on stdout)."""

from __future__ import annotations

import sys
from typing import Any

from bulkctl.check.validate import Tally
from bulkctl.console import Console
from bulkctl.exactjson import dumps
from bulkctl.sizes import counted, format_bytes


def print_json(summary: dict[str, Any]) -> None:
    """The one JSON object `--json` promises on standard output."""
    sys.stdout.write(dumps(summary, default=str).decode() + "\n")
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


def render_validation(console: Console, tally: Tally) -> None:
    """Counts per collection and the hints, on standard error."""
    if console.quiet:
        return
    lines = [
        f"{tally.records:,} records: {tally.valid:,} valid, {tally.rejected:,} rejected",
    ]
    for collection, count in sorted(tally.per_collection.items()):
        lines.append(f"  {collection}: {count:,} valid")
    for hint in tally.hints.lines():
        lines.append(f"hint: {hint}")
    for line in lines:
        console.info(line)


def render_push(console: Console, summary: dict[str, Any]) -> None:
    """The final push summary on standard error: a table on a terminal, lines otherwise."""
    if console.quiet:
        return
    raw, gz = summary["bytes_uncompressed"], summary["bytes_compressed"]
    elapsed = summary["elapsed_s"] or 0.0
    ratio = f" ({raw / gz:.1f}x)" if gz else ""
    rate = f"{raw / 1e6 / elapsed:.1f} MB/s" if elapsed > 0 else "-"
    rows = [
        ("records", f"{summary['records']:,}"),
        ("valid", f"{summary['valid']:,}"),
        ("rejected", f"{summary['rejected']:,}"),
        ("parts", f"{summary['parts']:,}"),
        ("bytes", f"{format_bytes(raw)} → {format_bytes(gz)} gzip{ratio}"),
        ("elapsed", f"{elapsed:.1f} s, {rate}"),
        ("status", str(summary["status"])),
        ("remote job" if summary.get("remote") else "session", str(summary["remote_id"] or "-")),
        ("job", str(summary["job"] or "-")),
    ]
    if summary.get("applied") is not None:  # request-based: no session, no gzip
        rows[3:5] = [
            (
                "applied",
                f"{counted(summary['applied'], 'record')} in "
                f"{counted(summary['requests'], 'request')}",
            ),
            ("bytes", f"{format_bytes(summary['bytes_sent'])} sent"),
        ]
        rows = [row for row in rows if row[0] != "session"]
    remote = summary.get("remote")
    if remote and remote.get("final"):
        # What the API counted once its jobs were final (Xandr's num_valid, ...): the first
        # count always, the others when they are not 0 (--json has them all).
        counts = list(remote["counts"].items())
        rows.extend(
            (name, f"{value:,}") for n, (name, value) in enumerate(counts) if value or n == 0
        )
    if summary.get("out_dir"):
        rows.append(("parts in", str(summary["out_dir"])))
    if console.is_terminal:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:
            table.add_row(key, value)
        console.rich().print(table)
    else:
        console.info("; ".join(f"{key} {value}" for key, value in rows))

"""What a push does differently for a request-based target (no session: each request applied
on its own): everything validated first, repeated ids told to the remote, the rest resumable."""

from __future__ import annotations

from pathlib import Path

from bulkctl.console import Console
from bulkctl.errors import UsageError
from bulkctl.pack.parts import Part
from bulkctl.run.push_summary import PushSummary
from bulkctl.send.remote import BatchRemote, Remote


def refuse_stream(target: str, *, stream: bool) -> None:
    """A later invalid record must not find part of the input applied: no `--stream`."""
    if stream:
        raise UsageError(
            f"--stream does not apply to --target {target}: each of its requests is applied "
            "on its own, so every record is validated before the first one",
            hint="drop --stream: the input is spooled by lane with bounded memory",
        )


def note_repeats(
    remote: Remote | None, parts: list[Part], console: Console, warnings: list[str]
) -> None:
    """Before the first request: tell a request-based remote whether ids repeat."""
    from bulkctl.pack.batches import ids_repeat

    if not isinstance(remote, BatchRemote):
        return
    note = remote.note_repeats(ids_repeat(parts))
    if note.warning:
        console.warn(note.warning)
        warnings.append(note.warning)
    if note.detail:
        console.detail(note.detail)


def rest_hint(summary: PushSummary, valid: int, directory: Path) -> str:
    """After a request-based push stopped: how to send what was not applied."""
    rest = max(valid - (summary.applied or 0), 0)
    return (
        f"`bulkctl resume {summary.job}` sends the other {rest:,} of the {valid:,} records, "
        f"from the spooled parts in {directory}"
    )

"""`bulkctl status JOB`: one job as the local store knows it; `--wait` polls until it is final."""

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.cli import app, complete
from bulkctl.cli import options as o
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import UsageError

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.jobs.store import JobStore
    from bulkctl.jobs.view import JobSnapshot

DEFAULT_INTERVAL = 2.0
DEFAULT_TIMEOUT = 3600.0
# The store is a local file: reading it is cheap, so a wait on it backs off to 5 s at most.
LOCAL_MAX_INTERVAL = 5.0


EXAMPLES = [
    ("bulkctl status last", "The latest push: status, counts, error, parts."),
    ("bulkctl status 20261122-7kq3 --json", "One job as one JSON object."),
    ("bulkctl status last --wait --timeout 600", "Wait up to 10 minutes for it to end."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 2, 4, 5)))
def status(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            help="The local job id, the remote id (sync id / job id), or `last`.",
            autocompletion=complete.job_ids,
            show_default=False,
        ),
    ],
    json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object (the job in push --json's words, its parts as "
            "`part_list`) on standard output.",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Poll until the job is final; a bar on a terminal, a line per change otherwise "
            "(on standard error).",
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="S",
            help="With --wait: seconds before the second poll; each wait is 1.5x longer, up "
            "to 60 s (5 s for jobs read from the local store).",
        ),
    ] = DEFAULT_INTERVAL,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="S",
            help="With --wait: give up after S seconds (exit 4); 0 waits without a limit.",
            show_default=f"{DEFAULT_TIMEOUT:g}; for remote jobs the API's processing time, 24 h "
            "for xandr-bss",
        ),
    ] = None,
) -> None:
    """Show one job: target, inputs, options, status, counts, error and every part.

    For segment-bulk (whose API has no status endpoint) this is what bulkctl recorded; with
    --wait it waits for a push still running in another process to end. For targets with
    remote jobs (xandr-bss) the API is asked for the jobs' phase; --wait polls it until final.

    A push whose process is gone while the store says it runs is shown as `died`.

    Exit 0 when the job finished, was a dry run, or is still running (without --wait);
    5 when it ended failed, interrupted, aborted or died, or its remote jobs completed with
    rejected records (the error is in the message, with what `bulkctl resume JOB` can do);
    4 when --wait gave up at --timeout; 2 when no such job is recorded.
    """
    from bulkctl.jobs.state import failure_of
    from bulkctl.jobs.view import read_snapshot

    if wait and interval <= 0:
        raise UsageError(f"--interval {interval:g}: give a number of seconds above 0")
    if wait and timeout is not None and timeout < 0:
        raise UsageError(f"--timeout {timeout:g}: give seconds, or 0 to wait without a limit")
    with o.open_store(json, job=job, status=None) as store:
        snapshot = read_snapshot(store, job)
        if _remote_jobs(snapshot):
            _remote_status(store, snapshot, json, wait, interval, timeout)
            return
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        if wait and not snapshot.ended:
            snapshot = _wait(store, snapshot, json, interval, timeout or None)
    _render(snapshot, json)
    failure = failure_of(snapshot.job, snapshot.parts)
    if failure is not None:
        raise failure


# -- remote jobs (xandr-bss): the API knows the state, not the store ------------------------


def _remote_jobs(snapshot: "JobSnapshot") -> bool:
    """True for a push whose target has remote jobs and which sent at least one part.

    A push that died is shown from the store (`died`, and what resume can do): the API
    knows only of the files it got, not that the rest will never come.
    """
    from bulkctl.jobs.remote import sent_ids
    from bulkctl.jobs.state import died
    from bulkctl.targets import target_class

    if died(snapshot.job):
        return False
    try:
        has_jobs = target_class(snapshot.job.target).remote_jobs
    except UsageError:
        return False
    return has_jobs and bool(sent_ids(snapshot.parts))


def _remote_status(
    store: "JobStore",
    snapshot: "JobSnapshot",
    json: bool,
    wait: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Ask the API for the push's jobs (polling with --wait), show them, exit 5 if one failed."""
    from bulkctl.console import Console
    from bulkctl.jobs.polling import WaitTimeoutError
    from bulkctl.jobs.remote import JobsState, follow_stored, sent_ids
    from bulkctl.jobs.view import read_snapshot

    ids = sent_ids(snapshot.parts)
    try:
        state: JobsState = follow_stored(
            snapshot.job, ids, Console(), wait=wait, interval=interval, timeout=timeout
        )
    except WaitTimeoutError as exc:
        _render_remote(snapshot, exc.last, json)
        raise
    store.update_job(snapshot.job.id, status=state.outcome)
    failure = state.failure(snapshot.job.id)
    _render_remote(read_snapshot(store, snapshot.job.id), state, json, failure)
    if failure is not None:
        raise failure


def _render_remote(
    snapshot: "JobSnapshot", state: Any, json: bool, failure: Exception | None = None
) -> None:
    from bulkctl.jobs.remote import state_fields
    from bulkctl.jobs.view import print_fields

    if json:
        from bulkctl.jobs.state import with_rejections
        from bulkctl.report.summary import print_json

        summary = snapshot.as_dict() | {
            "status": with_rejections(state.outcome, snapshot.job.rejected),
            "remote": state.as_dict(),
        }
        if failure is not None:
            summary["error"] = str(failure)
        print_json(summary)
        return
    _render(snapshot, False)
    sys.stdout.write("\n")
    print_fields(sys.stdout, state_fields(state), columns=_columns())
    sys.stdout.flush()


def _wait(
    store: "JobStore", first: "JobSnapshot", json: bool, interval: float, timeout: float | None
) -> "JobSnapshot":
    """Poll the store for the job (by its id: `last` must not move to a newer job meanwhile)."""
    from bulkctl.console import Console
    from bulkctl.jobs.polling import WaitTimeoutError, poll_until_final
    from bulkctl.jobs.view import read_snapshot

    job_id = first.job.id
    console = Console()
    display = _RichWait(console, job_id) if console.show_progress else _PlainWait(console, job_id)
    try:
        return poll_until_final(
            lambda: read_snapshot(store, job_id),
            lambda snap: snap.ended,
            interval=interval,
            timeout=timeout,
            on_change=display.update,
            key=display.key,
            describe=lambda snap: snap.status,
            hint=f"run `bulkctl status {job_id} --wait` again; if its push is no longer "
            f"running, `bulkctl resume {job_id}` continues it",
            max_interval=max(interval, LOCAL_MAX_INTERVAL),
        )
    except WaitTimeoutError as exc:
        display.close()
        _render(exc.last, json)
        raise
    finally:
        display.close()


def _render(snapshot: "JobSnapshot", json: bool) -> None:
    from bulkctl.jobs.view import PART_COLUMNS, job_fields, part_cells, print_fields, print_table

    if json:
        from bulkctl.report.summary import print_json

        print_json(snapshot.as_dict())
        return
    out = sys.stdout
    terminal = out.isatty()
    print_fields(out, job_fields(snapshot), columns=_columns())
    if snapshot.parts:
        out.write("\n")
        rows = [part_cells(part, grouped=terminal) for part in snapshot.parts]
        print_table(out, PART_COLUMNS, rows, terminal=terminal)
    out.flush()


def _columns() -> int | None:
    """The terminal's width when standard output is one (long values wrap between words)."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


class _PlainWait:
    """One line on standard error each time the status changes: for logs and cron mail."""

    def __init__(self, console: "Console", job_id: str) -> None:
        self.console = console
        self.job_id = job_id

    def key(self, snapshot: "JobSnapshot") -> object:
        return snapshot.status

    def update(self, snapshot: "JobSnapshot") -> None:
        percent = snapshot.percent
        done = f" ({percent:.0f}%)" if percent is not None else ""
        self.console.info(f"{time.strftime('%H:%M:%S')} job {self.job_id}: {snapshot.status}{done}")

    def close(self) -> None:
        pass


class _RichWait:
    """A bar with the percentage when the state carries one, a pulsing bar otherwise."""

    def __init__(self, console: "Console", job_id: str) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.bar = Progress(
            TextColumn(f"job {job_id}"),
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            TaskProgressColumn(),
            console=console.rich(),
            transient=True,
        )
        self.task = self.bar.add_task("wait", total=None, status="")
        self.bar.start()
        self._stopped = False

    def key(self, snapshot: "JobSnapshot") -> object:
        percent = snapshot.percent
        return snapshot.status, None if percent is None else round(percent)

    def update(self, snapshot: "JobSnapshot") -> None:
        percent = snapshot.percent
        changes: dict[str, Any] = {"status": snapshot.status}
        if percent is not None:
            changes.update(total=100.0, completed=percent)
        self.bar.update(self.task, **changes)

    def close(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.bar.stop()

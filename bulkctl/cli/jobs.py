"""`bulkctl jobs`: list recent jobs from the local job store, or prune their old spooled parts."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bulkctl.cli import app, complete
from bulkctl.cli import options as o
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import BulkctlError, UsageError

if TYPE_CHECKING:
    from bulkctl.jobs.store import JobStore

DEFAULT_LIMIT = 20
DEFAULT_OLDER_THAN_DAYS = 7.0


EXAMPLES = [
    ("bulkctl jobs", "The 20 latest jobs, newest first."),
    ("bulkctl jobs --status failed --json", "Failed jobs as a JSON array."),
    ("bulkctl jobs --prune --older-than 3", "Delete spooled parts no command needs."),
    ("bulkctl jobs --remote --target xandr-bss", "The member's uploads, as Xandr lists them."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 2, 3, 4)))
def jobs(
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            metavar="N",
            help="Show at most N jobs.",
            show_default=str(DEFAULT_LIMIT),
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="NAME",
            help="Only jobs of this target.",
            show_default=False,
            autocompletion=complete.targets,
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only jobs in this status (created, packing, uploading, finished, "
            "finished_with_rejections, failed, interrupted, died, aborted, dry_run, or a remote "
            "job's status).",
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Instead of listing: delete spooled part files that no command needs any more "
            "and report the space freed. Parts of finished, aborted and dry-run jobs go; parts "
            "of failed, interrupted or unfinished jobs (which `bulkctl resume` may need) go only "
            "once the job was last active more than --older-than days ago. Spool directories "
            "whose parts the store never recorded (a push killed while packing) are found by "
            "their marker. The parts of `push --dry-run --out DIR` are yours and never touched.",
        ),
    ] = False,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            help="With --prune: the age in days after which parts of unfinished jobs go too.",
            show_default=f"{DEFAULT_OLDER_THAN_DAYS:g}",
        ),
    ] = None,
    json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON array of jobs (with --prune: one JSON object) on standard output.",
        ),
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Instead of the local store: the upload history the API keeps for a --target "
            "with remote jobs (xandr-bss: the member's uploads of the last 30 days), newest "
            "last, credentials as for push.",
        ),
    ] = False,
) -> None:
    """List recent jobs from the local job store, newest first.

    A table on a terminal, tab-separated lines with a header otherwise; `bulkctl status JOB`
    shows one job in full. With --prune, remove old spooled parts instead.
    """
    if remote:
        if prune or status is not None or older_than is not None:
            raise UsageError(
                "--remote lists the API's history: drop --prune, --status, --older-than"
            )
        _remote(target, DEFAULT_LIMIT if limit is None else limit, json)
        return
    if prune:
        if limit is not None or status is not None:
            raise UsageError("--prune looks at every job: drop --limit and --status")
        days = DEFAULT_OLDER_THAN_DAYS if older_than is None else older_than
        if days < 0:
            raise UsageError(f"--older-than {days:g}: give a number of days, 0 or more")
        with o.open_store(json, status="failed") as store:
            _prune(store, days, target, json)
        return
    if older_than is not None:
        raise UsageError("--older-than goes with --prune")
    count = DEFAULT_LIMIT if limit is None else limit
    if count < 1:
        raise UsageError(f"--limit {count}: show at least 1 job")
    with o.open_store(json, status="failed") as store:
        _list(store, count, target, status, json)


def _list(
    store: "JobStore", limit: int, target: str | None, status: str | None, json: bool
) -> None:
    from bulkctl.jobs.state import job_summary, shown_status
    from bulkctl.jobs.view import JOB_COLUMNS, job_cells, print_table

    if status is None:
        rows = store.list_jobs(limit=limit, target=target)
    else:  # by the status shown (`died` is worked out, not stored), not the stored one
        every = store.list_jobs(limit=None, target=target)
        rows = [job for job in every if shown_status(job) == status][:limit]
    if json:
        import orjson

        summaries = [job_summary(job, store.list_parts(job.id)) for job in rows]
        sys.stdout.write(orjson.dumps(summaries).decode() + "\n")
    elif rows:
        terminal = sys.stdout.isatty()
        cells = [
            job_cells(job, grouped=terminal, spooled=len(store.list_parts(job.id))) for job in rows
        ]
        print_table(sys.stdout, JOB_COLUMNS, cells, terminal=terminal)
    if not rows:
        given = (("target", target), ("status", status))
        filters = [f"{name} {value}" for name, value in given if value]
        what = f"no jobs with {' and '.join(filters)}" if filters else "no jobs yet"
        o.make_console(False, False, None).info(what)


def _remote(target: str | None, limit: int, json: bool) -> None:
    """`jobs --remote`: the target's upload history, as its API reports it."""
    from bulkctl.jobs.remote import connect, history, remote_call
    from bulkctl.send.retry import RetryPolicy

    if target is None:
        raise UsageError("--remote needs --target, e.g. --target xandr-bss")
    if limit < 1:
        raise UsageError(f"--limit {limit}: show at least 1 job")
    console = o.make_console(False, False, None)
    api = connect(target, console)
    with remote_call(api, RetryPolicy(), console) as call:
        rows = history(call, api, limit)
    if json:
        import orjson

        sys.stdout.write(orjson.dumps([job.as_dict() for job in rows]).decode() + "\n")
        return
    if not rows:
        console.info(f"no uploads in the {target} history")
        return
    from bulkctl.jobs.view import print_table

    terminal = sys.stdout.isatty()
    cells = [
        [
            job.remote_id,
            job.created or "-",
            job.phase,
            "-" if job.percent is None else f"{job.percent:.0f}%",
            str(job.counts.get("num_valid", "-")),
            str(job.counts.get("num_invalid_format", "-")),
            job.error or "-",
        ]
        for job in rows
    ]
    columns = ("remote job", "created", "phase", "done", "valid", "invalid format", "error")
    print_table(sys.stdout, columns, cells, terminal=terminal)


def _prune(store: "JobStore", days: float, target: str | None, json: bool) -> None:
    from bulkctl.jobs.view import prune_parts
    from bulkctl.report.summary import print_json

    result = prune_parts(store, older_than_days=days, target=target)
    if json:
        print_json(result.as_dict() | {"older_than_days": days})
    else:
        sys.stdout.write(result.describe(days) + "\n")
    console = o.make_console(False, False, None)
    for error in result.errors:
        console.warn(error)
    if result.errors:
        raise BulkctlError(
            f"{len(result.errors):,} spooled part files could not be removed",
            hint="check their permissions",
        )

"""`bulkctl push`: upload records to a target."""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.cli import app
from bulkctl.cli import options as o
from bulkctl.cli.complete import ON_INVALID
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import BulkctlError, InvalidRecordsError, UsageError
from bulkctl.send.inflight import MAX_IN_FLIGHT

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.run.inputs import ReadSettings
    from bulkctl.run.push import Push, PushSettings
    from bulkctl.targets.base import ConnectSettings


EXAMPLES = [
    ("bulkctl push rooms.ndjson", "Push a file; the key from env BULKCTL_WRITE_KEY."),
    ("dump | bulkctl push -f ndjson -c rooms -", "Push records from a pipe, e.g. in cron."),
    ("bulkctl push rooms.csv -c rooms --dry-run", "Check and pack everything, send nothing."),
    ("bulkctl push rooms.ndjson --sandbox", "Try it against the embedded local sandbox."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 1, 2, 3, 4, 5, 6, 130)))
def push(
    paths: o.Paths = None,
    target: o.Target = "segment-bulk",
    format: o.Format = "auto",
    collection: o.Collection = None,
    id_field: o.IdField = "id",
    on_invalid: o.OnInvalid = "fail",
    rejects: o.Rejects = None,
    allow_empty: o.AllowEmpty = False,
    delimiter: o.Delimiter = None,
    encoding: o.Encoding = "utf-8",
    types: o.Types = None,
    no_infer: o.NoInfer = False,
    endpoint: o.Endpoint = None,
    region: o.Region = None,
    profile: o.ProfileName = None,
    write_key_file: o.WriteKeyFile = None,
    part_size: Annotated[
        str | None,
        typer.Option(
            "--part-size",
            metavar="SIZE",
            help="Most uncompressed bytes in one part, from 1MB up to the target's limit.",
            show_default="the limit, 512MB for segment-bulk",
            rich_help_panel=o.SENDING,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            metavar="N",
            help="Parallel uploads, 1 to 20. Records are routed to lanes by id, so the outcome "
            "is the same as at 1; at most 20 requests are in flight, keep-alive included.",
            show_default="4; 8 for segment-objects",
            rich_help_panel=o.SENDING,
        ),
    ] = None,
    keep_alive: Annotated[
        float,
        typer.Option(
            "--keep-alive",
            metavar="S",
            help="Seconds between keep-alive calls.",
            rich_help_panel=o.SENDING,
        ),
    ] = 300.0,
    max_attempts: o.MaxAttempts = 8,
    max_retry_time: o.MaxRetryTime = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Upload while still reading (for inputs too large to spool) instead of "
            "validating everything first.",
            rich_help_panel=o.SENDING,
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read, validate, split and compress; send nothing.",
            rich_help_panel=o.SENDING,
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="With --dry-run: keep the parts and a manifest.json here.",
            rich_help_panel=o.SENDING,
        ),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option(
            "--spool-dir",
            metavar="DIR",
            help="Where parts are spooled.",
            show_default="the temp dir",
            rich_help_panel=o.SENDING,
        ),
    ] = None,
    compression_level: Annotated[
        int,
        typer.Option(
            "--compression-level",
            metavar="0-9",
            help="gzip level of the parts, as gzip counts: 0 stores, 1 is fastest, 9 smallest "
            "(ISA-L: 1 → its 0, 2-3 → 1, 4-6 → 2, 7-9 → 3).",
            rich_help_panel=o.SENDING,
        ),
    ] = 6,
    workers: o.Workers = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="For targets with remote jobs (xandr-bss): poll until the job is final; exit 5 "
            "when it failed.",
            rich_help_panel=o.SENDING,
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="S",
            help="With --wait: give up after S seconds (exit 4); 0 waits without a limit.",
            show_default="the API's processing time, 24 h for xandr-bss",
            rich_help_panel=o.SENDING,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="S",
            help="With --wait: seconds before the second poll; each wait is 1.5x longer, up to "
            "60 s.",
            rich_help_panel=o.SENDING,
        ),
    ] = 2.0,
    member_id: o.MemberId = None,
    seg_fields: o.SegFields = None,
    separators: o.Separators = None,
    min_interval: o.MinInterval = None,
    sync: o.Sync = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Push to an embedded local sandbox (a warehouse in SQLite) instead of the API.",
            rich_help_panel=o.TARGET,
        ),
    ] = False,
    allow_insecure_http: o.AllowInsecureHttp = False,
    json: o.Json = False,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
    progress: o.ShowProgress = None,
) -> None:
    """Upload records to a target (default: the Segment Objects Bulk API).

    The input is read, validated and packed into gzip parts first; a session is started only
    when every record is valid (or `--on-invalid skip`). A failure after the session started
    ends it with an error, so nothing partial is applied. `bulkctl status last` shows the job,
    `bulkctl resume last` continues one cut short.
    """
    console = o.make_console(quiet, verbose, progress)
    if out is not None and not dry_run:
        raise UsageError("--out keeps the parts of a --dry-run; add --dry-run")
    if concurrency is not None and not 1 <= concurrency <= MAX_IN_FLIGHT:
        raise UsageError(f"--concurrency {concurrency}: choose 1 to {MAX_IN_FLIGHT}")
    if max_attempts < 1 or (max_retry_time or 0) < 0 or keep_alive <= 0:
        raise UsageError("--max-attempts must be ≥ 1, --max-retry-time ≥ 0, --keep-alive > 0")
    if timeout is not None and (timeout < 0 or not wait):
        raise UsageError("--timeout goes with --wait and is 0 or more seconds")
    if interval <= 0:
        raise UsageError(f"--interval {interval:g}: give a number of seconds above 0")
    if not 0 <= compression_level <= 9:
        raise UsageError(f"--compression-level {compression_level}: choose 0 to 9")
    on_invalid = o.check_choice("--on-invalid", on_invalid, tuple(ON_INVALID))
    read = o.read_settings(
        paths,
        target=target,
        format=format,
        collection=collection,
        id_field=id_field,
        on_invalid=on_invalid,
        rejects=rejects,
        delimiter=delimiter,
        encoding=encoding,
        types=types,
        no_infer=no_infer,
        fail_fast=stream and on_invalid == "fail",
        target_options={
            "member_id": member_id,
            "seg_fields": seg_fields,
            "separators": separators,
            "min_interval": min_interval,
            "sync": sync,
        },
        workers=workers,
        allow_empty=allow_empty,
    )
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "stream": stream,
        "dry_run": dry_run,
        "out_dir": out,
        "spool_dir": spool_dir,
        "compression_level": compression_level,
        "allow_insecure_http": allow_insecure_http,
        "wait": wait,
        "wait_timeout": timeout,
        "wait_interval": interval,
        "retry": _retry_policy(max_attempts, max_retry_time),
    }
    connect: dict[str, Any] = {
        "endpoint": endpoint,
        "region": region,
        "key_file": write_key_file,
        "keep_alive": keep_alive,
    }
    if sandbox:
        _push_to_sandbox(read, options, console, json, part_size, connect)
        return
    _push(read, options, console, json, part_size, connect, profile_name=profile)


def _retry_policy(max_attempts: int, max_retry_time: float | None) -> Any:
    from bulkctl.send.retry import RetryPolicy

    return RetryPolicy.from_options(max_attempts, max_retry_time)


def _part_size(text: str | None, lowest: int, limit: int) -> int | None:
    """--part-size in bytes (None: the target's limit), within the target's bounds."""
    from bulkctl.sizes import format_bytes, parse_size

    if text is None:
        return None
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--part-size: {exc}") from None
    if not lowest <= size <= limit:
        raise UsageError(
            f"--part-size {text}: choose from {format_bytes(lowest)} to {format_bytes(limit)} "
            "(the API's limit for one part)"
        )
    return size


def _push(
    read: "ReadSettings",
    options: dict[str, Any],
    console: "Console",
    json: bool,
    part_size: str | None,
    connect: dict[str, Any],
    *,
    profile_name: str | None,
) -> None:
    from dataclasses import replace

    from bulkctl.settings import load_profile
    from bulkctl.targets import profile_keys
    from bulkctl.targets.base import ConnectSettings

    try:
        profile = load_profile(profile_name, console, profile_keys())
        if profile.get("target") and read.target == "segment-bulk":
            read = replace(read, target=str(profile.get("target")))
        settings = _settings(
            read, options, part_size, ConnectSettings(profile=profile, console=console, **connect)
        )
    except BulkctlError as exc:
        if json:  # --json prints its one object on failure too (CLI.md)
            o.print_failure(_failed(read.target), exc)
        raise
    _run_push(settings, console, json)


def _failed(target: str) -> dict[str, Any]:
    """The summary of a push that failed before it started."""
    from bulkctl.run.push import PushSummary

    return PushSummary(target=target, status="failed").as_dict(None)


def _settings(
    read: "ReadSettings", options: dict[str, Any], part_size: str | None, connect: "ConnectSettings"
) -> "PushSettings":
    """The target, its limits and (unless a dry run) its remote, as push settings."""
    from bulkctl.run.push import PushSettings
    from bulkctl.targets import build

    built = build(read.target, read.target_options, None if options["dry_run"] else connect)
    limits = built.target.limits
    size = _part_size(part_size, limits.min_part_bytes, limits.max_part_bytes)
    if options["concurrency"] is None:
        options = options | {"concurrency": built.target.default_concurrency}
    return PushSettings(
        read=read, target=built.target, remote=built.remote, part_size=size, **options
    )


def _push_to_sandbox(
    read: "ReadSettings",
    options: dict[str, Any],
    console: "Console",
    json: bool,
    part_size: str | None,
    connect: dict[str, Any],
) -> None:
    from bulkctl.sandbox import default_db_path, start_sandbox
    from bulkctl.settings import Profile
    from bulkctl.targets import sandbox_credentials
    from bulkctl.targets.base import ConnectSettings

    db = default_db_path()
    # Credentials of its own: the user's real ones never go there.
    credentials = sandbox_credentials()
    with start_sandbox(db, credentials=credentials, log=None) as running:
        console.detail(f"sandbox listening on {running.url}, warehouse {db}")
        settings = _settings(
            read,
            options,
            part_size,
            ConnectSettings(
                profile=Profile(),
                console=console,
                **(connect | {"endpoint": running.url}),
                sandbox=credentials,
            ),
        )
        pushed = _run_push(settings, console, json)
    if not options["dry_run"] and pushed.input is not None:
        console.info(_sandbox_hint(read.target, db, sorted(pushed.input.tally.per_collection)))


def _sandbox_hint(target: str, db: Path, collections: list[str]) -> str:
    if target == "xandr-bss":
        query = 'bulkctl sandbox query "SELECT * FROM _xandr_segments"'
        return f"the segments are in the sandbox warehouse {db}; look at them with: {query}"
    names = (collections or ["COLLECTION"])[:3]
    shows = "; ".join(f"bulkctl sandbox show {name}" for name in names)
    return f"the rows are in the sandbox warehouse {db}; look at them with: {shows}"


def _run_push(settings: "PushSettings", console: "Console", json: bool) -> "Push":
    from bulkctl.run.push import Push

    started = time.monotonic()
    with o.open_store(json, console, **_failed(settings.read.target)) as store:
        job = Push(settings, console, store)
        interrupted = False
        try:
            job.run()
        except BulkctlError as exc:
            interrupted = exc.exit_status == 130
            raise
        finally:
            _render(job, console, json, interrupted, time.monotonic() - started)
    tally = job.input.tally if job.input else None
    if tally is not None and tally.rejected:
        rejects = settings.read.rejects
        from bulkctl.jobs.state import rejections_text

        raise InvalidRecordsError(
            rejections_text(tally.rejected, tally.records),
            hint=f"every rejection is in {rejects}" if rejects else None,
        )
    return job


def _render(job: "Push", console: "Console", json: bool, interrupted: bool, elapsed: float) -> None:
    from bulkctl.report.summary import print_json, render_push

    summary = job.summary.as_dict(job.input)
    summary["elapsed_s"] = round(elapsed, 3)
    if json and not interrupted:
        print_json(summary)
    remote = summary.get("remote")
    if summary["status"] in ("finished", "dry_run", "finished_with_rejections") or (
        remote is not None and (summary["error"] is None or remote.get("final"))
    ):
        render_push(console, summary)

"""`bulkctl push`: upload records to a target."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.cli import app
from bulkctl.cli import options as o
from bulkctl.errors import BulkctlError, InvalidRecordsError, UsageError

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.pushing import Push

MAX_CONCURRENCY = 20


@app.command()
def push(
    paths: o.Paths = None,
    target: o.Target = "segment-bulk",
    format: o.Format = "auto",
    collection: o.Collection = None,
    id_field: o.IdField = "id",
    on_invalid: o.OnInvalid = "fail",
    rejects: o.Rejects = None,
    delimiter: o.Delimiter = None,
    encoding: o.Encoding = "utf-8",
    types: o.Types = None,
    no_infer: o.NoInfer = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Base URL of the API [env BULKCTL_ENDPOINT; default: the target's public host].",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="us|eu: Segment's regional hosts.")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="[profiles.NAME] of the config file [env BULKCTL_PROFILE]."),
    ] = None,
    write_key_file: Annotated[
        Path | None,
        typer.Option(
            "--write-key-file",
            help="Read the write key from this file; otherwise env BULKCTL_WRITE_KEY, then the "
            "config profile.",
        ),
    ] = None,
    part_size: Annotated[
        str,
        typer.Option("--part-size", help="Most uncompressed bytes in one part (1MB to 512MB)."),
    ] = "512MB",
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            help="Parallel uploads, 1 to 20. Records are routed to lanes by id so the outcome "
            "is the same as at 1; at most 20 requests are in flight, keep-alive included.",
        ),
    ] = 4,
    keep_alive: Annotated[
        float, typer.Option("--keep-alive", help="Seconds between keep-alive calls.")
    ] = 300.0,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", help="Most attempts at one request.")
    ] = 8,
    max_retry_time: Annotated[
        float, typer.Option("--max-retry-time", help="Most seconds spent retrying one request.")
    ] = 300.0,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Upload while still reading (for inputs too large to spool) instead of "
            "validating everything first.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read, validate, split and compress; send nothing."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --dry-run: keep the parts and a manifest.json here."),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option("--spool-dir", help="Where parts are spooled [default: the temp dir]."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="For targets with remote jobs: poll until the job is final.",
        ),
    ] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Push to an embedded local sandbox (a warehouse in SQLite) instead of the API.",
        ),
    ] = False,
    allow_insecure_http: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-http",
            help="Allow plain http:// to a host that is not loopback (the key travels in clear).",
        ),
    ] = False,
    json: o.Json = False,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
    progress: o.ShowProgress = None,
) -> None:
    """Upload records to a target (default: the Segment Objects Bulk API).

    The input is read, validated and packed into gzip parts first; a session is started only
    when every record is valid (or --on-invalid skip). A failure after the session started
    ends it with an error, so nothing partial is applied.
    """
    from bulkctl.reading import ReadSettings
    from bulkctl.records import ShapeOptions
    from bulkctl.sizes import parse_size
    from bulkctl.sources import ReadOptions

    console = o.make_console(quiet, verbose, progress)
    if out is not None and not dry_run:
        raise UsageError("--out keeps the parts of a --dry-run; add --dry-run")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency {concurrency}: choose 1 to {MAX_CONCURRENCY}")
    if max_attempts < 1 or max_retry_time < 0 or keep_alive <= 0:
        raise UsageError("--max-attempts must be ≥ 1, --max-retry-time ≥ 0, --keep-alive > 0")
    size = _part_size(part_size, parse_size)
    on_invalid = o.check_choice("--on-invalid", on_invalid, ("fail", "skip"))
    read = ReadSettings(
        paths=o.input_paths(paths),
        target=target,
        read=ReadOptions(
            format=o.check_choice("--format", format, o.FORMATS),
            id_field=id_field,
            delimiter=delimiter,
            encoding=encoding,
            types=o.parse_types(types),
            infer=not no_infer,
        ),
        shape=ShapeOptions(collection=collection, id_field=id_field),
        on_invalid=on_invalid,
        rejects=rejects,
        fail_fast=stream and on_invalid == "fail",
    )
    options: dict[str, Any] = {
        "part_size": size,
        "concurrency": concurrency,
        "keep_alive": keep_alive,
        "stream": stream,
        "dry_run": dry_run,
        "out_dir": out,
        "spool_dir": spool_dir,
        "allow_insecure_http": allow_insecure_http,
    }
    if sandbox:
        _push_to_sandbox(read, options, console, json, max_attempts, max_retry_time)
        return
    _push(
        read,
        options,
        console,
        json,
        endpoint_flag=endpoint,
        region=region,
        profile_name=profile,
        write_key_file=write_key_file,
        max_attempts=max_attempts,
        max_retry_time=max_retry_time,
    )


def _part_size(text: str, parse: Any) -> int:
    from bulkctl.packing import MIN_PART_SIZE
    from bulkctl.pushing import DEFAULT_PART_SIZE

    try:
        size = int(parse(text))
    except ValueError as exc:
        raise UsageError(f"--part-size: {exc}") from None
    if not MIN_PART_SIZE <= size <= DEFAULT_PART_SIZE:
        raise UsageError(
            f"--part-size {text}: choose from 1MB to 512MB (the API's limit for one part)"
        )
    return size


def _push(
    read: Any,
    options: dict[str, Any],
    console: Console,
    json: bool,
    *,
    endpoint_flag: str | None,
    region: str | None,
    profile_name: str | None,
    write_key_file: Path | None,
    max_attempts: int,
    max_retry_time: float,
) -> None:
    from bulkctl.settings import load_profile, resolve_endpoint, resolve_write_key

    profile = load_profile(profile_name, console)
    if profile.get("target") and read.target == "segment-bulk":
        read = _with_target(read, str(profile.get("target")))
    endpoint = resolve_endpoint(endpoint_flag, region, profile)
    write_key = None
    if not options["dry_run"]:
        write_key = resolve_write_key(write_key_file, profile, console)
    _run_push(read, options, console, json, endpoint, write_key, max_attempts, max_retry_time)


def _with_target(read: Any, target: str) -> Any:
    from dataclasses import replace

    return replace(read, target=target)


def _push_to_sandbox(
    read: Any,
    options: dict[str, Any],
    console: Console,
    json: bool,
    max_attempts: int,
    max_retry_time: float,
) -> None:
    import secrets

    from bulkctl.sandbox import default_db_path, start_sandbox
    from bulkctl.settings import Secret

    db = default_db_path()
    key = secrets.token_hex(16)  # a key of its own: the user's real key never goes there
    with start_sandbox(db, write_key=key, log=None) as running:
        console.detail(f"sandbox listening on {running.url}, warehouse {db}")
        pushed = _run_push(
            read, options, console, json, running.url, Secret(key), max_attempts, max_retry_time
        )
    if not options["dry_run"] and pushed.input is not None:
        collections = sorted(pushed.input.tally.per_collection) or ["COLLECTION"]
        shows = "; ".join(f"bulkctl sandbox show {name}" for name in collections[:3])
        console.info(f"the rows are in the sandbox warehouse {db}; look at them with: {shows}")


def _run_push(
    read: Any,
    options: dict[str, Any],
    console: Console,
    json: bool,
    endpoint: str,
    write_key: Any,
    max_attempts: int,
    max_retry_time: float,
) -> Push:
    from bulkctl.jobstore import JobStore
    from bulkctl.pushing import Push, PushSettings
    from bulkctl.retry import RetryPolicy

    settings = PushSettings(
        read=read,
        endpoint=endpoint,
        write_key=write_key,
        retry=RetryPolicy(max_attempts=max_attempts, max_retry_time=max_retry_time),
        **options,
    )
    started = time.monotonic()
    with JobStore() as store:
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
        raise InvalidRecordsError(
            f"{tally.rejected:,} of {tally.records:,} records were rejected and not sent",
            hint=f"every rejection is in {read.rejects}" if read.rejects else None,
        )
    return job


def _render(job: Push, console: Console, json: bool, interrupted: bool, elapsed: float) -> None:
    from bulkctl.report import print_json, render_push

    summary = job.summary.as_dict(job.input)
    summary["elapsed_s"] = round(elapsed, 3)
    if json and not interrupted:
        print_json(summary)
    if summary["status"] in ("finished", "dry_run"):
        render_push(console, summary)

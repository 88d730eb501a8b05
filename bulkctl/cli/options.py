"""Options shared by the reading commands (push, validate), and the settings they build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.cli import complete
from bulkctl.cli.complete import ON_INVALID
from bulkctl.console import Console
from bulkctl.errors import BulkctlError, UsageError
from bulkctl.read.options import FORMATS

if TYPE_CHECKING:
    from bulkctl.jobs.store import JobStore
    from bulkctl.run.inputs import ReadSettings

# The help panels of the reading commands (push, validate), in the order they are shown.
INPUT = "Input"
TARGET = "Target and credentials"
XANDR = "xandr-bss options"
OBJECTS = "segment-objects options"
SENDING = "Sending"
OUTPUT = "Output"

Paths = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PATH",
        help="Input files (.ndjson/.jsonl, .json, .csv, .tsv, each optionally .gz), or - for "
        "standard input. With none, standard input is read when it is not a terminal.",
        show_default=False,
        rich_help_panel=INPUT,
    ),
]
Target = Annotated[
    str,
    typer.Option(
        "--target",
        metavar="NAME",
        help="The API whose rules apply: segment-bulk or xandr-bss.",
        rich_help_panel=TARGET,
        autocompletion=complete.targets,
    ),
]
Format = Annotated[
    str,
    typer.Option(
        "-f",
        "--format",
        metavar="FORMAT",
        help="auto, ndjson, json, csv or tsv. auto decides from the file name, else from the "
        "first bytes.",
        rich_help_panel=INPUT,
        autocompletion=complete.formats,
    ),
]
Collection = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--collection",
        metavar="NAME",
        help="Collection for records that carry none (CSV rows need it or a `collection` column).",
        rich_help_panel=INPUT,
    ),
]
IdField = Annotated[
    str,
    typer.Option(
        "--id-field", metavar="FIELD", help="Field that holds the object id.", rich_help_panel=INPUT
    ),
]
OnInvalid = Annotated[
    str,
    typer.Option(
        "--on-invalid",
        metavar="fail|skip",
        help="fail: any invalid record fails the run (nothing is sent); skip: leave invalid "
        "records out and go on (the exit status is still 1).",
        rich_help_panel=INPUT,
        autocompletion=complete.on_invalid,
    ),
]
Rejects = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        metavar="FILE",
        help="Write every rejected record, with its errors, as NDJSON.",
        rich_help_panel=INPUT,
    ),
]
Delimiter = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        metavar="CHAR",
        help="CSV/TSV field delimiter.",
        show_default="from the format: , or tab",
        rich_help_panel=INPUT,
    ),
]
Encoding = Annotated[
    str,
    typer.Option(
        "--encoding",
        metavar="NAME",
        help="CSV/TSV text encoding, e.g. latin-1.",
        rich_help_panel=INPUT,
    ),
]
Types = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        metavar="COLUMN=TYPE",
        help="The type of one CSV column, TYPE one of str, int, float, bool (repeatable).",
        show_default=False,
        rich_help_panel=INPUT,
    ),
]
NoInfer = Annotated[
    bool,
    typer.Option(
        "--no-infer",
        help="Keep CSV values as strings. By default a column becomes numbers (or booleans) "
        "only when every value in it is one, in canonical spelling; ids stay strings. Empty "
        "CSV cells and JSON nulls are never sent: under merge semantics, not sent means "
        "unchanged.",
        rich_help_panel=INPUT,
    ),
]
AllowEmpty = Annotated[
    bool,
    typer.Option(
        "--allow-empty",
        help="An input with no records is a success (exit 0) that sends nothing. Without it "
        'no records at all is exit 1, "no records in FILE", and no session is opened.',
        rich_help_panel=INPUT,
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json", help="Print exactly one JSON summary on standard output.", rich_help_panel=OUTPUT
    ),
]
Quiet = Annotated[
    bool,
    typer.Option("-q", "--quiet", help="Only errors on standard error.", rich_help_panel=OUTPUT),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "-v",
        "--verbose",
        help="More on standard error: each input's format, the settings used.",
        rich_help_panel=OUTPUT,
    ),
]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on standard error.",
        show_default="on when it is a terminal",
        rich_help_panel=OUTPUT,
    ),
]

Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        help="Processes that parse and check records (1: all in this process). Inputs under "
        "4 MB are read in this process whatever N; the output is the same for every N.",
        show_default="the usable CPUs",
        rich_help_panel=INPUT,
    ),
]

Endpoint = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="URL",
        help="Base URL of the API. [env: BULKCTL_ENDPOINT]",
        show_default="the target's public host",
        rich_help_panel=TARGET,
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="us|eu",
        help="Segment's regional hosts.",
        show_default="us",
        rich_help_panel=TARGET,
        autocompletion=complete.regions,
    ),
]
ProfileName = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="The [profiles.NAME] table of the config file to use. [env: BULKCTL_PROFILE]",
        show_default="profiles.default, if present",
        rich_help_panel=TARGET,
    ),
]
WriteKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--write-key-file",
        metavar="PATH",
        help="Read the write key from this file; otherwise env BULKCTL_WRITE_KEY, then the "
        "config profile.",
        rich_help_panel=TARGET,
    ),
]
MaxAttempts = Annotated[
    int,
    typer.Option(
        "--max-attempts", metavar="N", help="Most attempts at one request.", rich_help_panel=SENDING
    ),
]
MaxRetryTime = Annotated[
    float | None,
    typer.Option(
        "--max-retry-time",
        metavar="S",
        help="Most seconds spent retrying one request (default 300; a connection that cannot "
        "be made: 10).",
        show_default=False,
        rich_help_panel=SENDING,
    ),
]
AllowInsecureHttp = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-http",
        help="Allow plain http:// to a host that is not loopback (credentials travel in clear).",
        rich_help_panel=TARGET,
    ),
]

MAX_WORKERS = 64
TYPES = ("str", "int", "float", "bool")


def input_paths(paths: list[str] | None) -> tuple[str, ...]:
    """The paths to read: as given, or standard input when it is piped."""
    if paths:
        if paths.count("-") > 1:
            raise UsageError("standard input (-) can be read only once")
        return tuple(paths)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no input: give a PATH, or pipe records to standard input")
    return ("-",)


def parse_types(values: list[str] | None) -> dict[str, str]:
    """`--type age=int` options as a mapping, with a usage error for a bad one."""
    types: dict[str, str] = {}
    for value in values or []:
        column, sep, kind = value.partition("=")
        if not sep or not column or kind not in TYPES:
            raise UsageError(f"--type {value!r}: write COLUMN=TYPE with TYPE one of {TYPES}")
        types[column] = kind
    return types


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(choices)}")
    return value


def make_console(quiet: bool, verbose: bool, progress: bool | None) -> Console:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose contradict each other")
    return Console(quiet=quiet, verbose=verbose, progress=progress)


def open_store(json: bool, console: Console | None = None, **failure: Any) -> JobStore:
    """The job store, opened and checked (every page read once), so a damaged store is found
    before a command reads or sends anything; one that cannot be used (exit 6) still gets its
    one JSON object under --json: `failure` plus the error. A wait for another process's lock
    is told on stderr."""
    from bulkctl.jobs.store import JobStore

    try:
        store = JobStore(on_wait=(console or Console()).warn)
    except BulkctlError as exc:
        if json:
            print_failure(failure, exc)
        raise
    try:
        store.check()
    except BulkctlError as exc:
        store.close()
        if json:
            print_failure(failure, exc)
        raise
    return store


def print_failure(document: dict[str, Any], exc: BulkctlError) -> None:
    """`--json`'s one object for a command that failed before it had anything to show."""
    from bulkctl.report.summary import print_json

    print_json(document | {"status": document.get("status", "failed"), "error": str(exc)})


# Target-specific options (CLI.md): each target takes only its own (see bulkctl.targets).
MemberId = Annotated[
    int | None,
    typer.Option(
        "--member-id",
        metavar="N",
        help="The Xandr member id. [env: BULKCTL_XANDR_MEMBER_ID]",
        show_default=False,
        rich_help_panel=XANDR,
    ),
]
SegFields = Annotated[
    str | None,
    typer.Option(
        "--seg-fields",
        metavar="FIELDS",
        help="The fields of a segment, in the order your member is configured for: SEG_ID or "
        "SEG_CODE, then any of EXPIRATION, VALUE, TIMESTAMP.",
        show_default="SEG_ID,EXPIRATION",
        rich_help_panel=XANDR,
    ),
]
Separators = Annotated[
    str | None,
    typer.Option(
        "--separators",
        metavar="ABC",
        help="Three characters, as your member is configured: A after the uid, B between "
        "segments, C between a segment's fields.",
        show_default=",;:",
        rich_help_panel=XANDR,
    ),
]
Sync = Annotated[
    bool | None,
    typer.Option(
        "--sync/--no-sync",
        help="Send Synchronous: true on every request / on none.",
        show_default="only when an id occurs more than once in the input",
        rich_help_panel=OBJECTS,
    ),
]
MinInterval = Annotated[
    float | None,
    typer.Option(
        "--min-interval",
        metavar="S",
        help="Least seconds between two uploads when the input makes several files.",
        show_default="60, Xandr's advice",
        rich_help_panel=XANDR,
    ),
]


def read_settings(
    paths: list[str] | None,
    *,
    target: str,
    format: str,
    collection: str | None,
    id_field: str,
    on_invalid: str,
    rejects: Path | None,
    delimiter: str | None,
    encoding: str,
    types: list[str] | None,
    no_infer: bool,
    fail_fast: bool = False,
    target_options: dict[str, Any] | None = None,
    workers: int | None = None,
    allow_empty: bool = False,
) -> ReadSettings:
    """The reading settings `push` and `validate` share, from their options."""
    from bulkctl.read.sources import ReadOptions
    from bulkctl.records import ShapeOptions
    from bulkctl.run.inputs import ReadSettings

    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers}: choose 1 to {MAX_WORKERS}")
    return ReadSettings(
        paths=input_paths(paths),
        target=target,
        target_options=target_options or {},
        read=ReadOptions(
            format=check_choice("--format", format, FORMATS),
            id_field=id_field,
            delimiter=delimiter,
            encoding=encoding,
            types=parse_types(types),
            infer=not no_infer,
        ),
        shape=ShapeOptions(collection=collection, id_field=id_field),
        on_invalid=check_choice("--on-invalid", on_invalid, tuple(ON_INVALID)),
        rejects=rejects,
        fail_fast=fail_fast,
        workers=workers,
        allow_empty=allow_empty,
    )

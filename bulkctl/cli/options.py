"""Options shared by the reading commands (push, validate), and the settings they build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.console import Console
from bulkctl.errors import UsageError

if TYPE_CHECKING:
    from bulkctl.reading import ReadSettings

Paths = Annotated[
    list[str] | None,
    typer.Argument(
        help="Input files (.ndjson/.jsonl, .json, .csv, .tsv, optionally .gz), or - for "
        "standard input. With none, standard input is read when it is not a terminal.",
        show_default=False,
    ),
]
Target = Annotated[str, typer.Option("--target", help="Whose rules apply.")]
Format = Annotated[
    str,
    typer.Option(
        "-f",
        "--format",
        help="auto|ndjson|json|csv|tsv. auto decides from the file name, else the first bytes.",
    ),
]
Collection = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--collection",
        help="Collection for records that carry none (CSV needs it or a `collection` column).",
    ),
]
IdField = Annotated[str, typer.Option("--id-field", help="Field that holds the object id.")]
OnInvalid = Annotated[
    str,
    typer.Option(
        "--on-invalid",
        help="fail: any invalid record fails the run (nothing is sent); skip: leave invalid "
        "records out and go on (the exit code is still 1).",
    ),
]
Rejects = Annotated[
    Path | None,
    typer.Option("--rejects", help="Write every rejected record, with its errors, as NDJSON."),
]
Delimiter = Annotated[
    str | None, typer.Option("--delimiter", help="CSV/TSV field delimiter (one character).")
]
Encoding = Annotated[str, typer.Option("--encoding", help="CSV/TSV text encoding, e.g. latin-1.")]
Types = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        help="COLUMN=str|int|float|bool: the type of one CSV column (repeatable).",
        show_default=False,
    ),
]
NoInfer = Annotated[
    bool,
    typer.Option(
        "--no-infer",
        help="Keep CSV values as strings. By default numbers become numbers, except ids and "
        "values with leading zeros. Empty CSV cells and JSON nulls are never sent: under "
        "merge semantics, not sent means unchanged.",
    ),
]
AllowEmpty = Annotated[
    bool,
    typer.Option(
        "--allow-empty",
        help="An input with no records is a success (exit 0) that sends nothing. Without it "
        'no records at all is exit 1, "no records in …", and no session is opened.',
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON summary on standard output.")
]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on standard error.")]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="More on standard error.")]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on standard error \\[default: on when it is a terminal].",
        show_default=False,
    ),
]

Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        help="Processes that parse and check records (1: all in this process). Inputs under "
        "4 MB are read in this process whatever N; the output is the same for every N. "
        "\\[default: the usable CPUs]",
        show_default=False,
    ),
]

ProfileName = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="The \\[profiles.NAME] table of the config file to use \\[env BULKCTL_PROFILE].",
        show_default=False,
    ),
]
WriteKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--write-key-file",
        help="Read the write key from this file; otherwise env BULKCTL_WRITE_KEY, then the "
        "config profile.",
    ),
]
MaxAttempts = Annotated[int, typer.Option("--max-attempts", help="Most attempts at one request.")]
MaxRetryTime = Annotated[
    float, typer.Option("--max-retry-time", help="Most seconds spent retrying one request.")
]
AllowInsecureHttp = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-http",
        help="Allow plain http:// to a host that is not loopback (credentials travel in clear).",
    ),
]

FORMATS = ("auto", "ndjson", "json", "csv", "tsv")
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


# Target-specific options (CLI.md): each target takes only its own (see bulkctl.targets).
TARGET_PANEL = "Target-specific options"
MemberId = Annotated[
    int | None,
    typer.Option(
        "--member-id",
        help="xandr-bss: the Xandr member id \\[env BULKCTL_XANDR_MEMBER_ID].",
        show_default=False,
        rich_help_panel=TARGET_PANEL,
    ),
]
SegFields = Annotated[
    str | None,
    typer.Option(
        "--seg-fields",
        help="xandr-bss: the fields of a segment, in the order your member is configured for: "
        "SEG_ID or SEG_CODE, then any of EXPIRATION, VALUE, TIMESTAMP. \\[default: "
        "SEG_ID,EXPIRATION]",
        show_default=False,
        rich_help_panel=TARGET_PANEL,
    ),
]
Separators = Annotated[
    str | None,
    typer.Option(
        "--separators",
        help="xandr-bss: three characters, SEP1 (after the uid), SEP2 (between segments) and "
        "SEP3 (between a segment's fields), as your member is configured. \\[default: ,;:]",
        show_default=False,
        rich_help_panel=TARGET_PANEL,
    ),
]
MinInterval = Annotated[
    float | None,
    typer.Option(
        "--min-interval",
        metavar="S",
        help="xandr-bss: least seconds between two uploads when the input makes several "
        "files. \\[default: 60, Xandr's advice]",
        show_default=False,
        rich_help_panel=TARGET_PANEL,
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
    from bulkctl.reading import ReadSettings
    from bulkctl.records import ShapeOptions
    from bulkctl.sources import ReadOptions

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
        on_invalid=check_choice("--on-invalid", on_invalid, ("fail", "skip")),
        rejects=rejects,
        fail_fast=fail_fast,
        workers=workers,
        allow_empty=allow_empty,
    )

"""`bulkctl validate`: check records offline against the target's rules; send nothing."""

import time
from typing import TYPE_CHECKING

from bulkctl.cli import app
from bulkctl.cli import options as o
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import BulkctlError, InvalidRecordsError

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.run.inputs import InputRun, ReadSettings


EXAMPLES = [
    ("bulkctl validate rooms.ndjson", "Check a file against the default target's rules."),
    ("bulkctl validate rooms.csv -c rooms", "CSV rows need a collection."),
    ("bulkctl validate x.json --rejects bad.ndjson", "Write every rejected record to a file."),
    ("dump | bulkctl validate --json", "From a pipe; one JSON summary on stdout."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 1, 2, 130)))
def validate(
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
    seg_fields: o.SegFields = None,
    separators: o.Separators = None,
    workers: o.Workers = None,
    json: o.Json = False,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
    progress: o.ShowProgress = None,
) -> None:
    """Check records offline against the target's rules; send nothing.

    Nothing is sent and no credentials are needed. Exit 0 only when every record is valid,
    1 when any is rejected or an input cannot be read.
    """
    console = o.make_console(quiet, verbose, progress)
    settings = o.read_settings(
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
        target_options={"seg_fields": seg_fields, "separators": separators},
        workers=workers,
        allow_empty=allow_empty,
    )
    started = time.monotonic()
    run = _open(settings, console, json)
    error: str | None = None
    try:
        with run:
            run.check_all()
    except BulkctlError as exc:
        error = str(exc)
        raise
    finally:
        _finish(run, console, json, error, time.monotonic() - started)
    if run.tally.rejected:
        raise InvalidRecordsError(
            f"{run.tally.rejected:,} of {run.tally.records:,} records are invalid",
            hint=f"every rejection is in {rejects}" if rejects else "--rejects FILE lists them all",
        )


def _open(settings: "ReadSettings", console: "Console", json: bool) -> "InputRun":
    """Open the inputs; a missing file still gets its one JSON object under --json."""
    from bulkctl.run.inputs import InputRun

    try:
        return InputRun(settings, console)
    except BulkctlError as exc:
        if json:
            from bulkctl.check.validate import Tally
            from bulkctl.report.summary import print_json, validation_summary

            print_json(validation_summary(Tally(), error=str(exc)) | {"elapsed_s": 0.0})
        raise


def _finish(
    run: "InputRun", console: "Console", json: bool, error: str | None, elapsed: float
) -> None:
    from bulkctl.report.summary import print_json, render_validation, validation_summary

    if error is None:
        render_validation(console, run.tally)
    if json:
        print_json(validation_summary(run.tally, error=error) | {"elapsed_s": round(elapsed, 3)})

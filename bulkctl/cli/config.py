"""`bulkctl config`: the effective settings and where each came from (secrets never shown)."""

import sys
from typing import Annotated

import typer

from bulkctl.cli import app, complete
from bulkctl.cli import options as o
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import BulkctlError

EXAMPLES = [
    ("bulkctl config", "The settings a push would use, and their origins."),
    ("bulkctl config --profile ci --json", "One profile's, as one JSON object."),
    ("bulkctl config --target xandr-bss", "The Xandr login and member id."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 2)))
def config(
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="NAME",
            help="Show the settings of this target.",
            show_default="the profile's, else segment-bulk",
            autocompletion=complete.targets,
        ),
    ] = None,
    profile: o.ProfileName = None,
    endpoint: o.Endpoint = None,
    region: o.Region = None,
    write_key_file: o.WriteKeyFile = None,
    member_id: o.MemberId = None,
    json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, a key per setting.")
    ] = False,
) -> None:
    """Show the settings a push would use and where each came from.

    Each value comes from a flag, the environment (BULKCTL_*), the config profile or the
    default, in that order. Secrets are never shown: only "set" and where they came from.
    Give push's flags to see their effect.
    """
    from bulkctl.report.config_view import Flags, effective_settings

    console = o.make_console(False, False, None)
    flags = Flags(target, profile, endpoint, region, write_key_file, member_id)
    try:
        rows = effective_settings(flags, console)
    except BulkctlError as exc:
        if json:
            from bulkctl.report.summary import print_json

            print_json({"error": str(exc)})
        raise
    if json:
        from bulkctl.report.summary import print_json

        print_json({row.key: row.as_dict() for row in rows})
        return
    from bulkctl.jobs.view import print_fields

    print_fields(sys.stdout, [(row.label, row.text()) for row in rows])
    sys.stdout.flush()

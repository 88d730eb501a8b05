"""The Typer application and `main`, the ONE place that maps errors to messages and exit codes.

Command modules only parse options, build settings, make one call into the core and render
the result; they raise `BulkctlError`s and never call `sys.exit` themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from bulkctl import __version__
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Group
from bulkctl.errors import BulkctlError, ExitStatus

app = typer.Typer(
    name="bulkctl",
    cls=Group,
    help="Move business objects from files and database dumps into bulk ingestion APIs.",
    epilog=epilog(
        [
            ("bulkctl push rooms.ndjson", "Validate, pack and upload a file."),
            ("bulkctl validate rooms.csv -c rooms", "Check records offline, send nothing."),
            ("bulkctl status last", "What the latest push did."),
            ("bulkctl config", "The settings a push would use, and their origins."),
        ],
        (0, 1, 2, 3, 4, 5, 6, 130),
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from bulkctl.cli.versions import describe_versions

        typer.echo(describe_versions(__version__))
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the versions of bulkctl, Python and its libraries.",
    ),
    traceback: bool = typer.Option(
        False,
        "--traceback",
        envvar="BULKCTL_TRACEBACK",
        help="Show the Python traceback of an error.",
    ),
) -> None:
    """Move business objects from files and database dumps into bulk ingestion APIs."""
    if traceback:
        os.environ["BULKCTL_TRACEBACK"] = "1"


def _register_commands() -> None:
    # Imported here so that each module registers its command on `app`; the modules import
    # their heavy dependencies lazily, inside the command functions.
    for optional in (
        "push",
        "validate",
        "status",
        "jobs",
        "resume",
        "sandbox",
        "config",
        "completion",
    ):
        try:
            __import__(f"bulkctl.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bulkctl.cli.{optional}":
                raise


_register_commands()


def _show_traceback() -> bool:
    return os.environ.get("BULKCTL_TRACEBACK", "") not in ("", "0", "false")


def report_error(exc: BulkctlError) -> int:
    """Write the one-line message for an expected error and return its exit status."""
    sys.stderr.write(f"bulkctl: error: {exc}\n")
    sys.stderr.flush()
    return int(exc.exit_status)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the app on `argv` and return the exit status; tests call this, `main` exits with it."""
    if "_BULKCTL_COMPLETE" in os.environ:
        # The scripts in completions/ call back with this set; register the shells only then.
        from typer._completion_classes import completion_init

        completion_init()
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except BulkctlError as exc:
        if _show_traceback():
            import traceback

            traceback.print_exc()
        return report_error(exc)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("bulkctl: interrupted\n")
        return int(ExitStatus.INTERRUPTED)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:
        # Click's usage errors (bad option, missing argument): its own message, exit 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"bulkctl: error: {exc}\n")
        return int(getattr(exc, "exit_code", ExitStatus.USAGE))
    except Exception as exc:
        # A bug, not an expected error: say so plainly, and show the traceback only on request
        # because locals and messages of third-party errors could hold a secret.
        if _show_traceback():
            raise
        sys.stderr.write(
            f"bulkctl: internal error: {type(exc).__name__}; "
            "run again with --traceback and report it\n"
        )
        return 70
    return result if isinstance(result, int) else 0


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (cron's timeout, systemd, kill) ends a run like Ctrl-C: the open session is
    # finished with an error and spooled parts are removed, instead of dying mid-request.
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run())

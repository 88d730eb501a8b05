"""`bulkctl sandbox`: serve the local API emulators; `query`, `show`, `sessions` read the result.

Heavy modules (the server, sqlite3, rich) are imported inside the commands: every other
command pays nothing for this one.
"""

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bulkctl.cli import app
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command, Group
from bulkctl.errors import UsageError

if TYPE_CHECKING:
    import sqlite3

    from bulkctl.sandbox import RunningSandbox

sandbox_app = typer.Typer(
    name="sandbox",
    cls=Group,
    help=(
        "Run a local emulator of the target APIs that stores what it accepts in SQLite.\n\n"
        "Without a subcommand it serves until Ctrl-C, e.g. `bulkctl sandbox --port 8787`, "
        "then `export BULKCTL_ENDPOINT=http://127.0.0.1:8787`. Look at the result with "
        "`bulkctl sandbox show rooms`, `bulkctl sandbox query` and `bulkctl sandbox sessions`."
    ),
    invoke_without_command=True,
    no_args_is_help=False,
    epilog=epilog(
        [
            ("bulkctl sandbox --port 8787", "Serve until Ctrl-C; push with --endpoint to it."),
            ("bulkctl sandbox --fail-uploads 2", "The first two uploads fail with a 500."),
            ("bulkctl sandbox show rooms", "The merged rows of one collection."),
            ("bulkctl sandbox sessions", "Every session and how it ended."),
        ],
        (0, 2, 130),
    ),
)
app.add_typer(sandbox_app, name="sandbox")

ANY_WRITE_KEY = "anything"  # what the banner suggests when the sandbox takes any key
_FAULTS = "Fault injection"
_XANDR = "Xandr emulator"
_DB_HELP = "The warehouse (a SQLite file)."
_DB_DEFAULT = "sandbox.sqlite3 in the bulkctl data directory"
_JSON_HELP = "Print one JSON array of objects instead of a table."


@sandbox_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on."
    ),
    port: int = typer.Option(
        8787, "--port", metavar="N", help="Port to listen on; 0 picks a free one."
    ),
    db: Path | None = typer.Option(
        None, "--db", metavar="FILE", help=_DB_HELP, show_default=_DB_DEFAULT
    ),
    write_key: str | None = typer.Option(
        None,
        "--write-key",
        metavar="KEY",
        envvar="BULKCTL_SANDBOX_WRITE_KEY",
        show_default=False,
        help="Require HTTP Basic auth with this write key as user name and an empty password "
        "(otherwise any credentials are accepted).",
    ),
    session_timeout: float = typer.Option(
        600.0,
        "--session-timeout",
        min=0.0,
        metavar="S",
        help="Seconds without a call before a session expires.",
    ),
    fail_uploads: int = typer.Option(
        0,
        "--fail-uploads",
        min=0,
        metavar="N",
        rich_help_panel=_FAULTS,
        help="Answer 500 to the first N upload requests, e.g. `--fail-uploads 2`.",
    ),
    status_for: list[str] | None = typer.Option(
        None,
        "--status-for",
        metavar="EP=CODES",
        rich_help_panel=_FAULTS,
        help="Answer the next requests to endpoint EP with these statuses (comma-separated, one "
        "per request) before answering normally; EP is start, upload, finish or keep-alive "
        "(Segment Bulk), set (Segment Objects) or auth, batch-segment, batch-segment-status, "
        "segment-upload (Xandr), "
        "e.g. `--status-for upload=503,503` (repeatable).",
    ),
    retry_after: int | None = typer.Option(
        None,
        "--retry-after",
        min=0,
        metavar="S",
        rich_help_panel=_FAULTS,
        help="Send `Retry-After: S` with forced 429 and 503 answers, e.g. `--retry-after 2`.",
    ),
    latency: float = typer.Option(
        0.0,
        "--latency",
        min=0.0,
        metavar="MS",
        rich_help_panel=_FAULTS,
        help="Wait this many milliseconds before answering each request, e.g. `--latency 250`.",
    ),
    drop_connection_on: int | None = typer.Option(
        None,
        "--drop-connection-on",
        min=1,
        metavar="N",
        rich_help_panel=_FAULTS,
        help="Close the connection without answering the Nth request (1-based, all endpoints), "
        "e.g. `--drop-connection-on 3`.",
    ),
    late_upload: list[int] | None = typer.Option(
        None,
        "--late-upload",
        min=1,
        metavar="N",
        rich_help_panel=_FAULTS,
        help="Hold the Nth upload request (1-based, repeatable): read in full, it is applied "
        "only when its session is finished (after uploads sent since) and answered then, "
        "e.g. `--late-upload 1`.",
    ),
    late_drop: bool = typer.Option(
        False,
        "--late-drop",
        rich_help_panel=_FAULTS,
        help="With --late-upload: close the held upload's connection at once without an answer.",
    ),
    out_of_order: bool = typer.Option(
        False,
        "--out-of-order",
        rich_help_panel=_FAULTS,
        help="Objects API: apply each /v1/set request without `Synchronous: true` after the "
        "next one (answered at once), as the asynchronous API may.",
    ),
    max_in_flight: int = typer.Option(
        20,
        "--max-in-flight",
        min=1,
        metavar="N",
        rich_help_panel=_FAULTS,
        help="Requests handled at once; more get 429 with `Retry-After: 1`, "
        "e.g. `--max-in-flight 5`.",
    ),
    xandr_seg_fields: str | None = typer.Option(
        None,
        "--xandr-seg-fields",
        metavar="FIELDS",
        rich_help_panel=_XANDR,
        show_default="SEG_ID,EXPIRATION",
        help="The member's configured segment fields; lines written for other fields are "
        "reported invalid, e.g. `--xandr-seg-fields SEG_ID`.",
    ),
    xandr_fail_jobs: str | None = typer.Option(
        None,
        "--xandr-fail-jobs",
        metavar="CODE",
        rich_help_panel=_XANDR,
        help="End every job in phase `error` with this error_code, "
        "e.g. `--xandr-fail-jobs HOURLY_LINES_LIMIT_EXCEEDED`.",
    ),
    xandr_polls_per_phase: int = typer.Option(
        1,
        "--xandr-polls-per-phase",
        min=1,
        metavar="N",
        rich_help_panel=_XANDR,
        help="Status requests a job stays in each phase (to watch `status --wait` follow it).",
    ),
    xandr_segments: str | None = typer.Option(
        None,
        "--xandr-segments",
        metavar="IDS",
        rich_help_panel=_XANDR,
        help="The only segment ids the member has; others are counted in num_invalid_segment "
        "and their jobs complete with rejections, e.g. `--xandr-segments 10000,10001`.",
    ),
    xandr_data_provider: bool = typer.Option(
        False,
        "--xandr-data-provider",
        rich_help_panel=_XANDR,
        help="Answer job requests as a one-element array, as for data-provider logins.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not log each request."),
) -> None:
    """Serve the Segment Objects Bulk API, the Segment Objects API and the Xandr Batch Segment
    Service on HOST:PORT until Ctrl-C, storing into the warehouse."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = db  # `bulkctl sandbox --db X show rooms` reads X too
        return
    from bulkctl.sandbox import (
        Faults,
        XandrConfig,
        default_db_path,
        parse_status_for,
        start_sandbox,
    )

    try:
        faults = Faults(
            fail_uploads=fail_uploads,
            status_for=parse_status_for(status_for or []),
            retry_after=retry_after,
            latency_ms=latency,
            drop_connection_on=drop_connection_on,
            late_uploads=frozenset(late_upload or ()),
            late_drop=late_drop,
            out_of_order=out_of_order,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    xandr = XandrConfig(
        fail_jobs=xandr_fail_jobs or None,
        polls_per_phase=xandr_polls_per_phase,
        data_provider=xandr_data_provider,
    )
    if xandr_seg_fields is not None:
        fields = tuple(field.strip() for field in xandr_seg_fields.split(","))
        if not all(fields):
            raise UsageError(f"--xandr-seg-fields {xandr_seg_fields!r}: give names like SEG_ID")
        xandr = replace(xandr, fields=fields)
    if xandr_segments is not None:
        ids = [text.strip() for text in xandr_segments.split(",")]
        if not all(text.isdigit() for text in ids):
            raise UsageError(f"--xandr-segments {xandr_segments!r}: give ids like 10000,10001")
        xandr = replace(xandr, known_segments=frozenset(int(text) for text in ids))
    sandbox = start_sandbox(
        db or default_db_path(),
        host=host,
        port=port,
        write_key=write_key or None,
        faults=faults,
        session_timeout=session_timeout,
        log=None if quiet else sys.stderr,
        xandr=xandr,
        max_in_flight=max_in_flight,
    )
    _announce(sandbox, auth=bool(write_key), faults=faults.any, quiet=quiet)
    try:
        _wait_for_signal()
    finally:
        sandbox.stop()
    if not quiet:
        sys.stderr.write("bulkctl sandbox: stopped\n")


def _announce(sandbox: "RunningSandbox", *, auth: bool, faults: bool, quiet: bool) -> None:
    lines = [
        f"bulkctl sandbox: Segment Objects Bulk API at {sandbox.url}",
        f"bulkctl sandbox: Segment Objects API (POST /v1/set) at {sandbox.url}",
        f"bulkctl sandbox: Xandr Batch Segment Service at {sandbox.url} (any user and password)",
        f"export BULKCTL_ENDPOINT={sandbox.url}",
    ]
    if not auth:  # push always wants a key; say which one this sandbox takes
        lines.append(f"export BULKCTL_WRITE_KEY={ANY_WRITE_KEY}")
    if not quiet:
        lines.append(f"warehouse: {sandbox.db_path.resolve()}")
        lines.append(
            "auth: Basic, the --write-key value as user name (export it as BULKCTL_WRITE_KEY)"
            if auth
            else "auth: any write key works (pass --write-key to require one)"
        )
        if faults:
            lines.append("faults: injected as configured (see --help)")
        lines.append("Ctrl-C to stop")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM; both end the server cleanly."""
    import signal
    import threading

    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        stop.wait()  # only the main thread can take signals; wait for the process to end
        return

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@sandbox_app.command("query", cls=Command)
def query(
    ctx: typer.Context,
    sql: str = typer.Argument(
        ..., metavar="SQL", help='One SQL statement, e.g. "SELECT * FROM rooms".'
    ),
    db: Path | None = typer.Option(
        None, "--db", metavar="FILE", help=_DB_HELP, show_default=_DB_DEFAULT
    ),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Run a read-only SQL query on the warehouse and print the rows."""
    import sqlite3

    with _open(db or ctx.obj) as conn:
        try:
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or ()]
            _render(columns, cursor, as_json=as_json)
        except sqlite3.Error as exc:
            raise UsageError(f"SQLite: {exc}") from None


@sandbox_app.command("show", cls=Command)
def show(
    ctx: typer.Context,
    collection: str = typer.Argument(
        ..., metavar="COLLECTION", help="The collection (table), e.g. rooms."
    ),
    db: Path | None = typer.Option(
        None, "--db", metavar="FILE", help=_DB_HELP, show_default=_DB_DEFAULT
    ),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    limit: int | None = typer.Option(
        None, "--limit", min=0, metavar="N", help="Show at most N rows."
    ),
) -> None:
    """Print a collection's rows (one per object id) in the order they first arrived."""
    from bulkctl.sandbox.warehouse import list_collections, quote_ident

    with _open(db or ctx.obj) as conn:
        names = list_collections(conn)
        if collection not in names:
            listed = ", ".join(names) if names else "none yet"
            raise UsageError(
                f"no collection {collection!r} in the warehouse (collections: {listed})"
            )
        sql = f"SELECT * FROM {quote_ident(collection)} ORDER BY rowid"
        cursor = (
            conn.execute(sql + " LIMIT ?", (limit,)) if limit is not None else conn.execute(sql)
        )
        _render([d[0] for d in cursor.description], cursor, as_json=as_json)


@sandbox_app.command("sessions", cls=Command)
def sessions(
    ctx: typer.Context,
    db: Path | None = typer.Option(
        None, "--db", metavar="FILE", help=_DB_HELP, show_default=_DB_DEFAULT
    ),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """List upload sessions: status (open, finished, discarded, expired, failed), parts, objects."""
    import sqlite3

    from bulkctl.sandbox.warehouse import SESSIONS_TABLE

    with _open(db or ctx.obj) as conn:
        try:
            cursor = conn.execute(
                "SELECT id, status, created, finished, parts, objects, bytes, error "
                f"FROM {SESSIONS_TABLE} ORDER BY created, rowid"
            )
        except sqlite3.Error as exc:
            raise UsageError(f"not a sandbox warehouse: {exc}") from None
        _render([d[0] for d in cursor.description], cursor, as_json=as_json)


@contextmanager
def _open(db: Path | None) -> "Iterator[sqlite3.Connection]":
    """The warehouse opened read-only; a missing or unreadable file is a usage error."""
    import sqlite3

    from bulkctl.sandbox import default_db_path
    from bulkctl.sandbox.warehouse import connect_readonly

    path = db or default_db_path()
    if not path.is_file():
        raise UsageError(
            f"no sandbox warehouse at {path}",
            hint="run `bulkctl sandbox` and push to it, or pass --db PATH",
        )
    try:
        conn = connect_readonly(path)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()


def _render(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, as_json: bool) -> None:
    """Rows as one JSON array, a rich table on a terminal, or tab-separated text otherwise."""
    out = sys.stdout
    if as_json:
        import orjson

        separator = "[\n  "
        for row in rows:
            item = orjson.dumps(dict(zip(columns, row, strict=True)), default=_blob)
            out.write(separator + item.decode())
            separator = ",\n  "
        out.write("[]\n" if separator.startswith("[") else "\n]\n")
    elif out.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for name in columns:
            table.add_column(Text(name), overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(v)) for v in row))
        Console(highlight=False).print(table)
    else:
        out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join(_cell(v) for v in row) + "\n")
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return _blob(value)
    return str(value).replace("\t", "\\t").replace("\n", "\\n")


def _blob(value: Any) -> str:
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    raise TypeError(type(value).__name__)

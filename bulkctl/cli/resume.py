"""`bulkctl resume JOB`: continue a push that was interrupted (killed, machine rebooted)."""

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkctl.cli import app, complete
from bulkctl.cli import options as o
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import BulkctlError

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.jobs.store import JobStore
    from bulkctl.run.resume import ResumePlan


EXAMPLES = [
    ("bulkctl resume last", "Continue the latest push, e.g. after a reboot."),
    ("bulkctl resume 20261122-7kq3 --json", "One job, with the push's JSON summary."),
    ("bulkctl resume last --force", "Even though its process seems to be running."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 1, 2, 3, 4, 6, 130)))
def resume(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            help="The local job id, the remote id, or `last`.",
            show_default=False,
            autocompletion=complete.job_ids,
        ),
    ],
    profile: o.ProfileName = None,
    write_key_file: o.WriteKeyFile = None,
    max_attempts: o.MaxAttempts = 8,
    max_retry_time: o.MaxRetryTime = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Resume even though the job's push process seems to be running.",
            rich_help_panel=o.SENDING,
        ),
    ] = False,
    allow_insecure_http: o.AllowInsecureHttp = False,
    json: o.Json = False,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
    progress: o.ShowProgress = None,
) -> None:
    """Continue a push that was cut short, from its spooled parts or its inputs.

    When every spooled part is still on disk and intact, they are sent without reading the
    input again: into the push's session if it is still open (the parts it did not
    acknowledge), else into a new session (all of them; the API merges objects by id, so parts
    sent twice are applied as if once). Otherwise the inputs are read again, the way the push
    read them. A push that read standard input and whose parts are gone cannot be resumed.
    """
    from bulkctl.run.resume import claim, plan_resume, reread_paths
    from bulkctl.send.retry import RetryPolicy

    console = o.make_console(quiet, verbose, progress)
    policy = RetryPolicy.from_options(max_attempts, max_retry_time)
    failure = {"job": job, "target": None, "status": "failed"}
    with o.open_store(json, console, **failure) as store:
        try:
            plan = plan_resume(store, job, force=force)
            paths = () if plan.spooled else reread_paths(plan.job)
            claim(store, plan.job, rereading=not plan.spooled)
        except BulkctlError as exc:
            if json:
                o.print_failure(failure, exc)
            raise
        connect = {"endpoint": plan.job.endpoint or None, "key_file": write_key_file}
        if plan.spooled:
            _send_spooled(store, plan, console, json, policy, connect, profile, allow_insecure_http)
            return
    console.info(f"job {plan.job.id}: {plan.problem}; reading its input again")
    _reread(plan, paths, console, json, policy, connect, profile, allow_insecure_http)


def _connect(connect: dict[str, Any], profile: str | None, console: "Console") -> Any:
    from bulkctl.settings import load_profile
    from bulkctl.targets import profile_keys
    from bulkctl.targets.base import ConnectSettings

    known = profile_keys()
    return ConnectSettings(
        profile=load_profile(profile, console, known), console=console, **connect
    )


def _lanes(row: Any) -> int:
    """The push's lane count: resuming with the same lanes re-creates the same parts."""
    return max(1, min(int(row.options.get("lanes") or 1), 20))


def _send_spooled(
    store: "JobStore",
    plan: "ResumePlan",
    console: "Console",
    json: bool,
    policy: Any,
    connect: dict[str, Any],
    profile: str | None,
    allow_insecure_http: bool,
) -> None:
    from bulkctl.cli.push import _render
    from bulkctl.run.push import Push, PushSettings
    from bulkctl.run.resume import parts_to_send, read_settings_of, rejoin, remove_spool_dirs
    from bulkctl.send.remote import is_atomic
    from bulkctl.targets import build

    row = plan.job
    read = read_settings_of(row, tuple(row.inputs))
    built = build(row.target, read.target_options, _connect(connect, profile, console))
    target, remote = built.target, built.remote
    if remote is None:  # pragma: no cover - build() makes one when given how to connect
        raise BulkctlError("internal: no remote to resume with")
    atomic = is_atomic(remote)
    rejoined = rejoin(remote, row, policy, console)
    to_send = parts_to_send(plan.parts, rejoined=rejoined, atomic=atomic)
    if rejoined:
        console.info(
            f"{remote.noun} {row.remote_id} is still open: sending {len(to_send)} of "
            f"{len(plan.parts)} parts"
        )
    elif atomic:
        store.reset_parts(row.id)
        console.info(
            f"starting a new {remote.noun} and sending all {len(to_send)} spooled parts again "
            "(objects merge by id, so parts sent before are applied as if once)"
        )
    settings = PushSettings(
        read=read,
        target=target,
        remote=remote,
        concurrency=_lanes(row),
        retry=policy,
        allow_insecure_http=allow_insecure_http,
    )
    pushed = Push(settings, console, store)
    started = time.monotonic()
    interrupted = False
    try:
        pushed.send_stored(row.id, plan.parts, to_send)
    except BulkctlError as exc:
        interrupted = exc.exit_status == 130
        raise
    finally:
        pushed.summary.elapsed_s = time.monotonic() - started
        _render(pushed, console, json, interrupted, pushed.summary.elapsed_s)
    remove_spool_dirs(plan.parts)


def _reread(
    plan: "ResumePlan",
    paths: tuple[str, ...],
    console: "Console",
    json: bool,
    policy: Any,
    connect: dict[str, Any],
    profile: str | None,
    allow_insecure_http: bool,
) -> None:
    from bulkctl.cli.push import _run_push, _settings
    from bulkctl.run.resume import read_settings_of

    row = plan.job
    read = read_settings_of(row, paths)
    options: dict[str, Any] = {
        "concurrency": _lanes(row),
        "allow_insecure_http": allow_insecure_http,
        "retry": policy,
        "dry_run": False,
        "spool_dir": _spool_dir(row.options.get("spool_dir"), console),
    }
    part_size = row.options.get("part_size")
    settings = _settings(
        read, options, str(part_size) if part_size else None, _connect(connect, profile, console)
    )
    _run_push(replace(settings, resume_job=row.id), console, json)


def _spool_dir(recorded: str | None, console: "Console") -> Path | None:
    """The push's --spool-dir, unless it is gone (a reboot, a clean-up): then the temp dir."""
    if not recorded:
        return None
    if not Path(recorded).is_dir():
        console.info(f"its spool directory {recorded} is gone: spooling in the temp dir instead")
        return None
    return Path(recorded)

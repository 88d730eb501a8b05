"""Remote jobs (targets whose API processes an upload later): wait, combine, report, list.

Shared by `push --wait`, `status JOB --wait` and `jobs --remote`. A push may have sent several
parts, each its own remote job (Xandr: one job a file); they are polled together and combined
into one state: failed if any failed, final when all are. Requests go through one `Caller`
(retries, Retry-After, deadlines), so every command honours the same limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bulkctl.errors import InputError, RemoteJobFailedError, UsageError
from bulkctl.send.remote import Call, JobsRemote, Remote, RemoteStatus

if TYPE_CHECKING:
    from bulkctl.console import Console
    from bulkctl.jobs.store import JobRow
    from bulkctl.send.retry import RetryPolicy

DEFAULT_INTERVAL = 2.0
MAX_INTERVAL = 60.0


@contextmanager
def remote_call(remote: Remote, policy: RetryPolicy, console: Console) -> Iterator[Call]:
    """A `call` for status and history requests: a client of its own, retries reported."""
    from bulkctl.report.progress import describe_retry
    from bulkctl.send.caller import Caller
    from bulkctl.send.http import build_client

    with build_client(remote.auth) as client:
        caller = Caller(client, policy, on_retry=lambda event: console.info(describe_retry(event)))
        yield caller.bind()


@dataclass(frozen=True)
class JobsState:
    """The remote jobs of one push, combined."""

    jobs: tuple[RemoteStatus, ...]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return all(job.final for job in self.jobs)

    @property
    def failed(self) -> bool:
        return any(job.failed for job in self.jobs)

    @property
    def phase(self) -> str:
        """The failed job's phase, else the phase of the job furthest behind."""
        for job in self.jobs:
            if job.failed:
                return job.phase
        for job in self.jobs:
            if not job.final:
                return job.phase
        return self.jobs[-1].phase if self.jobs else "unknown"

    @property
    def rejected(self) -> dict[str, int]:
        """The API's rejection counts (Xandr's num_invalid_*), summed over the jobs."""
        total: dict[str, int] = {}
        for job in self.jobs:
            for name, value in job.rejected.items():
                total[name] = total.get(name, 0) + value
        return total

    @property
    def outcome(self) -> str:
        """The status a push or `status` reports: the phase, or `completed_with_rejections`
        when every job is final and the API rejected part of what it was sent."""
        from bulkctl.jobs.store import WITH_REJECTIONS

        if self.final and not self.failed and self.rejected:
            return self.phase + WITH_REJECTIONS
        return self.phase

    @property
    def percent(self) -> float | None:
        values = [100.0 if j.final else j.percent for j in self.jobs]
        known = [v for v in values if v is not None]
        return sum(known) / len(values) if known else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "final": self.final,
            "failed": self.failed,
            "counts": self.counts,
            "rejected": self.rejected,
            "jobs": [job.as_dict() for job in self.jobs],
        }

    def failure(self, job: str | None = None) -> RemoteJobFailedError | None:
        """The error to exit 5 with: a job ended in a failed state, or completed with records
        the API rejected (any num_invalid_* above 0). `job` is the local id hints name."""
        see = f"`bulkctl status {job}` shows the error lines" if job else None
        bad = [j for j in self.jobs if j.failed]
        if bad:
            what = "; ".join(
                f"job {j.remote_id} ended in {j.phase}: {j.error or 'no reason given'}" for j in bad
            )
            return RemoteJobFailedError(what, hint=see or "see the job's error lines")
        if not self.final or not self.rejected:
            return None
        counts = ", ".join(f"{name} {value:,}" for name, value in self.rejected.items())
        valid = self.counts.get("num_valid")
        applied = f" ({valid:,} valid)" if valid is not None else ""
        noun = "job" if len(self.jobs) == 1 else "jobs"
        return RemoteJobFailedError(
            f"the API rejected part of what it was sent: {noun} completed with {counts}{applied}",
            hint=(see + "; --rejects FILE keeps them") if see else None,
        )


def combine(jobs: Sequence[RemoteStatus]) -> JobsState:
    """Several jobs as one state, their counts summed."""
    counts: dict[str, int] = {}
    for job in jobs:
        for name, value in job.counts.items():
            counts[name] = counts.get(name, 0) + value
    return JobsState(tuple(jobs), counts)


def fetch_all(
    call: Call, remote: JobsRemote, ids: Sequence[str], known: JobsState | None
) -> JobsState:
    """The state of every job, asking again only about those not final yet."""
    before = {job.remote_id: job for job in known.jobs} if known is not None else {}
    jobs = []
    for remote_id in ids:
        previous = before.get(remote_id)
        jobs.append(previous if previous and previous.final else remote.status(call, remote_id))
    return combine(jobs)


def wait_for_jobs(
    call: Call,
    remote: JobsRemote,
    ids: Sequence[str],
    *,
    timeout: float | None,
    interval: float = DEFAULT_INTERVAL,
    on_change: Callable[[JobsState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    job: str | None = None,
) -> JobsState:
    """Poll until every job is final (WaitTimeoutError, exit 4, after `timeout` seconds).

    `job` is the local job id the timeout's hint names (else the first remote id): waiting
    again is the way on, never `resume`, which would have nothing left to send.
    """
    from bulkctl.jobs.polling import poll_until_final

    seen: list[JobsState] = []

    def fetch() -> JobsState:
        state = fetch_all(call, remote, ids, seen[-1] if seen else None)
        seen[:] = [state]
        return state

    return poll_until_final(
        fetch,
        lambda state: state.final,
        interval=interval,
        timeout=timeout,
        on_change=on_change,
        key=lambda state: (state.phase, None if state.percent is None else round(state.percent)),
        describe=lambda state: state.phase,
        hint=f"the API may take long; `bulkctl status {job or ids[0]} --wait` waits again",
        max_interval=MAX_INTERVAL,
        sleep=sleep,
    )


class WaitLines:
    """One line on standard error each time the combined phase or percentage changes.

    On a terminal (with progress on) a bar shows `percent_complete` instead; `close` ends it.
    """

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, state: JobsState) -> None:
        percent = state.percent
        if self.console.show_progress:
            self._show(state.phase, percent)
            return
        done = f" ({percent:.0f}%)" if percent is not None else ""
        self.console.info(f"{time.strftime('%H:%M:%S')} {self.label}: {state.phase}{done}")

    def _show(self, phase: str, percent: float | None) -> None:
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._bar = Progress(
                TextColumn(self.label),
                TextColumn("{task.fields[phase]}"),
                BarColumn(),
                TaskProgressColumn(),
                console=self.console.rich(),
                transient=True,
            )
            self._task = self._bar.add_task("wait", total=100.0, phase=phase)
            self._bar.start()
        self._bar.update(self._task, completed=percent or 0.0, phase=phase)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def append_error_lines(path: Path, state: JobsState) -> int:
    """Add each job's error lines to the rejects file (NDJSON, like every rejection)."""
    written = 0
    try:
        with path.open("ab") as out:
            for job in state.jobs:
                for text in job.error_lines:
                    entry = {
                        "source": f"remote job {job.remote_id}",
                        "line": None,
                        "errors": [{"field": None, "rule": "remote", "message": text}],
                        "record": None,
                    }
                    out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
                    written += 1
    except OSError as exc:
        raise InputError(f"cannot write the rejects file {path}: {exc.strerror}") from exc
    return written


def history(call: Call, remote: JobsRemote, limit: int) -> list[RemoteStatus]:
    """Up to `limit` jobs of the remote upload history, page by page."""
    jobs: list[RemoteStatus] = []
    start: int | None = 0
    while start is not None and len(jobs) < limit:
        page = remote.history(call, start)
        jobs.extend(page.jobs)
        start = page.next_start
    return jobs[:limit]


def connect(
    target_name: str,
    console: Console,
    *,
    options: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    profile: str | None = None,
) -> JobsRemote:
    """A target's remote for status and history: endpoint and credentials as for a push.

    A UsageError when the target has no remote jobs (segment-bulk's API has no status).
    """
    from bulkctl.settings import load_profile
    from bulkctl.targets import build, profile_keys, target_class
    from bulkctl.targets.base import ConnectSettings

    cls = target_class(target_name)
    given = {k: v for k, v in (options or {}).items() if k in cls.options}
    settings = ConnectSettings(
        profile=load_profile(profile, console, profile_keys()), console=console, endpoint=endpoint
    )
    remote = build(target_name, given, settings).remote
    if not isinstance(remote, JobsRemote):
        raise UsageError(f"{target_name} has no remote jobs: its API has no status to ask")
    return remote


def job_remote(job: JobRow, console: Console) -> JobsRemote | None:
    """The remote of a stored push whose target has remote jobs, else None.

    Built from what the store recorded (the endpoint and options such as the member id); the
    credentials come from the environment or the profile, as for a push.
    """
    from bulkctl.targets import target_class

    try:
        cls = target_class(job.target)
    except UsageError:
        return None
    if not cls.remote_jobs:
        return None
    endpoint = job.endpoint or None
    return connect(job.target, console, options=job.options, endpoint=endpoint)


def sent_ids(parts: Sequence[Any]) -> list[str]:
    """The remote job ids of a stored push (its parts' ids, in order)."""
    return [str(p.part_id) for p in parts if getattr(p, "part_id", None)]


def follow_stored(
    job: JobRow,
    ids: Sequence[str],
    console: Console,
    *,
    wait: bool,
    interval: float,
    timeout: float | None,
) -> JobsState:
    """`status JOB [--wait]` for a push whose target has remote jobs: ask its API.

    `timeout` None means the target's own processing time (24 h for xandr-bss); 0 no limit.
    Raises WaitTimeoutError (exit 4) when --wait gives up; the caller renders `exc.last`.
    """
    from bulkctl.send.retry import RetryPolicy
    from bulkctl.targets import target_class

    remote = job_remote(job, console)
    if remote is None:
        raise UsageError(f"{job.target} has no remote jobs")
    if timeout is None:
        timeout = target_class(job.target).wait_timeout
    with remote_call(remote, RetryPolicy(), console) as call:
        if not wait:
            return fetch_all(call, remote, ids, None)
        display = WaitLines(console, f"job {job.id}")
        try:
            return wait_for_jobs(
                call,
                remote,
                ids,
                timeout=timeout or None,
                interval=interval,
                on_change=display,
                job=job.id,
            )
        finally:
            display.close()


def state_fields(state: JobsState) -> list[tuple[str, str]]:
    """The key/value lines `status` adds for the remote jobs."""
    percent = state.percent
    rows = [
        ("remote phase", state.phase + (f" ({percent:.0f}%)" if percent is not None else "")),
        ("remote jobs", ", ".join(job.remote_id for job in state.jobs)),
    ]
    rows.extend((name, f"{value:,}") for name, value in sorted(state.counts.items()))
    for job in state.jobs:
        if job.error:
            rows.append(("remote error", f"{job.remote_id}: {job.error}"))
        for text in job.error_lines[:20]:
            rows.append(("error line", text))
    return rows

"""The one error tree of bulkctl, and the exit codes of the CLI contract.

Every expected failure is a `BulkctlError`; the CLI turns it into one line on standard error
and the exit status its class names, in exactly one place (`bulkctl.cli.main`). Lower-layer
errors (httpx, OSError, gzip, csv) are translated into this tree at the boundary where they
happen, so callers never see them::

    BulkctlError                    (exit 4 unless a subclass says otherwise)
    ├── UsageError                  2  bad option or argument found after parsing
    ├── InputError                  1  an input cannot be read (missing, not UTF-8, truncated gz)
    ├── InvalidRecordsError         1  at least one record was rejected
    ├── CredentialsError            3  no credentials, or the API refused them (401/403)
    ├── ApiError                    4  the API or network failed and retries did not help
    │   └── OutcomeUnknownError     4  a request may or may not have been applied
    ├── RemoteJobFailedError        5  the remote job ended in a failed state
    ├── LocalStateError             6  the job store or the spool directory cannot be used
    │   └── JobStoreError           6  the job store: locked, damaged, not a database, disk full
    └── InterruptedError_           130 SIGINT / SIGTERM

Messages never contain a secret: callers pass redacted URLs and never the key itself.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes from CLI.md; scripts and cron jobs depend on these numbers."""

    OK = 0
    INVALID_INPUT = 1
    USAGE = 2
    CREDENTIALS = 3
    API_FAILURE = 4
    REMOTE_JOB_FAILED = 5
    LOCAL_STATE = 6
    INTERRUPTED = 130


class BulkctlError(Exception):
    """Root of every expected failure; carries its own fix-it hint and exit status."""

    exit_status: ExitStatus = ExitStatus.API_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(BulkctlError):
    """A bad option or combination of options that the parser could not catch."""

    exit_status = ExitStatus.USAGE


class InputError(BulkctlError):
    """An input could not be read or decoded; the message names the file and line or offset."""

    exit_status = ExitStatus.INVALID_INPUT


class InvalidRecordsError(BulkctlError):
    """At least one record broke the target's rules (under `--on-invalid fail`)."""

    exit_status = ExitStatus.INVALID_INPUT


class CredentialsError(BulkctlError):
    """No credentials were found, or the API refused them."""

    exit_status = ExitStatus.CREDENTIALS


class ApiError(BulkctlError):
    """The API or the network failed and retrying did not help."""

    exit_status = ExitStatus.API_FAILURE

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status_code: int | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.attempts = attempts


class OutcomeUnknownError(ApiError):
    """A request was sent but no answer came back: it may or may not have been applied."""


class RemoteJobFailedError(BulkctlError):
    """The remote job finished in a failed state."""

    exit_status = ExitStatus.REMOTE_JOB_FAILED


class LocalStateError(BulkctlError):
    """A local file bulkctl needs (the job store, the spool directory) cannot be used.

    Not the API's fault, so not exit 4: the message names the file and the fix (move it aside,
    free space, `BULKCTL_HOME`, `--spool-dir`), and push finds it before anything is sent.
    """

    exit_status = ExitStatus.LOCAL_STATE


class JobStoreError(LocalStateError):
    """The job store itself failed; what failed is not recorded in it again."""


class InterruptedError_(BulkctlError):
    """The run was interrupted by SIGINT or SIGTERM."""

    exit_status = ExitStatus.INTERRUPTED

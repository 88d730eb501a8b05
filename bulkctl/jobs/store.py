"""The local job registry: what every push sent where, so `jobs`, `status` and `resume` can tell.

SQLite in WAL mode; every write is its own short `BEGIN IMMEDIATE` transaction, so two cron jobs
pushing at once both get recorded. A write that finds the store locked by another process says
so once on standard error and waits up to `BULKCTL_STORE_TIMEOUT` seconds (default 60), long
enough for any other bulkctl's transaction. Every failure of the store itself (locked, not a
database, damaged, disk full, a directory in its place) is a `JobStoreError` (exit 6) that names
the file and the fix. Upload threads share one connection behind a lock. The schema version
lives in `PRAGMA user_version` and the ordered `MIGRATIONS` are applied under the write lock
when the store opens, so two processes opening a fresh file at once do not race. No secret is
ever stored: the API has no field for one, and URLs are stripped of their user info (Segment's
write key travels as the user name) on the way in.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from bulkctl import paths
from bulkctl.errors import BulkctlError, JobStoreError, LocalStateError, UsageError
from bulkctl.jobs.rows import FINAL_STATUSES, WITH_REJECTIONS, JobRow, PartRow, new_job_id, utc_now
from bulkctl.jobs.schema import JOB_COLUMNS, JOB_FIELDS, MIGRATIONS, PART_COLUMNS, job_row, part_row
from bulkctl.pack.parts import Part
from bulkctl.redact import redact_urls

__all__ = [
    "FINAL_STATUSES",
    "MIGRATIONS",
    "WITH_REJECTIONS",
    "JobRow",
    "JobStore",
    "PartRow",
    "new_job_id",
    "store_timeout",
    "utc_now",
]

STORE_NAME = "jobs.sqlite3"
TIMEOUT_ENV = "BULKCTL_STORE_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0  # a write waits this long for another process's lock
NOTICE_AFTER_S = 1.0  # a lock held longer than this is told on standard error
_ID_ATTEMPTS = 20
_SECRET_OPTION = re.compile(r"(^|_)(key|write_key|api_key|password|secret|token)$", re.IGNORECASE)


def _check_options(options: Mapping[str, Any]) -> str:
    for name in options:
        if _SECRET_OPTION.search(name):
            raise ValueError(f"option {name!r} looks like a secret; the job store keeps none")
    return redact_urls(json.dumps(dict(options), default=str, sort_keys=True))


def store_timeout() -> float:
    """Seconds a write waits for a lock held by another process (`BULKCTL_STORE_TIMEOUT`)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise UsageError(f"{TIMEOUT_ENV}={text!r}: give a number of seconds, 0 or more")
    return value


def _stderr_notice(message: str) -> None:
    sys.stderr.write(f"bulkctl: {message}\n")
    sys.stderr.flush()


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL


class JobStore:
    """The SQLite job registry; safe to share between threads and with other processes.

    `on_wait` is told once when a write has to wait for another process's lock (default: a
    line on standard error), so a stalled push says why.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        new_id: Callable[[], str] = new_job_id,
        on_wait: Callable[[str], None] = _stderr_notice,
    ) -> None:
        self.timeout = store_timeout()
        self._new_id = new_id
        self._on_wait = on_wait
        self._waited = False
        self._lock = threading.Lock()
        self.path = path if path is not None else Path(STORE_NAME)
        try:
            if path is None:
                self.path = paths.data_dir() / STORE_NAME
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file")
            busy_s = min(NOTICE_AFTER_S, self.timeout)
            self._conn = sqlite3.connect(
                self.path, timeout=busy_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_s * 1000)}")
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._error(exc) from exc
        except BulkctlError:
            self._conn.close()
            raise

    def check(self) -> None:
        """Read every page once (`PRAGMA quick_check`), so a damaged store is found before a
        push sends anything rather than in the middle of it."""
        rows = self._read("PRAGMA quick_check")
        problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
        if problems:
            raise self._damaged(f"it is damaged ({problems[0]})")

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when this is the last one)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------

    def create_job(
        self,
        target: str,
        endpoint: str,
        inputs: Sequence[str | Path],
        options: Mapping[str, Any],
    ) -> str:
        """Record a new job in status 'created' and return its short id."""
        now = utc_now()
        values = (
            target,
            redact_urls(endpoint),
            json.dumps([str(item) for item in inputs]),
            _check_options(options),
            "created",
            now,
            now,
        )
        for _ in range(_ID_ATTEMPTS):
            job_id = self._new_id()
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO jobs (id, target, endpoint, inputs, options, status,"
                        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (job_id, *values),
                    )
            except sqlite3.IntegrityError:
                continue  # that id is taken: draw another
            return job_id
        raise LocalStateError(
            f"could not find a free job id after {_ID_ATTEMPTS} tries in {self.path}"
        )

    def update_job(self, job_id: str, **changes: Any) -> None:
        """Set some of a job's fields; a final status also stamps `finished_at`."""
        unknown = set(changes) - JOB_FIELDS
        if unknown:
            raise ValueError(
                f"cannot update {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(JOB_FIELDS))}"
            )
        values = dict(changes)
        now = utc_now()
        if "options" in values:
            values["options"] = _check_options(values["options"])
        if isinstance(values.get("error"), str):
            values["error"] = redact_urls(values["error"])
        if values.get("status") in FINAL_STATUSES and "finished_at" not in values:
            values["finished_at"] = now
        values["updated_at"] = now
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id)
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no job {job_id!r} in the job store")

    def add_parts(self, job_id: str, parts: Sequence[Part]) -> None:
        """Record spooled parts (status 'spooled'), all in one transaction."""
        rows = [
            (
                job_id,
                p.number,
                p.lane,
                p.lane_seq,
                str(p.path),
                p.records,
                p.bytes_uncompressed,
                p.bytes_compressed,
                p.sha256,
                p.part_id,
                p.attempts,
            )
            for p in parts
        ]
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO parts (job_id, number, lane, lane_seq, path, records,"
                    " bytes_uncompressed, bytes_compressed, sha256, part_id, attempts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                f"job {job_id!r} is unknown or already has one of these parts"
            ) from exc

    def mark_part_uploaded(self, job_id: str, number: int, part_id: str, attempts: int) -> None:
        """Note that the API accepted a part, under which id and after how many attempts."""
        self._set_part(
            job_id,
            number,
            "status = 'uploaded', part_id = ?, attempts = ?, uploaded_at = ?",
            (part_id, attempts, utc_now()),
        )

    def add_requests(
        self, job_id: str, requests: Sequence[tuple[int, int, int, str | None]]
    ) -> None:
        """Note requests the API accepted, as (part, seq, records, remote id): request `seq`
        (0-based) of part `part` was applied with the `records` it carried. One transaction."""
        stamp = utc_now()
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO requests (job_id, part, seq, records, remote_id, acked_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(job_id, *request, stamp) for request in requests],
            )

    def acknowledged(self, job_id: str) -> dict[int, tuple[int, int]]:
        """Per part number: (its first requests acknowledged, the records they carried).

        A lane sends its requests one after another, so the acknowledged ones of a part are
        always its first ones; the count is taken from the highest, not the number of rows.
        """
        rows = self._read(
            "SELECT part, MAX(seq) + 1, SUM(records) FROM requests WHERE job_id = ? GROUP BY part",
            (job_id,),
        )
        return {int(row[0]): (int(row[1]), int(row[2])) for row in rows}

    def mark_part_failed(self, job_id: str, number: int, attempts: int) -> None:
        """Note that a part could not be uploaded after `attempts` tries."""
        self._set_part(job_id, number, "status = 'failed', attempts = ?", (attempts,))

    def reset_parts(self, job_id: str) -> int:
        """Mark every part of a job 'spooled' again (resume into a new session); return count."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE parts SET status = 'spooled', part_id = NULL, attempts = 0,"
                " uploaded_at = NULL WHERE job_id = ?",
                (job_id,),
            )
            conn.execute("DELETE FROM requests WHERE job_id = ?", (job_id,))
            return cursor.rowcount

    def delete_parts(self, job_id: str) -> int:
        """Forget a job's parts (resume reads the input again and packs new ones)."""
        with self._write() as conn:
            conn.execute("DELETE FROM requests WHERE job_id = ?", (job_id,))
            return conn.execute("DELETE FROM parts WHERE job_id = ?", (job_id,)).rowcount

    # -- reads -----------------------------------------------------------------------------

    def get_job(self, ref: str) -> JobRow:
        """A job by local id, remote id, one of its parts' remote ids (a later Xandr job of a
        push, say) or `last`; a UsageError says how to find ids."""
        if ref == "last":
            rows = self._read(
                f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT 1"
            )
        else:
            rows = self._read(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? OR remote_id = ?"
                " ORDER BY id = ? DESC, created_at DESC, rowid DESC LIMIT 1",
                (ref, ref, ref),
            ) or self._read(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN"
                " (SELECT job_id FROM parts WHERE part_id = ?)"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (ref,),
            )
        if not rows:
            what = "no job has been recorded yet" if ref == "last" else f"no job {ref!r} found"
            raise UsageError(
                f"{what} in the job store {self.path}",
                hint="`bulkctl jobs` lists recent jobs; use a job id, a remote id or `last`",
            )
        return job_row(rows[0])

    def list_parts(self, job_id: str) -> list[PartRow]:
        """A job's parts by number."""
        rows = self._read(
            f"SELECT {PART_COLUMNS} FROM parts WHERE job_id = ? ORDER BY number", (job_id,)
        )
        return [part_row(row) for row in rows]

    def list_jobs(
        self, limit: int | None = 20, target: str | None = None, status: str | None = None
    ) -> list[JobRow]:
        """Recent jobs, newest first, optionally of one target and/or status."""
        where: list[str] = []
        params: list[Any] = []
        if target is not None:
            where.append("target = ?")
            params.append(target)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {JOB_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        return [job_row(row) for row in self._read(sql, params)]

    # -- plumbing --------------------------------------------------------------------------

    def _enable_wal(self) -> None:
        """Switch to WAL. SQLite does not wait on its busy handler for this when another process
        is creating the same fresh file, so retry `database is locked` with a short backoff."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _migrate(self) -> None:
        """Bring the schema up to date; a current store is only read, so `status` and `jobs`
        do not wait for another process's write lock."""
        current = self._read("PRAGMA user_version")[0][0]
        self._check_version(current)
        if current == len(MIGRATIONS):
            return
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
            if version < len(MIGRATIONS):
                conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _check_version(self, version: int) -> None:
        if version > len(MIGRATIONS):
            raise JobStoreError(
                f"the job store {self.path} has schema version {version}, newer than this "
                f"bulkctl knows ({len(MIGRATIONS)})",
                hint="upgrade bulkctl, or set BULKCTL_HOME to use another store",
            )

    def _set_part(
        self, job_id: str, number: int, assignments: str, params: tuple[Any, ...]
    ) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE parts SET {assignments} WHERE job_id = ? AND number = ?",
                (*params, job_id, number),
            )
            if cursor.rowcount == 0:
                raise ValueError(f"job {job_id!r} has no part {number}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, holding the write lock from its start."""
        with self._lock:
            self._begin()
            try:
                yield self._conn
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
                self._rollback()
                raise  # the caller's to handle (a taken id) or a bug: not the store's state
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise self._error(exc) from exc
            except BaseException:
                self._rollback()
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise self._error(exc) from exc

    def _begin(self) -> None:
        """`BEGIN IMMEDIATE`, waiting up to `timeout` for another process's write lock; the
        first wait longer than the busy handler's is told through `on_wait`."""
        deadline = time.monotonic() + max(self.timeout - NOTICE_AFTER_S, 0.0)
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.DatabaseError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise self._error(exc) from exc
            if not self._waited:
                self._waited = True
                self._on_wait(
                    f"the job store {self.path} is locked by another process; waiting up to "
                    f"{self.timeout:g} s for it (env {TIMEOUT_ENV})"
                )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.rollback()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError:
                raise
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc

    def _error(self, exc: OSError | sqlite3.Error) -> JobStoreError:
        """The store's own failure as exit 6, with the fix for its kind."""
        if isinstance(exc, sqlite3.Error) and _busy(exc):
            return JobStoreError(
                f"the job store {self.path} is locked by another process (waited "
                f"{self.timeout:g} s)",
                hint=f"let that process finish, raise {TIMEOUT_ENV}, or set BULKCTL_HOME to "
                "use another store",
            )
        if _full(exc):
            return JobStoreError(
                f"the job store {self.path} cannot be written: the disk is full",
                hint=f"free space in {self.path.parent}, or set BULKCTL_HOME to a directory "
                "on another disk",
            )
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return self._damaged(reason)

    def _damaged(self, reason: str) -> JobStoreError:
        return JobStoreError(
            f"the job store {self.path} cannot be used: {reason}",
            hint=f"move it aside (`mv {self.path} {self.path}.broken`) and bulkctl starts a new "
            "one, or set BULKCTL_HOME to use another directory",
        )

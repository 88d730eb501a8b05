"""The job store's tables: the migrations that make them, and rows to dataclasses and back.

The schema version lives in `PRAGMA user_version`; `MIGRATIONS[n]` takes a store from
version n to n + 1 (`bulkctl.jobs.store` applies them under the write lock).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from pathlib import Path

from bulkctl.jobs.rows import JobRow, PartRow

# One tuple of statements per schema version; never edit a released entry, append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            inputs TEXT NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            remote_id TEXT,
            records INTEGER NOT NULL DEFAULT 0,
            valid INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            parts INTEGER NOT NULL DEFAULT 0,
            bytes_uncompressed INTEGER NOT NULL DEFAULT 0,
            bytes_sent INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )""",
        "CREATE INDEX jobs_remote_id ON jobs (remote_id)",
        "CREATE INDEX jobs_created_at ON jobs (created_at)",
        """CREATE TABLE parts (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            lane_seq INTEGER NOT NULL,
            path TEXT NOT NULL,
            records INTEGER NOT NULL,
            bytes_uncompressed INTEGER NOT NULL,
            bytes_compressed INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            part_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'spooled',
            uploaded_at TEXT,
            PRIMARY KEY (job_id, number)
        )""",
    ),
    (
        # Request-based APIs apply each accepted request on its own: one row per request the
        # API acknowledged, so `resume` knows exactly which records were applied.
        """CREATE TABLE requests (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            part INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            records INTEGER NOT NULL,
            remote_id TEXT,
            acked_at TEXT NOT NULL,
            PRIMARY KEY (job_id, part, seq)
        )""",
    ),
)


JOB_COLUMNS = ", ".join(f.name for f in fields(JobRow))
_FIXED_JOB_FIELDS = frozenset({"id", "target", "endpoint", "inputs", "created_at", "updated_at"})
JOB_FIELDS = frozenset(f.name for f in fields(JobRow)) - _FIXED_JOB_FIELDS  # update_job may set
PART_COLUMNS = ", ".join(f.name for f in fields(PartRow))


def job_row(row: sqlite3.Row) -> JobRow:
    """A job as read from its row (its JSON columns decoded)."""
    data = dict(row)
    data["inputs"] = json.loads(data["inputs"])
    data["options"] = json.loads(data["options"])
    return JobRow(**data)


def part_row(row: sqlite3.Row) -> PartRow:
    """A part as read from its row."""
    data = dict(row)
    data["path"] = Path(data["path"])
    return PartRow(**data)

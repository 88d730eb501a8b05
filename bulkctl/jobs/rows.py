"""What the job store holds, as Python sees it: a job's row, a part's row, ids and times.

Kept apart from the SQLite code (`bulkctl.jobs.store`) so that what reads jobs (`state`,
`view`, `resume_plan`) needs only the shapes.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulkctl.pack.parts import Part

FINAL_STATUSES = frozenset({"finished", "failed", "aborted", "dry_run"})
WITH_REJECTIONS = "_with_rejections"  # suffix of a status whose records were partly rejected
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def utc_now() -> str:
    """Now as ISO-8601 UTC with a `Z`, the one timestamp format in the store (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    """A short human id, `YYYYMMDD-xxxx`: sorts by day, 32^4 random values a day."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    return day + "-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(4))


@dataclass(slots=True, frozen=True)
class JobRow:
    """One push as the store knows it; timestamps are ISO-8601 UTC strings."""

    id: str
    target: str
    endpoint: str
    inputs: list[str]
    options: dict[str, Any]
    status: str
    remote_id: str | None
    records: int
    valid: int
    rejected: int
    parts: int
    bytes_uncompressed: int
    bytes_sent: int
    error: str | None
    created_at: str
    updated_at: str
    finished_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for `status --json` / `jobs --json`)."""
        return asdict(self)


@dataclass(slots=True, frozen=True)
class PartRow:
    """One spooled part of a job and what uploading it achieved."""

    job_id: str
    number: int
    lane: int
    lane_seq: int
    path: Path
    records: int
    bytes_uncompressed: int
    bytes_compressed: int
    sha256: str
    part_id: str | None
    attempts: int
    status: str  # 'spooled' | 'uploaded' | 'failed'
    uploaded_at: str | None

    def to_part(self) -> Part:
        """The packing model again, for `resume` to upload this part.

        Fields a spooled part's row does not keep take their defaults (`requests_acked` and
        `records_acked` come from the store's requests, `JobStore.acknowledged`).
        """
        kept = {f.name for f in fields(PartRow)}
        part = Part(**{f.name: getattr(self, f.name) for f in fields(Part) if f.name in kept})
        part.uploaded = self.status == "uploaded"
        return part

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the path as a string."""
        data = asdict(self)
        data["path"] = str(self.path)
        return data

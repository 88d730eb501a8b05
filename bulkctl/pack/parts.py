"""A spooled part: one gzip file of NDJSON lines, and its place in the upload order.

Records are routed to `lanes` by a stable hash of (collection, id), so every version of one
object lives in one lane; a lane's parts are uploaded one after another in `lane_seq` order
while lanes go in parallel. That keeps the API's per-id outcome equal to the input order at
any concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True)
class Part:
    """One gzip part on disk, with what packing measured and what uploading learned."""

    number: int  # 1-based, in the order parts were closed
    lane: int  # 0-based ordering lane
    lane_seq: int  # 0-based position within its lane
    path: Path
    records: int
    bytes_uncompressed: int
    bytes_compressed: int
    sha256: str  # of the compressed bytes, i.e. of what is sent
    part_id: str | None = None  # the API's id once uploaded
    attempts: int = 0

"""A spooled part: one gzip file of NDJSON lines, and its place in the upload order.

Records are routed to `lanes` by a stable hash of (collection, id), so every version of one
object lives in one lane; a lane's parts are uploaded one after another in `lane_seq` order
while lanes go in parallel. That keeps the API's per-id outcome equal to the input order at
any concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIN_PART_SIZE = 1_000_000  # the smallest spooled part: any allowed object fits in one


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
    collection: str = ""  # the one collection of its records, when the target asks for that
    origins: tuple[tuple[str, int], ...] = ()  # (source, line) of each record, when kept
    uploaded: bool = False  # the API accepted all of it (the store's 'uploaded')
    requests_acked: int = 0  # request-based APIs: its first requests the API accepted
    records_acked: int = 0  # the records those requests carried

    def changed_on_disk(self) -> str | None:
        """What is wrong with the spooled file before it is sent again, or None."""
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            return f"cannot read spooled part {self.number} ({self.path}): {exc.strerror}"
        if size != self.bytes_compressed:
            return (
                f"spooled part {self.number} ({self.path}) has {size} bytes instead of "
                f"{self.bytes_compressed}: it changed on disk"
            )
        return None

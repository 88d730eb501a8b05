"""What a push is given (`PushSettings`) and what it reports (`PushSummary`, the --json object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkctl.jobs.state import rejections_text, with_rejections
from bulkctl.pack.parts import Part
from bulkctl.run.inputs import InputRun, ReadSettings
from bulkctl.send.remote import Remote
from bulkctl.send.retry import RetryPolicy
from bulkctl.targets.base import Target


@dataclass(frozen=True)
class PushSettings:
    """Everything one push needs, already merged from flags, environment and profile."""

    read: ReadSettings
    target: Target  # built with its remote by `bulkctl.targets.build`
    part_size: int | None = None  # None: the target's largest part
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stream: bool = False
    dry_run: bool = False
    out_dir: Path | None = None
    spool_dir: Path | None = None
    compression_level: int = 6
    allow_insecure_http: bool = False
    remote: Remote | None = None  # the target's, built by the caller (not for a dry run)
    wait: bool = False  # for targets with remote jobs: poll until they are final
    wait_timeout: float | None = None  # seconds; None: the target's default
    wait_interval: float = 2.0
    resume_job: str | None = None  # re-run an earlier job from its inputs, under its id


@dataclass
class PushSummary:
    """Filled in as the push goes, so a failure can still report what happened."""

    target: str
    job: str | None = None
    remote_id: str | None = None
    status: str = "created"
    parts: list[Part] = field(default_factory=list)
    bytes_sent: int = 0
    elapsed_s: float = 0.0
    error: str | None = None
    endpoint: str | None = None
    out_dir: str | None = None
    remote: dict[str, Any] | None = None  # remote jobs: phase, counts, each job's state
    stored_counts: dict[str, int] | None = None  # resume: the counts the first run recorded
    warnings: list[str] = field(default_factory=list)  # e.g. applied, but not recorded
    applied: int | None = None  # request-based targets: records the API accepted (all runs)
    requests: int = 0  # request-based targets: requests the API accepted (this run)

    def as_dict(self, run: InputRun | None) -> dict[str, Any]:
        tally = run.tally if run is not None else None
        raw = sum(p.bytes_uncompressed for p in self.parts)
        gz = sum(p.bytes_compressed for p in self.parts)
        stored = self.stored_counts or {}
        records = tally.records if tally else stored.get("records", 0)
        rejected = tally.rejected if tally else stored.get("rejected", 0)
        status = with_rejections(self.status, rejected)  # --on-invalid skip left some out
        error = self.error
        if error is None and status != self.status:
            error = rejections_text(rejected, records)
        return {
            "job": self.job,
            "target": self.target,
            "remote_id": self.remote_id,
            "status": status,
            "records": records,
            "valid": tally.valid if tally else stored.get("valid", 0),
            "rejected": rejected,
            "parts": len(self.parts),
            "bytes_uncompressed": raw,
            "bytes_compressed": gz,
            "bytes_sent": self.bytes_sent,
            "elapsed_s": round(self.elapsed_s, 3),
            "error": error,
            "endpoint": self.endpoint,
            "collections": dict(sorted(tally.per_collection.items())) if tally else {},
            "out_dir": self.out_dir,
        } | self._optional(tally.valid if tally else stored.get("valid", 0))

    def _optional(self, valid: int) -> dict[str, Any]:
        """Keys present only when they say something: remote jobs' state, warnings."""
        extra: dict[str, Any] = {"remote": self.remote} if self.remote is not None else {}
        if self.applied is not None:
            extra["applied"] = self.applied
            extra["not_applied"] = max(valid - self.applied, 0)
            extra["requests"] = self.requests
        if self.warnings:
            extra["warnings"] = list(self.warnings)
        return extra

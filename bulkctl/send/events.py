"""What the runner tells a display, and what it returns: shared by the runner and its callers.

Kept apart from `bulkctl.send.session` so displays and tests can use the types without the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bulkctl.pack.batches import Batch
from bulkctl.pack.parts import Part
from bulkctl.send.remote import SendResult
from bulkctl.send.retry import RetryEvent


class SessionEvents(Protocol):
    """What a display learns about a run. Calls are serialized: never two at once."""

    def session_started(self, sync_id: str) -> None: ...
    def part_started(self, part: Part) -> None: ...
    def part_progress(self, part: Part, bytes_sent: int) -> None: ...  # restarts on a retry
    def part_done(self, part: Part) -> None: ...
    def request_done(self, part: Part, batch: Batch, result: SendResult) -> None: ...  # applied
    def retry(self, event: RetryEvent) -> None: ...
    def keep_alive(self) -> None: ...
    def pacing(self, part: Part, seconds: float) -> None: ...  # waiting before a paced send
    def finishing(self, error_text: str) -> None: ...  # "" on success
    def restarting(self, why: str) -> None: ...  # every part goes again in a fresh session


class NullEvents:
    """The do-nothing display, for quiet runs and tests: every method ignores its event."""

    def session_started(self, sync_id: str) -> None: ...
    def part_started(self, part: Part) -> None: ...
    def part_progress(self, part: Part, bytes_sent: int) -> None: ...
    def part_done(self, part: Part) -> None: ...
    def request_done(self, part: Part, batch: Batch, result: SendResult) -> None: ...
    def retry(self, event: RetryEvent) -> None: ...
    def keep_alive(self) -> None: ...
    def pacing(self, part: Part, seconds: float) -> None: ...
    def finishing(self, error_text: str) -> None: ...
    def restarting(self, why: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionResult:
    """A finished run: the remote id, the sent parts (by number) and the bytes sent.

    `sync_id` is the id `open` returned (a session), else the first part's id (a job); None
    when there were no parts, so nothing was opened.
    """

    sync_id: str | None
    parts: tuple[Part, ...]  # with part_id and attempts filled in
    bytes_sent: int  # bytes of the sent parts' files, each counted once
    sent: dict[int, SendResult] = field(default_factory=dict)  # the API's answer, by part
    applied: int = 0  # records the API applied on acceptance (request-based remotes), this run

    @property
    def remote_id(self) -> str | None:
        return self.sync_id

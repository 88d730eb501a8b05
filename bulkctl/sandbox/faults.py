"""Fault injection for the sandbox: what to break, parsed once from the command line.

`Faults` is the frozen configuration; `FaultState` is the per-server bookkeeping (request
counter, the remaining forced statuses), so one configuration can start several servers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Faults:
    """Failures the sandbox injects so clients can test their retries.

    fail_uploads: answer 500 to the first N upload requests.
    status_for: per endpoint name, statuses forced one per request, in order.
    retry_after: seconds sent as `Retry-After` on forced 429 and 503 answers.
    latency_ms: sleep this long before answering every request.
    drop_connection_on: close the connection without answering the Nth request (1-based).
    late_uploads: upload requests (1-based, counted over the server's life) read in full and
        then held: each is added to its session only when that session's finish arrives (so
        after every upload sent meanwhile: the API applying a retried part's first attempt
        late) and answered only then, or, with `late_drop`, its connection is closed at once
        without an answer.
    out_of_order: the Objects API's asynchronous mode: a `/v1/set` request without
        `Synchronous: true` is answered at once and applied after the next one.
    """

    fail_uploads: int = 0
    status_for: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    retry_after: int | None = None
    latency_ms: float = 0.0
    drop_connection_on: int | None = None
    late_uploads: frozenset[int] = frozenset()
    late_drop: bool = False
    out_of_order: bool = False

    def __post_init__(self) -> None:
        if self.fail_uploads < 0:
            raise ValueError("--fail-uploads must be 0 or more")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("--retry-after must be 0 or more seconds")
        if self.latency_ms < 0:
            raise ValueError("--latency must be 0 or more milliseconds")
        if self.drop_connection_on is not None and self.drop_connection_on < 1:
            raise ValueError("--drop-connection-on counts requests from 1")
        if any(n < 1 for n in self.late_uploads):
            raise ValueError("--late-upload counts upload requests from 1")
        for endpoint, codes in self.status_for.items():
            for code in codes:
                if not 100 <= code <= 599:
                    raise ValueError(f"--status-for {endpoint}: {code} is not an HTTP status")

    @property
    def any(self) -> bool:
        """True when at least one fault is configured (worth announcing at start)."""
        return bool(
            self.fail_uploads
            or self.status_for
            or self.latency_ms
            or self.drop_connection_on is not None
            or self.late_uploads
            or self.out_of_order
        )


def parse_status_for(specs: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Parse `upload=503,503` specs; a repeated endpoint appends to its sequence."""
    result: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        endpoint, sep, codes_text = spec.partition("=")
        endpoint = endpoint.strip()
        if not sep or not endpoint or not codes_text.strip():
            raise ValueError(
                f"--status-for {spec!r}: write ENDPOINT=CODE[,CODE...], e.g. upload=503,503"
            )
        try:
            codes = tuple(int(code) for code in codes_text.split(","))
        except ValueError:
            raise ValueError(
                f"--status-for {spec!r}: status codes must be integers, e.g. upload=503,500"
            ) from None
        result[endpoint] = result.get(endpoint, ()) + codes
    return result


class FaultState:
    """Thread-safe counters of one running server; consumes `Faults` as requests arrive."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self._requests = 0
        self._uploads = 0
        self._upload_requests = 0
        self._pending = {name: list(codes) for name, codes in faults.status_for.items()}

    def should_drop(self) -> bool:
        """Count one request; True when it is the one whose connection must be dropped."""
        with self._lock:
            self._requests += 1
            return self._requests == self.faults.drop_connection_on

    def forced_status(self, endpoint: str) -> tuple[int, str] | None:
        """The status forced on this request to `endpoint` and the flag that forced it."""
        with self._lock:
            pending = self._pending.get(endpoint)
            if pending:
                return pending.pop(0), f"--status-for {endpoint}"
            if endpoint == "upload":
                self._uploads += 1
                if self._uploads <= self.faults.fail_uploads:
                    return 500, "--fail-uploads"
        return None

    def is_late(self, endpoint: str) -> bool:
        """Count one request to `endpoint`; True for an upload `late_uploads` names."""
        if endpoint != "upload":
            return False
        with self._lock:
            self._upload_requests += 1
            return self._upload_requests in self.faults.late_uploads

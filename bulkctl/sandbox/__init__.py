"""The embedded sandbox: local emulators of the target APIs over a queryable SQLite warehouse.

`start_sandbox` composes the pieces (warehouse, emulators, HTTP server) and serves them from
background threads; `bulkctl sandbox` and `push --sandbox` both go through it. Adding an API
is one emulator module (see `bulkctl.sandbox.server.Emulator`) added to `_emulators`: today the
Segment Objects Bulk API (`bulk_api`), the Segment Objects API (`objects_api`) and the Xandr
Batch Segment Service (`xandr_api`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from bulkctl.errors import UsageError
from bulkctl.processes import pid_alive
from bulkctl.sandbox.bulk_api import DEFAULT_SESSION_TIMEOUT, MAX_PART_BYTES, SegmentBulkEmulator
from bulkctl.sandbox.faults import Faults, parse_status_for
from bulkctl.sandbox.objects_api import SegmentObjectsEmulator
from bulkctl.sandbox.server import Emulator, SandboxServer
from bulkctl.sandbox.warehouse import Warehouse
from bulkctl.sandbox.xandr_api import XandrConfig, XandrEmulator
from bulkctl.send.inflight import MAX_IN_FLIGHT

if TYPE_CHECKING:
    from bulkctl.settings import SandboxCredentials

__all__ = [
    "DEFAULT_SESSION_TIMEOUT",
    "MAX_IN_FLIGHT",
    "MAX_PART_BYTES",
    "Faults",
    "RunningSandbox",
    "XandrConfig",
    "default_db_path",
    "parse_status_for",
    "start_sandbox",
]

_TICK_SECONDS = 1.0
_STOP_GRACE_SECONDS = 5.0


def default_db_path() -> Path:
    """Where the warehouse lives unless `--db` says otherwise."""
    from bulkctl.paths import data_dir

    return data_dir() / "sandbox.sqlite3"


class RunningSandbox:
    """A sandbox serving from background threads; `stop()` (or leaving `with`) ends it."""

    def __init__(self, server: SandboxServer, warehouse: Warehouse, spool: Path) -> None:
        self._server = server
        self._warehouse = warehouse
        self._spool = spool
        self._stopped = threading.Event()
        self.db_path = warehouse.path
        self.host, self.port = server.server_address[:2]
        self.url = url_for(server.server_address)
        self._serving = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="sandbox-http",
        )
        self._ticking = threading.Thread(target=self._tick, daemon=True, name="sandbox-tick")
        self._serving.start()
        self._ticking.start()

    def __repr__(self) -> str:
        return f"RunningSandbox(url={self.url!r}, db_path={str(self.db_path)!r})"

    @property
    def in_flight(self) -> int:
        """Requests being handled right now (what the 20-request limit counts)."""
        return self._server.in_flight.count

    @property
    def in_flight_peak(self) -> int:
        """The most requests handled at once so far."""
        return self._server.in_flight.peak

    @property
    def refused(self) -> int:
        """Requests answered 429 for being over the in-flight limit so far."""
        return self._server.in_flight.refused

    def stop(self) -> None:
        """Stop accepting, let requests in progress end (briefly), close sessions and files."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.in_flight.wait_idle(_STOP_GRACE_SECONDS)
        self._server.close_connections()
        self._ticking.join()
        for emulator in self._server.emulators:
            emulator.close()
        self._warehouse.close()
        shutil.rmtree(self._spool, ignore_errors=True)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stopped.wait(_TICK_SECONDS):
            for emulator in self._server.emulators:
                emulator.tick()


def start_sandbox(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    write_key: str | None = None,
    faults: Faults | None = None,
    session_timeout: float = DEFAULT_SESSION_TIMEOUT,
    log: TextIO | None = None,
    max_part_bytes: int = MAX_PART_BYTES,
    max_in_flight: int = MAX_IN_FLIGHT,
    xandr: XandrConfig | None = None,
    credentials: SandboxCredentials | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunningSandbox:
    """Serve the emulators on host:port (0 picks a free port) over the warehouse at `db_path`.

    `credentials` (for `push --sandbox`) sets both the write key and the Xandr login required.
    `clock` measures sessions' idle time (tests pass one they move by hand).
    Raises UsageError when the warehouse cannot be opened, the address cannot be bound, or
    `faults.status_for` names an endpoint no emulator serves.
    """
    xandr = xandr or XandrConfig()
    if credentials is not None:
        from bulkctl.targets.segment_bulk import WRITE_KEY
        from bulkctl.targets.xandr_bss import PASSWORD, USERNAME

        write_key = credentials.get(WRITE_KEY.key).reveal()
        login = (credentials.get(USERNAME.key).reveal(), credentials.get(PASSWORD.key).reveal())
        xandr = replace(xandr, login=login)
    try:
        warehouse = Warehouse(db_path)
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(f"cannot open the sandbox warehouse {db_path}: {exc}") from None
    spool_root = db_path.parent / f"{db_path.name}.spool"
    _reclaim_orphans(warehouse, spool_root)
    spool = spool_root / f"{os.getpid()}-{secrets.token_hex(4)}"
    try:
        emulators = _emulators(
            warehouse, spool, write_key, session_timeout, max_part_bytes, clock, faults
        )
        emulators.append(XandrEmulator(warehouse.path, xandr))
    except sqlite3.Error as exc:
        warehouse.close()
        raise UsageError(f"cannot open the sandbox warehouse {db_path}: {exc}") from None
    try:
        server = SandboxServer(
            (host, port), emulators, faults=faults, log=log, max_in_flight=max_in_flight
        )
    except OSError as exc:
        warehouse.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except ValueError as exc:
        warehouse.close()
        raise UsageError(str(exc)) from None
    return RunningSandbox(server, warehouse, spool)


def _emulators(
    warehouse: Warehouse,
    spool: Path,
    write_key: str | None,
    session_timeout: float,
    max_part_bytes: int,
    clock: Callable[[], float],
    faults: Faults | None,
) -> list[Emulator]:
    return [
        SegmentBulkEmulator(
            warehouse,
            spool / "segment-bulk",
            write_key=write_key,
            session_timeout=session_timeout,
            max_part_bytes=max_part_bytes,
            clock=clock,
        ),
        SegmentObjectsEmulator(
            warehouse, write_key=write_key, out_of_order=faults is not None and faults.out_of_order
        ),
    ]


def _reclaim_orphans(warehouse: Warehouse, spool_root: Path) -> None:
    """Close sessions and drop spooled parts left by sandboxes that are no longer running."""
    warehouse.expire_orphans(pid_alive)
    if not spool_root.is_dir():
        return
    for folder in spool_root.iterdir():
        pid_text = folder.name.split("-", 1)[0]
        if not pid_text.isdigit() or not pid_alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def url_for(address: tuple[Any, ...]) -> str:
    """http://host:port for a bound address; wildcard hosts become loopback."""
    host, port = str(address[0]), address[1]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"

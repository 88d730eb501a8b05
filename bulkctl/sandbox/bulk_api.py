"""The Segment Objects Bulk API (seed 000), emulated: start → upload gzip parts → finish.

As strict as the documentation: Basic auth with the write key, gzip uploads checked line by
line with the client's own rules (`bulkctl.check.rules`), 512 MB uncompressed a part, sessions that
expire when idle. Parts are spooled to disk as received; `finish` with an empty error applies
them, in the order they were accepted, to the warehouse before answering 202, so the rows can
be queried as soon as finish returns.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import string
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bulkctl.check.rules import SEGMENT_RULES, ObjectRules
from bulkctl.sandbox.auth import refuse_write_key, write_key_token
from bulkctl.sandbox.server import (
    BodyError,
    BodyReader,
    Request,
    Response,
    Route,
    json_error,
    route,
)
from bulkctl.sandbox.warehouse import Warehouse

MAX_PART_BYTES = 512_000_000
DEFAULT_SESSION_TIMEOUT = 600.0
_READ_SIZE = 2**18
_INFLATE_STEP = 2**20  # most uncompressed bytes produced by one decompress call
_FINISH_BODY_LIMIT = 1_000_000
_LATE_WAIT = 60.0  # most seconds a --late-upload waits for its session to end
_ALPHABET = string.ascii_letters + string.digits


def _new_id(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class _Reject(Exception):
    """Ends an upload early with the response to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(slots=True)
class _Part:
    part_id: str
    path: Path
    compressed: int
    uncompressed: int
    lines: int


@dataclass(slots=True)
class _Session:
    id: str
    folder: Path
    last_seen: float
    status: str = "open"  # open → finishing | discarded | expired
    active_uploads: int = 0
    parts: list[_Part] = field(default_factory=list)
    late: list[tuple[_Part, threading.Event]] = field(default_factory=list)  # --late-upload


class _LineChecker:
    """Splits the inflated stream into lines and checks each with the shared rules."""

    def __init__(self, rules: ObjectRules) -> None:
        self._rules = rules
        self._pending = bytearray()
        self.lines = 0

    def feed(self, data: bytes) -> None:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if self._pending:
                self._pending += data[start:end]
                line = bytes(self._pending)
                self._pending.clear()
            else:
                line = data[start:end]
            self._check(line)
            start = end + 1
        self._pending += data[start:]
        if len(self._pending) > self._rules.max_line_bytes:
            self._check(bytes(self._pending))  # too large already: fail without waiting

    def end(self) -> None:
        if self._pending:
            self._check(bytes(self._pending))
            self._pending.clear()

    def _check(self, line: bytes) -> None:
        self.lines += 1
        problems = self._rules.check_line(line)
        if problems:
            raise _Reject(
                json_error(
                    400,
                    f"line {self.lines}: {problems[0].message}",
                    line=self.lines,
                    problems=[p.as_dict() for p in problems],
                )
            )


class SegmentBulkEmulator:
    """Sessions, uploads and finish of the Objects Bulk API, over a `Warehouse`."""

    def __init__(
        self,
        warehouse: Warehouse,
        spool_dir: Path,
        *,
        write_key: str | None = None,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        max_part_bytes: int = MAX_PART_BYTES,
        rules: ObjectRules = SEGMENT_RULES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warehouse = warehouse
        self._spool = spool_dir
        self._key = write_key_token(write_key)
        self._timeout = session_timeout
        self._max_part = max_part_bytes
        self._rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._closed: dict[str, str] = {}  # status of sessions this emulator ended

    def __repr__(self) -> str:
        return f"SegmentBulkEmulator(spool={str(self._spool)!r})"  # never the write key

    def routes(self) -> Sequence[Route]:
        return [
            route("POST", r"/v0/start", "start", self._start),
            route("POST", r"/v0/upload/(?P<id>[^/]+)", "upload", self._upload),
            route("POST", r"/v0/finish/(?P<id>[^/]+)", "finish", self._finish),
            route("POST", r"/v0/keep-alive/(?P<id>[^/]+)", "keep-alive", self._keep_alive),
        ]

    def authorize(self, request: Request) -> Response | None:
        return refuse_write_key(request, self._key)

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            stale = [s for s in self._sessions.values() if self._is_stale(s, now)]
            for session in stale:
                self._retire(session, "expired")
        for session in stale:
            self._end(session, "expired", self._expiry_reason())

    def close(self) -> None:
        with self._lock:
            left = list(self._sessions.values())
            for session in left:
                self._retire(session, "expired")
        for session in left:
            self._end(session, "expired", "the sandbox stopped before the session ended")
        shutil.rmtree(self._spool, ignore_errors=True)

    # -- endpoints -------------------------------------------------------------------------

    def _start(self, request: Request) -> Response:
        session_id = _new_id(15)
        folder = self._spool / session_id
        try:
            self._warehouse.create_session(session_id, os.getpid())
            folder.mkdir(parents=True)
        except (sqlite3.Error, OSError) as exc:
            return json_error(500, f"the sandbox could not start a session: {exc}")
        with self._lock:
            self._sessions[session_id] = _Session(session_id, folder, self._clock())
        return Response(201, {"sync_id": session_id})

    def _keep_alive(self, request: Request) -> Response:
        found = self._claim(request.params["id"])
        if isinstance(found, Response):
            return found
        return Response(200, {"sync_id": found.id})

    def _upload(self, request: Request) -> Response:
        if request.headers.get("content-encoding", "").strip().lower() != "gzip":
            return json_error(400, "an upload must be gzip-compressed: Content-Encoding: gzip")
        found = self._claim(request.params["id"], upload=True)
        if isinstance(found, Response):
            return found
        session = found
        part_id = _new_id(16)
        path = session.folder / f"{part_id}.ndjson.gz"
        try:
            part = self._receive(request.body, path, part_id)
        except _Reject as exc:
            refused: Response | None = exc.response
        except BodyError as exc:
            refused = json_error(400, str(exc))
        except OSError as exc:  # the spool could not be written (disk full, ...)
            refused = json_error(500, f"the sandbox could not store the part: {exc.strerror}")
        else:
            refused = None
        finally:
            with self._lock:
                session.active_uploads -= 1
                session.last_seen = self._clock()
        if refused is not None:
            path.unlink(missing_ok=True)
            return refused
        if request.late:
            return self._hold(session, part, drop=request.late_drop)
        with self._lock:
            accepted = session.status == "open"
            if accepted:
                session.parts.append(part)
                seq = len(session.parts)
        if not accepted:
            path.unlink(missing_ok=True)
            return self._refusal(session.id)
        with contextlib.suppress(sqlite3.Error):  # bookkeeping only: the part is accepted
            self._warehouse.add_part(
                session.id, seq, part_id, part.compressed, part.uncompressed, part.lines
            )
        return Response(201, {"part_id": part_id})

    def _hold(self, session: _Session, part: _Part, *, drop: bool) -> Response:
        """--late-upload: the part joins its session at the session's finish, then answers."""
        landed = threading.Event()
        with self._lock:
            session.late.append((part, landed))
        if drop:
            return Response(0, drop=True)
        landed.wait(_LATE_WAIT)
        return Response(201, {"part_id": part.part_id})

    def _land_late(self, session: _Session) -> None:
        """Add the held parts to the session, as the API applying them late would."""
        with self._lock:
            late, session.late = session.late, []
            open_ = session.status == "open"
            if open_:
                session.parts.extend(part for part, _ in late)
        for _, landed in late:
            landed.set()

    def _finish(self, request: Request) -> Response:
        error = _finish_error(request.body.read_all(_FINISH_BODY_LIMIT))
        if isinstance(error, Response):
            return error
        session_id = request.params["id"]
        found = self._claim(session_id)
        if isinstance(found, Response):
            return found
        self._land_late(found)
        with self._lock:
            if not error and found.active_uploads:
                return json_error(
                    400,
                    f"session {session_id} has {found.active_uploads} upload(s) in progress: "
                    "finish after every upload is answered",
                )
            if found.status != "open":
                return self._refusal(session_id)
            self._retire(found, "discarded" if error else "finishing")
            parts = [p.path for p in found.parts]
        if error:
            self._end(found, "discarded", error)
            return Response(202, {"sync_id": session_id, "status": "discarded"})
        try:
            objects = self._warehouse.apply(session_id, parts)
        except (sqlite3.Error, OSError) as exc:
            self._end(found, "failed", f"could not apply the session: {exc}")
            return json_error(500, f"the sandbox could not apply session {session_id}: {exc}")
        self._end(found, "finished", None, record=False)
        return Response(202, {"sync_id": session_id, "status": "finished", "objects": objects})

    # -- sessions --------------------------------------------------------------------------

    def _is_stale(self, session: _Session, now: float) -> bool:
        return session.active_uploads == 0 and now - session.last_seen > self._timeout

    def _expiry_reason(self) -> str:
        return f"no call for {self._timeout:g} s"

    def _claim(self, session_id: str, *, upload: bool = False) -> _Session | Response:
        """The open session, touched (and counted as uploading), or the refusal to send."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and not self._is_stale(session, now):
                session.last_seen = now
                if upload:
                    session.active_uploads += 1
                return session
            if session is not None:
                self._retire(session, "expired")
        if session is not None:
            self._end(session, "expired", self._expiry_reason())
        return self._refusal(session_id)

    def _retire(self, session: _Session, status: str) -> None:
        """Take a session out of the open ones (the caller holds the lock)."""
        session.status = status
        self._sessions.pop(session.id, None)
        self._closed[session.id] = status

    def _end(
        self, session: _Session, status: str, error: str | None, *, record: bool = True
    ) -> None:
        """Record how a retired session ended and drop its spooled parts."""
        self._land_late(session)  # held uploads are answered (into a closed session)
        if record:
            # If this fails the row stays 'open' until a later start finds its sandbox gone.
            with contextlib.suppress(sqlite3.Error):
                self._warehouse.close_session(session.id, status, error)
        with self._lock:
            self._closed[session.id] = status
        shutil.rmtree(session.folder, ignore_errors=True)

    def _refusal(self, session_id: str) -> Response:
        with self._lock:
            status = self._closed.get(session_id)
        if status is None:
            known = self._warehouse.session_status(session_id)
            status = None if known is None or known[0] == "open" else known[0]
        reasons = {
            None: f"unknown session {session_id}: start one with POST /v0/start",
            "expired": f"session {session_id} expired ({self._expiry_reason()} or the sandbox "
            "stopped); start a new session",
            "finishing": f"session {session_id} is being finished",
            "finished": f"session {session_id} is already finished",
            "discarded": f"session {session_id} was discarded (finished with an error)",
            "failed": f"session {session_id} failed to apply",
        }
        reason = reasons.get(status, f"session {session_id} is {status}")
        return json_error(400, reason, sync_id=session_id, status=status or "unknown")

    # -- uploads ---------------------------------------------------------------------------

    def _receive(self, body: BodyReader, path: Path, part_id: str) -> _Part:
        """Spool the gzip body to `path`, inflating and checking it as it arrives."""
        inflater = zlib.decompressobj(wbits=31)
        fed = False  # has the current gzip member received any byte?
        checker = _LineChecker(self._rules)
        compressed = uncompressed = 0
        with path.open("wb") as out:
            while chunk := body.read(_READ_SIZE):
                out.write(chunk)
                compressed += len(chunk)
                pending = chunk
                while pending:
                    try:
                        data = inflater.decompress(pending, _INFLATE_STEP)
                    except zlib.error as exc:
                        raise _Reject(
                            json_error(400, f"the body is not valid gzip: {exc}")
                        ) from None
                    fed = True
                    if inflater.eof:  # one gzip member ended; another may follow
                        pending = inflater.unused_data
                        inflater = zlib.decompressobj(wbits=31)
                        fed = False
                    else:
                        pending = inflater.unconsumed_tail
                    uncompressed += len(data)
                    if uncompressed > self._max_part:
                        raise _Reject(
                            json_error(
                                413,
                                f"the part is over {self._max_part:,} bytes uncompressed: "
                                "split it into smaller parts",
                            )
                        )
                    checker.feed(data)
        if fed or compressed == 0:
            raise _Reject(json_error(400, "the body is not valid gzip: it is truncated or empty"))
        checker.end()
        return _Part(part_id, path, compressed, uncompressed, checker.lines)


def _finish_error(raw: bytes) -> str | Response:
    """The `error` of a finish body: "" when empty or blank, else a 400 for a bad body."""
    if not raw.strip():
        return ""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json_error(400, 'the finish body must be JSON like {"error": ""}')
    if not isinstance(data, dict):
        return json_error(400, 'the finish body must be a JSON object like {"error": ""}')
    error = data.get("error")
    if error is None:
        return ""
    if not isinstance(error, str):
        return json_error(400, "error must be a string (empty when the session succeeded)")
    return error

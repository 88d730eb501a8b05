"""The sandbox warehouse: SQLite tables as the real warehouse would show the objects.

One table per collection (`id TEXT PRIMARY KEY`, one untyped column per property, added as new
properties appear), so values keep their JSON type. Sessions and their parts are recorded in
`_sandbox_sessions` / `_sandbox_parts`, `/v1/set` requests in `_sandbox_sets`; collection
names can never start with an underscore, so the two never collide. SQLite folds ASCII case
in identifiers, so property names that differ only in ASCII case share a column (the later
value wins); a property named `id` is stored as `property_id` because `id` is the object's id.
"""

from __future__ import annotations

import gzip
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SESSIONS_TABLE = "_sandbox_sessions"
PARTS_TABLE = "_sandbox_parts"
SETS_TABLE = "_sandbox_sets"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SESSIONS_TABLE} (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT,
    error TEXT,
    parts INTEGER NOT NULL DEFAULT 0,
    objects INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS {PARTS_TABLE} (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    part_id TEXT NOT NULL,
    received TEXT NOT NULL,
    bytes_compressed INTEGER NOT NULL,
    bytes_uncompressed INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS {SETS_TABLE} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received TEXT NOT NULL,
    applied TEXT NOT NULL,
    collection TEXT NOT NULL,
    objects INTEGER NOT NULL,
    synchronous INTEGER NOT NULL
);
"""
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
BUSY_TIMEOUT_S = 60.0


def now_iso() -> str:
    """UTC timestamp with milliseconds, as stored in the bookkeeping tables."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier safely (double quotes doubled; NUL cannot be quoted)."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def column_for(prop: str) -> str:
    """The column a property lands in: itself, except `id` (taken) and NUL characters."""
    name = prop.replace("\x00", "\ufffd")
    return f"property_{name}" if fold(name) == "id" else name


def fold(name: str) -> str:
    """SQLite's identifier case folding: ASCII letters only."""
    return name.translate(_ASCII_LOWER)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open the warehouse without any chance of changing it (what `sandbox query` runs on)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)


def list_collections(conn: sqlite3.Connection) -> list[str]:
    """Collection tables, i.e. every table except SQLite's and the sandbox's own."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_%' ESCAPE '\\' "
        "ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


@dataclass(frozen=True, slots=True)
class SetRequest:
    """One `/v1/set` request of the Objects API: its objects, applied together."""

    collection: str
    objects: list[tuple[str, dict[str, Any]]]
    synchronous: bool
    received: str


class _Tables:
    """Known columns of collection tables within one apply, keyed by folded name."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._columns: dict[str, dict[str, str]] = {}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}

    def columns(self, table: str) -> dict[str, str]:
        known = self._columns.get(table)
        if known is None:
            quoted = quote_ident(table)
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {quoted} (id TEXT PRIMARY KEY)")
            rows = self._conn.execute(f"PRAGMA table_info({quoted})").fetchall()
            known = {fold(str(row[1])): str(row[1]) for row in rows}
            self._columns[table] = known
        return known

    def upsert(self, table: str, object_id: str, properties: dict[str, Any]) -> None:
        known = self.columns(table)
        values: dict[str, tuple[str, Any]] = {}
        for prop, value in properties.items():
            column = column_for(prop)
            key = fold(column)
            if key not in known:
                self._conn.execute(
                    f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column)}"
                )
                known[key] = column
            values[key] = (known[key], value)
        names = tuple(name for name, _ in values.values())
        sql = self._sql.get((table, names))
        if sql is None:
            sql = self._upsert_sql(table, names)
            self._sql[(table, names)] = sql
        self._conn.execute(sql, (object_id, *(value for _, value in values.values())))

    @staticmethod
    def _upsert_sql(table: str, names: tuple[str, ...]) -> str:
        cols = ", ".join(["id", *(quote_ident(n) for n in names)])
        marks = ", ".join("?" * (len(names) + 1))
        head = f"INSERT INTO {quote_ident(table)} ({cols}) VALUES ({marks}) ON CONFLICT(id) DO "
        if not names:
            return head + "NOTHING"
        sets = ", ".join(f"{quote_ident(n)} = excluded.{quote_ident(n)}" for n in names)
        return head + "UPDATE SET " + sets


class Warehouse:
    """The writer side of the warehouse, shared by the server's threads (writes serialised)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def expire_orphans(self, alive: Callable[[int | None], bool]) -> int:
        """Mark open sessions of sandboxes that are gone as expired; return how many."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, pid FROM {SESSIONS_TABLE} WHERE status = 'open'"
            ).fetchall()
            dead = [(now_iso(), str(sid)) for sid, pid in rows if not alive(pid)]
            self._conn.executemany(
                f"UPDATE {SESSIONS_TABLE} SET status = 'expired', finished = ?, "
                "error = 'the sandbox stopped before the session ended' WHERE id = ?",
                dead,
            )
        return len(dead)

    def create_session(self, session_id: str, pid: int) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {SESSIONS_TABLE} (id, status, created, pid) VALUES (?, 'open', ?, ?)",
                (session_id, now_iso(), pid),
            )

    def add_part(
        self,
        session_id: str,
        seq: int,
        part_id: str,
        compressed: int,
        uncompressed: int,
        lines: int,
    ) -> None:
        with self._lock, self._transaction():
            self._conn.execute(
                f"INSERT INTO {PARTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, seq, part_id, now_iso(), compressed, uncompressed, lines),
            )
            self._conn.execute(
                f"UPDATE {SESSIONS_TABLE} SET parts = parts + 1, bytes = bytes + ? WHERE id = ?",
                (uncompressed, session_id),
            )

    def close_session(self, session_id: str, status: str, error: str | None) -> None:
        """End a session without applying it (discarded, expired or failed)."""
        with self._lock:
            self._conn.execute(
                f"UPDATE {SESSIONS_TABLE} SET status = ?, finished = ?, error = ? WHERE id = ?",
                (status, now_iso(), error, session_id),
            )

    def session_status(self, session_id: str) -> tuple[str, str | None] | None:
        """(status, error) of a session, or None when the warehouse never saw it."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT status, error FROM {SESSIONS_TABLE} WHERE id = ?", (session_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def apply(self, session_id: str, parts: Sequence[Path]) -> int:
        """Merge the parts' objects in order, in one transaction; return how many were applied.

        Part files are read back line by line, so memory stays bounded whatever their size.
        Raises sqlite3.Error or OSError, in which case nothing was applied.
        """
        with self._lock, self._transaction():
            tables = _Tables(self._conn)
            objects = 0
            for obj in _objects(parts):
                tables.upsert(obj["collection"], obj["id"], obj["properties"])
                objects += 1
            self._conn.execute(
                f"UPDATE {SESSIONS_TABLE} SET status = 'finished', finished = ?, objects = ? "
                "WHERE id = ?",
                (now_iso(), objects, session_id),
            )
        return objects

    def apply_set(self, request: SetRequest) -> None:
        """Merge one request's objects and record it (`SETS_TABLE`), in one transaction."""
        with self._lock, self._transaction():
            tables = _Tables(self._conn)
            for object_id, properties in request.objects:
                tables.upsert(request.collection, object_id, properties)
            self._conn.execute(
                f"INSERT INTO {SETS_TABLE} (received, applied, collection, objects, synchronous) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    request.received,
                    now_iso(),
                    request.collection,
                    len(request.objects),
                    int(request.synchronous),
                ),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _objects(parts: Iterable[Path]) -> Iterable[dict[str, Any]]:
    for path in parts:
        with gzip.open(path, "rb") as lines:
            for line in lines:
                data: dict[str, Any] = orjson.loads(line)
                yield data

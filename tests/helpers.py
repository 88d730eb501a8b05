"""Shared test helpers: input files, decoding what a server received, the installed `bulkctl`.

Plain functions and one small process wrapper; no fixtures (those live in conftest.py), so any
test module can import them without changing pytest's collection.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_URL_LINE = re.compile(r"Segment Objects Bulk API at (http://\S+)")
_LOG_LINE = re.compile(
    r"^\d\d:\d\d:\d\d (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\S+) (?P<ms>[\d.]+)ms$"
)


def bulkctl_exe() -> Path:
    """The installed `bulkctl` console script beside the running interpreter."""
    exe = Path(sys.executable).parent / "bulkctl"
    if not exe.is_file():
        raise FileNotFoundError(f"no installed bulkctl script at {exe}; run `pip install -e .`")
    return exe


def basic_auth(key: str) -> str:
    """The exact Authorization header the Segment Bulk API expects: Basic base64("KEY:")."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def ndjson_bytes(records: Iterable[Any]) -> bytes:
    """Records as NDJSON, one line each, newline-terminated."""
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def write_ndjson(path: Path, records: Iterable[Any], *, compress: bool = False) -> Path:
    """Write records as NDJSON (gzip when asked) and return the path."""
    data = ndjson_bytes(records)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def csv_bytes(rows: Sequence[Mapping[str, Any]], *, delimiter: str = ",") -> bytes:
    """Flat rows as CSV (or TSV) text with a header of every column seen, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(name for name in row if name not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], *, delimiter: str = ",") -> Path:
    """Write flat rows as CSV/TSV and return the path."""
    path.write_bytes(csv_bytes(rows, delimiter=delimiter))
    return path


def decode_part(body: bytes) -> list[dict[str, Any]]:
    """The records of one uploaded gzip part, in order."""
    return [orjson.loads(line) for line in gzip.decompress(body).splitlines()]


def merged(records: list[dict[str, Any]], collection: str) -> dict[str, dict[str, Any]]:
    """The merge seed 000 describes: per id, later values win per property."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["collection"] == collection:
            out.setdefault(record["id"], {}).update(record["properties"])
    return out


def canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical-shape record as bulkctl sends it (nulls dropped from properties)."""
    props = {k: v for k, v in record["properties"].items() if v is not None}
    return {"id": str(record["id"]), "collection": record["collection"], "properties": props}


def assert_plain_text(text: str) -> None:
    """Non-terminal output: whole lines only, no carriage returns, no ANSI escapes."""
    assert "\r" not in text, "a carriage return in non-terminal output"
    assert not ANSI_ESCAPE.search(text), "an ANSI escape in non-terminal output"
    assert "\x1b" not in text


def base_env(**extra: str) -> dict[str, str]:
    """The current environment (the autouse fixture's isolated one) plus `extra`."""
    env = dict(os.environ)
    env.update(extra)
    return env


def run_bulkctl(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `bulkctl ARGS` to its end and capture its streams as text."""
    return subprocess.run(
        [str(bulkctl_exe()), *map(str, args)],
        input=input.decode() if input is not None else None,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else base_env(),
        timeout=timeout,
        check=False,
    )


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class SandboxProcess:
    """`bulkctl sandbox --port 0 ...` as a subprocess: its URL, its request log, a clean stop."""

    def __init__(self, db: Path, *flags: str, write_key: str | None = None) -> None:
        args = [str(bulkctl_exe()), "sandbox", "--port", "0", "--db", str(db), *flags]
        if write_key is not None:
            args += ["--write-key", write_key]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=base_env(),
        )
        assert self._proc.stderr is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=_pump, args=(self._proc.stderr, self._lines), daemon=True
        )
        self._reader.start()
        self.stderr_lines: list[str] = []
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.stderr_lines.append(line)
            found = _URL_LINE.search(line)
            if found:
                return found.group(1)
        self.stop()
        raise RuntimeError("the sandbox did not print its URL:\n" + "\n".join(self.stderr_lines))

    def wait_for_line(self, pattern: str, timeout: float = 30) -> list[str]:
        """Read stderr until a line matches `pattern` (or was already read); every line so far."""
        end = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.stderr_lines):
            try:
                line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r}:\n" + "\n".join(self.stderr_lines)
                ) from None
            if line is None:
                raise AssertionError(
                    f"the sandbox ended before a line matching {pattern!r}:\n"
                    + "\n".join(self.stderr_lines)
                )
            self.stderr_lines.append(line)
        return list(self.stderr_lines)

    def stop(self) -> list[str]:
        """SIGINT (its Ctrl-C), wait for the end, and return every stderr line it wrote."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.stderr_lines.append(line)
        return self.stderr_lines

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def request_log(self) -> list[tuple[str, str, str]]:
        """(method, path, status) of every request logged so far (call after `stop`)."""
        found = (_LOG_LINE.match(line) for line in self.stderr_lines)
        return [(m["method"], m["path"], m["status"]) for m in found if m]

    def request_times(self) -> list[float]:
        """Milliseconds each logged request took, as the sandbox measured it."""
        found = (_LOG_LINE.match(line) for line in self.stderr_lines)
        return [float(m["ms"]) for m in found if m]

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

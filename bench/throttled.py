"""429s under load (issue 12 item 5): `push --concurrency 20` against a 5-in-flight sandbox.

Starts the sandbox in this process with `max_in_flight=5` (a 429 with `Retry-After: 1`
beyond it) and a per-request latency, pushes an input of PARTS parts of 1 MB with the
installed `bulkctl push --concurrency 20` (real backoff: Retry-After plus jitter), and prints
the exit code, the 429s the server answered, the peak in flight and the wall time.

Usage: .venv/bin/python bench/throttled.py [--parts 60] [--latency-ms 200] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bulkctl.sandbox import Faults, start_sandbox

KEY = "wk_bench_throttled"


def write_input(path: Path, parts: int) -> None:
    """3 records of ~280 kB each per 1 MB part."""
    props = {f"p{k}": "f" * 31_000 for k in range(9)}
    with path.open("wb") as out:
        for n in range(3 * parts):
            out.write(orjson.dumps({"id": f"r{n}", "collection": "rooms", "properties": props}))
            out.write(b"\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--max-in-flight", type=int, default=5)
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "bulkctl"
    with tempfile.TemporaryDirectory(prefix="bulkctl-bench-") as tmp:
        root = Path(tmp)
        data = root / "rooms.ndjson"
        write_input(data, args.parts)
        env = dict(os.environ, BULKCTL_WRITE_KEY=KEY, BULKCTL_HOME=str(root / "home"))
        env.pop("BULKCTL_NO_BACKOFF", None)
        faults = Faults(latency_ms=args.latency_ms)
        with start_sandbox(
            root / "w.sqlite3", write_key=KEY, faults=faults, max_in_flight=args.max_in_flight
        ) as sandbox:
            command = [
                str(exe),
                "push",
                str(data),
                "--endpoint",
                sandbox.url,
                "--part-size",
                "1MB",
                "--concurrency",
                str(args.concurrency),
                "--json",
            ]
            started = time.monotonic()
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            elapsed = time.monotonic() - started
            refused, peak = sandbox.refused, sandbox.in_flight_peak
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    print(
        f"push --concurrency {args.concurrency}, {summary.get('parts')} parts, server allows "
        f"{args.max_in_flight} in flight, {args.latency_ms:g} ms a request: exit "
        f"{done.returncode}, status {summary.get('status')}, {refused} answers of 429, peak "
        f"{peak} in flight, {elapsed:.1f} s"
    )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())

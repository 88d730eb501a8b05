"""The chunked path gives the same output whatever the worker count, and the same as one pass.

Inputs are cut into small chunks here (the chunk size and the pool threshold are lowered), so a
few hundred kB spread over many chunks and the worker processes really run. Invalid records,
duplicate ids, unusual values (nulls, big numbers, nested objects, int ids, flat records) and
naming hints are sprinkled in, so every path of `bulkctl.fast.lines` and the merging is used.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import csv_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.console import Console
from bulkctl.fast.dispatch import process
from bulkctl.fast.state import WorkContext
from bulkctl.pack.packer import Packer
from bulkctl.read import chunks
from bulkctl.read.chunks import ItemsTask, LinesTask, ndjson_tasks
from bulkctl.records import ShapeOptions
from bulkctl.report.summary import validation_summary
from bulkctl.run import inputs as reading
from bulkctl.run.inputs import InputRun, ReadSettings
from bulkctl.targets.segment_bulk import SegmentBulkTarget

WORKER_COUNTS = (1, 2, 4)
VOLATILE = {"job", "elapsed_s", "out_dir"}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 16 kB, and worker processes for any input size."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16_000)
    monkeypatch.setattr(reading, "POOL_MIN_BYTES", 0)


def mixed_records(count: int = 2500, seed: int = 3) -> list[Any]:
    """Mostly valid canonical records over few ids, with every kind of oddity sprinkled in."""
    rng = random.Random(seed)
    out: list[Any] = []
    for n in range(count):
        props: dict[str, Any] = {
            "name": rng.choice(["Anna", "Zoë", "東京", 'say "hi"', "a+b"]),
            "score": rng.random() * 100,
            "age": rng.randrange(100),
            "active": rng.random() < 0.5,
        }
        if n % 7 == 0:
            props["note"] = "x" * rng.randrange(50)
        record: Any = {
            "id": f"id-{rng.randrange(400)}",
            "collection": rng.choice(["users", "rooms", "orders"]),
            "properties": props,
        }
        kind = n % 53
        if kind == 1:
            props["nested"] = {"a": 1}  # rejected: an object value
        elif kind == 2:
            props["gone"] = None  # valid: the null is dropped
        elif kind == 3:
            record["extra"] = 1  # rejected: unknown top-level field
        elif kind == 4:
            props["big"] = 2**60  # valid: beyond 53 bits, inside 64
        elif kind == 5:
            props["huge"] = 2**63 + 5  # rejected: beyond 64 bits
        elif kind == 6:
            props["far"] = 1e19  # valid: a float of any size (prints as 1e+19: checked exactly)
        elif kind == 7:
            props["firstName"] = "Ann"  # a hint: not snake_case
        elif kind == 8:
            record["collection"] = "user"  # a hint: singular
        elif kind == 9:
            record["id"] = n  # valid: an int id becomes a string
        elif kind == 10:
            record["id"] = ""  # rejected: empty id
        elif kind == 11:
            record = {"id": f"flat-{n}", "collection": "rooms", "size": n}  # a flat record
        elif kind == 12:
            record["collection"] = "Bad-Name"  # rejected: collection characters
        elif kind == 13:
            props["tags"] = ["a"]  # rejected: a list
        elif kind == 14:
            props[""] = 1  # rejected: empty property name
        elif kind == 15:
            props["e"] = 1.5e17  # valid: prints as 1.5e+17, checked exactly
        elif kind == 16:
            record = [1, 2]  # rejected: not an object
        out.append(record)
    return out


def ndjson_text(records: list[Any]) -> bytes:
    """NDJSON with a blank line and a broken line in the middle."""
    lines = [orjson.dumps(r) for r in records]
    lines.insert(len(lines) // 3, b"")
    lines.insert(len(lines) // 2, b'{"id": "broken", "collection": ')
    return b"\n".join(lines) + b"\n"


def json_array_text(records: list[Any]) -> bytes:
    return b"[\n" + b",\n".join(orjson.dumps(r) for r in records) + b"\n]\n"


def csv_text(count: int = 3000) -> bytes:
    """Flat rows: numbers to infer, empty cells, ids repeated, quoted commas, a column of
    exponents with some beyond 2^63, ids too long (rejected)."""
    rng = random.Random(5)
    rows = []
    for n in range(count):
        rows.append(
            {
                "id": "x" * 101 if n % 89 == 3 else f"r{rng.randrange(700)}",
                "name": rng.choice(["Ann", "Bo, Jr.", 'Q "x"', ""]),
                "age": str(rng.randrange(90)) if n % 11 else "",
                "zip": f"{rng.randrange(100000):05d}",
                "score": f"{rng.random() * 10:.3f}",
                "big": "1e19" if n % 97 == 5 else "7e0",
            }
        )
    return csv_bytes(rows)


def csv_multiline_text(count: int = 2500) -> bytes:
    """Quoted cells spanning lines (so rows cross chunk cuts) and stray quotes in plain cells."""
    rng = random.Random(9)
    lines = ["id,note,n"]
    for n in range(count):
        if n % 5 == 0:
            note = '"line one\nline ""two"", ' + "x" * rng.randrange(40) + '\nthree"'
        elif n % 37 == 0:
            note = 'a"b'  # a quote inside an unquoted cell: literal, and it unbalances counting
        else:
            note = "plain " + "y" * rng.randrange(60)
        record_id = "" if n % 41 == 3 else f"m{rng.randrange(300)}"  # no id: rejected
        lines.append(f"{record_id},{note},{n}")
    return ("\n".join(lines) + "\n").encode()


INPUTS = {
    "csv-multiline": ("multi.csv", csv_multiline_text),
    "ndjson": ("in.ndjson", lambda: ndjson_text(mixed_records())),
    "ndjson.gz": ("in.ndjson.gz", lambda: gzip.compress(ndjson_text(mixed_records()), mtime=0)),
    "json": ("in.json", lambda: json_array_text(mixed_records())),
    "csv": ("in.csv", csv_text),
}


def write_input(tmp_path: Path, kind: str) -> Path:
    name, make = INPUTS[kind]
    path = tmp_path / name
    path.write_bytes(make())
    return path


def push_outcome(cli: Any, path: Path, tmp_path: Path, workers: int) -> dict[str, Any]:
    """Everything a dry run leaves behind: parts' bytes, manifest, rejects, summary, stderr."""
    out = tmp_path / f"out-{workers}"
    rejects = tmp_path / f"rejects-{workers}.ndjson"
    args = ["push", path, "--dry-run", "--out", out, "--json", "--on-invalid", "skip"]
    args += ["--rejects", rejects, "--part-size", "1MB", "--concurrency", "3"]
    args += ["--collection", "rooms", "--workers", str(workers)]
    result = cli(args)
    assert result.exit_code == 1, result.stderr  # records were rejected (and skipped)
    manifest = json.loads((out / "manifest.json").read_text())
    files = {e["file"]: (out / e["file"]).read_bytes() for e in manifest["parts"]}
    summary = {k: v for k, v in json.loads(result.stdout).items() if k not in VOLATILE}
    return {
        "parts": manifest["parts"],
        "bytes": files,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "rejects": rejects.read_bytes(),
        "summary": summary,
        "stderr": stable_lines(result.stderr.replace(str(out), "OUT"), rejects),
    }


def stable_lines(stderr: str, rejects: Path) -> list[str]:
    """Standard error less elapsed times, with the rejects file's name left out."""
    text = re.sub(r"\d+\.\d+ s\b.*", "TIME", stderr.replace(str(rejects), "REJECTS"))
    return text.splitlines()


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_push_parts_rejects_and_summary_are_identical_at_1_2_and_4_workers(
    cli: Any, tmp_path: Path, kind: str
) -> None:
    """Parts (bytes and sha256), the rejects file, the --json summary and hints at any -w."""
    path = write_input(tmp_path, kind)
    outcomes = [push_outcome(cli, path, tmp_path, workers) for workers in WORKER_COUNTS]
    first = outcomes[0]
    assert len(first["parts"]) >= 3 and first["rejects"] and first["summary"]["valid"] > 1000
    for other in outcomes[1:]:
        assert other == first


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_validate_summary_hints_and_rejects_are_identical_at_1_2_and_4_workers(
    cli: Any, tmp_path: Path, kind: str
) -> None:
    """validate --json (counts, first errors, hints) and --rejects do not depend on -w."""
    path = write_input(tmp_path, kind)
    seen = []
    for workers in WORKER_COUNTS:
        rejects = tmp_path / f"v-{workers}.ndjson"
        args = ["validate", path, "--json", "--rejects", rejects, "--workers", str(workers)]
        result = cli([*args, "--collection", "rooms"])
        assert result.exit_code == 1
        summary = {k: v for k, v in json.loads(result.stdout).items() if k not in VOLATILE}
        seen.append((summary, rejects.read_bytes(), stable_lines(result.stderr, rejects)))
    assert seen[0][0]["hints"]["duplicate_ids"] > 0
    assert all(other == seen[0] for other in seen[1:])


def one_pass(path: Path, spool: Path, collection: str) -> tuple[list[Any], dict[str, Any]]:
    """The reference: record by record through `InputRun.lines` and `Packer.add`."""
    settings = ReadSettings(
        paths=(str(path),), shape=ShapeOptions(collection=collection), on_invalid="skip"
    )
    run = InputRun(settings, Console(quiet=True))
    spool.mkdir()
    with run, Packer(spool, 1_000_000, 3, 6) as packer:
        parts = []
        for record_collection, record_id, line in run.lines():
            parts += packer.add(record_collection, record_id, line)
        parts += packer.close()
    return parts, validation_summary(run.tally)


@pytest.mark.parametrize("kind", ["ndjson", "json", "csv", "csv-multiline"])
def test_chunked_path_decodes_to_what_one_record_by_record_pass_packs(
    cli: Any, tmp_path: Path, kind: str
) -> None:
    """Same parts (lanes, order, limits, numbering, lines), counts, errors and hints as before."""
    path = write_input(tmp_path, kind)
    parts, counts = one_pass(path, tmp_path / "reference", "rooms")
    chunked = push_outcome(cli, path, tmp_path, 2)
    got = [
        (e["number"], e["lane"], e["lane_seq"], e["records"], e["bytes_uncompressed"])
        for e in chunked["parts"]
    ]
    want = [(p.number, p.lane, p.lane_seq, p.records, p.bytes_uncompressed) for p in parts]
    assert got == want
    decoded = [gzip.decompress(chunked["bytes"][e["file"]]) for e in chunked["parts"]]
    assert decoded == [gzip.decompress(p.path.read_bytes()) for p in parts]
    summary = chunked["summary"]
    assert {k: summary[k] for k in ("records", "valid", "rejected", "collections")} == {
        k: counts[k] for k in ("records", "valid", "rejected", "collections")
    }
    validated = cli(["validate", path, "--json", "--collection", "rooms", "--workers", "2"])
    result = json.loads(validated.stdout)
    assert (result["errors"], result["hints"]) == (counts["errors"], counts["hints"])


def test_stdin_push_is_identical_to_the_same_file(cli: Any, tmp_path: Path) -> None:
    """Standard input is cut into the same chunks as the file, so the parts are the same."""
    path = write_input(tmp_path, "ndjson")
    from_file = push_outcome(cli, path, tmp_path, 2)
    out = tmp_path / "stdin-out"
    args = ["push", "-", "--dry-run", "--out", out, "--json", "--on-invalid", "skip"]
    args += ["--part-size", "1MB", "--concurrency", "3", "--collection", "rooms"]
    result = cli([*args, "--workers", "2"], input=path.read_bytes())
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["sha256"] for e in manifest["parts"]] == [e["sha256"] for e in from_file["parts"]]
    assert json.loads(result.stdout)["records"] == from_file["summary"]["records"]


def test_fail_fast_stream_reports_the_first_invalid_record_at_any_worker_count(
    cli: Any, tmp_path: Path
) -> None:
    """push --stream (fail mode) stops at the same record, with the same counts, at any -w."""
    path = write_input(tmp_path, "ndjson")
    seen = []
    for workers in WORKER_COUNTS:
        args = ["push", path, "--stream", "--dry-run", "--json", "--workers", str(workers)]
        result = cli(args)
        summary = json.loads(result.stdout)
        seen.append((result.exit_code, summary["records"], summary["valid"], summary["error"]))
    assert seen[0][0] == 1 and seen[0][3]
    assert all(other == seen[0] for other in seen[1:])


# -- chunk boundaries ------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that returns its data in pieces of the given sizes (like a pipe)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data = data
        self.sizes = sizes or [7]
        self.at = 0
        self.turn = 0

    def read(self, size: int = -1) -> bytes:
        step = self.sizes[self.turn % len(self.sizes)]
        self.turn += 1
        out = self.data[self.at : self.at + min(step, size if size >= 0 else step)]
        self.at += len(out)
        return out


def cut(data: bytes, chunk: int, limit: int, sizes: list[int]) -> list[LinesTask | ItemsTask]:
    return list(ndjson_tasks(Trickle(data, sizes).read, "s", limit, chunk))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    trailing=st.booleans(),
    chunk=st.integers(min_value=1, max_value=200),
    sizes=st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=5),
)
def test_chunks_are_whole_lines_at_the_same_places_however_reads_arrive(
    lines: list[bytes], trailing: bool, chunk: int, sizes: list[int]
) -> None:
    """Chunks join back to the input, end at a newline; the first one restarts the count."""
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    tasks = cut(data, chunk, 1_000_000, sizes)
    assert all(isinstance(t, LinesTask) for t in tasks)
    pieces = [t.data for t in tasks if isinstance(t, LinesTask)]
    assert b"".join(pieces) == data
    assert all(p.endswith(b"\n") for p in pieces[:-1])
    assert all(len(p) >= chunk for p in pieces[:-1])
    assert [isinstance(t, LinesTask) and t.restart for t in tasks] == [
        n == 0 for n in range(len(tasks))
    ]
    assert pieces == [t.data for t in cut(data, chunk, 1_000_000, [4096])]  # pipe or file


@settings(max_examples=40, deadline=None)
@given(
    long_at=st.integers(min_value=0, max_value=8),
    chunk=st.integers(min_value=1, max_value=120),
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=4),
)
def test_a_line_over_the_limit_is_one_rejection_and_is_never_held_much_past_the_limit(
    long_at: int, chunk: int, sizes: list[int]
) -> None:
    """A too-long line is rejected at its line number; the lines around it are all valid."""
    limit = 10
    cap = limit + chunks.SLACK
    lines = [orjson.dumps({"id": str(n), "collection": "c", "properties": {}}) for n in range(8)]
    lines.insert(long_at, b'"' + b"y" * cap + b'"')
    data = b"\n".join(lines) + b"\n"
    tasks = cut(data, chunk, limit, sizes)
    held = [len(t.data) for t in tasks if isinstance(t, LinesTask)]
    assert max(held) <= chunk + cap + 2 * max(sizes)
    target = SegmentBulkTarget()
    context = WorkContext(target, SEGMENT_RULES, ShapeOptions(), True, False, limit=limit)
    rejected, valid, base = [], 0, 0
    for task in tasks:  # lines are numbered from each task's start: add the lines before
        result = process(context, task)
        rejected += [
            (r.line + base, "longer than" in r.problems[0].message) for r, _ in result.rejections
        ]
        base += result.lines
        valid += result.valid
    assert rejected == [(long_at + 1, True)]
    assert valid == 8

"""A key repeated in one object is a rejection naming the key (never a silent pick of one value),
through the CLI: NDJSON and JSON arrays, files and pipes, top level and inside properties, the C
scanner and the Python path alike; colons inside values never make a record look repeated."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_native import python_path

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.fast.lines import ndjson_chunk
from bulkctl.fast.state import WorkContext
from bulkctl.records import ShapeOptions
from bulkctl.sandbox import start_sandbox
from bulkctl.targets.segment_bulk import SegmentBulkTarget

Cli = Callable[..., Any]
RULE = "record.duplicate_key"
GOOD = [
    '{"id":"g1","collection":"rooms","properties":{"at":"2024-01-02T10:00:00Z","n":1}}',
    '{"id":"g2","collection":"rooms","properties":{"url":"https://x.test:8080/a:b","n":2}}',
]
# (line, the field named, the text the message must name)
REPEATS = {
    "id": ('{"id":"1","id":"2","collection":"rooms","properties":{"a":1}}', "id"),
    "collection": (
        '{"id":"1","collection":"rooms","collection":"users","properties":{}}',
        "collection",
    ),
    "property": (
        '{"id":"1","collection":"rooms","properties":{"a":1,"b":2,"a":3}}',
        "properties.a",
    ),
    "properties": (
        '{"id":"1","collection":"rooms","properties":{},"properties":{"a":1}}',
        "properties",
    ),
    "flat property": ('{"id":"1","name":"x","name":"y"}', "name"),
    "flat id": ('{"id":"1","id":"2","name":"x"}', "id"),
    "spaced": ('{ "id" : "1" , "id"\t: "2", "collection" : "rooms", "properties" : { } }', "id"),
    "escaped": ('{"id":"1","\\u0069d":"2","collection":"rooms","properties":{}}', "id"),
    "colons in values": (
        '{"id":"1","collection":"rooms","properties":{"t":"10:00","t":"11:00:00"}}',
        "properties.t",
    ),
    "nested": (
        '{"id":"1","collection":"rooms","properties":{"m":{"k":1,"k":2}}}',
        "properties.m.k",
    ),
}
PATHS = [pytest.param("", id="c-path"), pytest.param("1", id="python-path")]


def document(lines: list[str], fmt: str) -> bytes:
    if fmt == "json":
        return ("[\n" + ",\n".join(lines) + "\n]\n").encode()
    return ("\n".join(lines) + "\n").encode()


def validate(
    cli: Cli, tmp_path: Path, data: bytes, fmt: str, via: str, no_native: str
) -> tuple[Any, dict[str, Any], list[str]]:
    """`bulkctl validate --json --rejects` of `data`: the result, its summary, the rejects."""
    rejects = tmp_path / "rejects.ndjson"
    args = ["--json", "--rejects", str(rejects), "--collection", "rooms"]
    env = {"BULKCTL_NO_NATIVE": no_native} if no_native else None
    if via == "stdin":
        result = cli(["validate", "-", "--format", fmt, *args], input=data, env=env)
    else:
        path = tmp_path / (f"in.{fmt}" + (".gz" if via == "gzip" else ""))
        path.write_bytes(gzip.compress(data) if via == "gzip" else data)
        result = cli(["validate", str(path), *args], env=env)
    return result, json.loads(result.stdout), rejects.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("via", ["file", "gzip", "stdin"])
@pytest.mark.parametrize("fmt", ["ndjson", "json"])
@pytest.mark.parametrize("case", list(REPEATS))
def test_a_repeated_key_is_a_rejection_naming_it(
    cli: Cli, tmp_path: Path, case: str, fmt: str, via: str
) -> None:
    """One rejection at the record's place, naming the key and both values; the C path and
    the Python path say exactly the same (summary, stderr, rejects file)."""
    line, field = REPEATS[case]
    data = document([GOOD[0], line, GOOD[1]], fmt)
    seen = []
    for no_native in ("", "1"):
        result, summary, rejects = validate(cli, tmp_path, data, fmt, via, no_native)
        assert result.exit_code == 1, result.stderr
        assert (summary["records"], summary["valid"], summary["rejected"]) == (3, 2, 1)
        [error] = summary["errors"]
        assert (error["line"], error.get("index")) == ((3, 1) if fmt == "json" else (2, None))
        [problem] = error["errors"]
        assert (problem["field"], problem["rule"]) == (field, RULE)
        assert f"key '{field}' is repeated in one object" in problem["message"]
        assert error["record"] == line  # the input's own text: a parse would lose a value
        assert [json.loads(r) for r in rejects] == [error]
        summary.pop("elapsed_s")
        seen.append((summary, re.sub(r"\d+\.\d+ s", "", result.stderr), rejects))
    assert seen[0] == seen[1]


def test_every_repeated_key_is_named_with_its_values(cli: Cli, tmp_path: Path) -> None:
    """Several repeats in one record: one rejection whose message names each, values shown."""
    line = '{"id":"1","collection":"rooms","properties":{"a":1,"b":"x","a":2,"b":"y","b":"z"}}'
    _, summary, _ = validate(cli, tmp_path, document([line], "ndjson"), "ndjson", "file", "")
    [problem] = summary["errors"][0]["errors"]
    assert problem["field"] == "properties.a"
    assert "'properties.a' (1, 2)" in problem["message"]
    assert '\'properties.b\' ("x", "y", "z")' in problem["message"]


@pytest.mark.parametrize("no_native", PATHS)
def test_colons_and_spacing_without_a_repeat_stay_valid(
    cli: Cli, tmp_path: Path, no_native: str
) -> None:
    """Timestamps, URLs, escaped quotes before a colon and spaced JSON are not repeats."""
    lines = [
        *GOOD,
        '{"id":"3","collection":"rooms","properties":{"q":"say \\":\\" twice \\":","r":":"}}',
        '{ "id" : "4" , "collection" : "rooms" , "properties" : { "a" : 1 , "b" : "c:d" } }',
        '{"id":"5","name":"x:y","note":" : "}',
    ]
    for fmt in ("ndjson", "json"):
        result, summary, _ = validate(
            cli, tmp_path, document(lines * 40, fmt), fmt, "file", no_native
        )
        assert result.exit_code == 0, result.stderr
        assert summary["valid"] == len(lines) * 40


@pytest.mark.parametrize("no_native", PATHS)
def test_a_push_never_sends_a_record_with_a_repeated_key(
    cli: Cli, tmp_path: Path, no_native: str
) -> None:
    """--on-invalid skip: among many good lines the repeated one is left out, exit 1."""
    good = [f'{{"id":"r{n}","collection":"rooms","properties":{{"n":{n}}}}}' for n in range(300)]
    lines = [*good[:150], REPEATS["id"][0], *good[150:]]
    path = tmp_path / "in.ndjson"
    path.write_bytes(document(lines, "ndjson"))
    out = tmp_path / "parts"
    env = {"BULKCTL_NO_NATIVE": no_native} if no_native else None
    args = ["push", str(path), "--dry-run", "--out", str(out), "--on-invalid", "skip", "--json"]
    result = cli(args, env=env)
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout)["rejected"] == 1
    sent = [
        json.loads(line)["id"]
        for part in sorted(out.glob("*.gz"))
        for line in gzip.decompress(part.read_bytes()).splitlines()
    ]
    assert sorted(sent) == sorted(f"r{n}" for n in range(300))


def test_a_xandr_user_with_a_repeated_key_is_refused(cli: Cli, tmp_path: Path) -> None:
    """The same rule for Xandr users, inside the segments too."""
    path = tmp_path / "users.ndjson"
    path.write_text(
        '{"uid":"u1","segments":[{"id":10,"expiration":0}]}\n'
        '{"uid":"u2","uid":"u3","segments":[{"id":10,"expiration":0}]}\n'
        '{"uid":"u4","segments":[{"id":10,"id":11,"expiration":0}]}\n'
    )
    result = cli(["validate", str(path), "--target", "xandr-bss", "--json"])
    assert result.exit_code == 1, result.stderr
    errors = json.loads(result.stdout)["errors"]
    assert [(e["line"], e["errors"][0]["field"], e["errors"][0]["rule"]) for e in errors] == [
        (2, "uid", RULE),
        (3, "segments[0].id", RULE),
    ]


def test_the_sandbox_refuses_a_line_with_a_repeated_key(tmp_path: Path) -> None:
    """The emulator reads what it receives as strictly: a 400 naming the line and the key."""
    body = document([GOOD[0], REPEATS["property"][0]], "ndjson")
    sandbox = start_sandbox(tmp_path / "w.sqlite3")
    try:
        with httpx.Client(base_url=sandbox.url, timeout=30) as client:
            sync_id = client.post("/v0/start").json()["sync_id"]
            response = client.post(
                f"/v0/upload/{sync_id}",
                content=gzip.compress(body),
                headers={"Content-Encoding": "gzip", "Content-Type": "binary/octet-stream"},
            )
    finally:
        sandbox.stop()
    assert response.status_code == 400
    answer = response.json()
    assert answer["line"] == 2
    assert [(p["field"], p["rule"]) for p in answer["problems"]] == [("properties.a", RULE)]


# -- the C scanner and the Python path on generated lines --------------------------------------

_NAMES = st.sampled_from(["a", "b", "id", "collection", "t"])
_VALUES = st.sampled_from(["1", '"x"', '"10:00:00"', "true", "2.5", '"a\\":b"'])
_SPACE = st.sampled_from(["", " ", "\t"])


@st.composite
def records(draw: st.DrawFn) -> str:
    """Canonical records whose properties may repeat a name, in compact or spaced JSON."""
    pairs = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
    gap = draw(_SPACE)
    body = ",".join(f'"{name}"{gap}:{gap}{value}' for name, value in pairs)
    top = f'"id":"r{draw(st.integers(0, 3))}","collection":"rooms"'
    if draw(st.booleans()) and pairs:
        top += ',"id":"again"'
    return f'{{{top},{gap}"properties":{{{body}}}}}'


def repeats(line: str) -> bool:
    """Whether any object of `line` repeats a key (the reference: every pair seen)."""
    found = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) < len(pairs):
            found.append(pairs)
        return dict(pairs)

    json.loads(line, object_pairs_hook=hook)
    return bool(found)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=120), st.booleans())
def test_both_paths_reject_exactly_the_lines_that_repeat_a_key(
    lines: list[str], pack: bool
) -> None:
    """A line is rejected for a repeated key if and only if it has one, C path or Python."""
    data = "".join(line + "\n" for line in lines).encode()
    context = WorkContext(SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(), True, pack, 2, None)
    fast = ndjson_chunk(context, "in", 1, data)
    with python_path():
        slow = ndjson_chunk(context, "in", 1, data)
    assert fast == slow
    rejected = [r.line for r, _ in fast.rejections if r.problems[0].rule == RULE]
    assert rejected == [n for n, line in enumerate(lines, start=1) if repeats(line)]
    assert fast.valid == len(lines) - len(fast.rejections)

"""Naming hints have one rule (`bulkctl.check.hints.NameBook`) on every path.

A collection's names are noted the first time a record shows them: non-snake_case names are
listed in the order records first show them (sorted within a record), and a singular
collection once, when first seen. The chunked worker path (the C scanner, the Python batch
and line paths, CSV columns), then the merge of chunks in input order, must give the same
hints as reading standard input does, name for name and in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkctl.read import chunks
from bulkctl.run import inputs as reading


def ndjson_input() -> bytes:
    lines = []
    for n in range(3000):
        collection = ("rooms", "guest", "menu_items")[n % 3]
        props: dict[str, Any] = {"n": n}
        if n == 2500:
            props |= {"Zeta": 1, "alphaBeta": 2}  # late, in a later chunk: sorted in the group
        if n == 7:
            props["Late Name"] = "x"
        if n in (4, 1204):  # the same name twice, far apart: listed once
            props["Mid Name"] = "a" if n == 4 else 1.5
        if n == 1000:
            props |= {"bName": "y", "aName": "z", "c_ok": True}
        lines.append(
            orjson.dumps({"id": str(n % 700), "collection": collection, "properties": props})
        )
    return b"\n".join(lines) + b"\n"


def csv_input() -> bytes:
    rows = ["id,n,Late Name,b Name,a_name"]
    for n in range(3000):
        rows.append(f"{n % 700},{n},{'x' if n == 2900 else ''},{'y' if n % 1000 == 999 else ''},1")
    return ("\n".join(rows) + "\n").encode()


def summary_of(cli: Any, args: list[str], given: bytes | None) -> dict[str, Any]:
    """The hints of a validate run's --json summary."""
    result = cli(args, input=given)
    assert result.exit_code == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary["hints"]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("workers", [1, 2])
def test_hints_name_the_same_names_in_the_same_order_on_every_path(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, native: bool
) -> None:
    """Small chunks, with and without workers and the C scanner: file and stdin agree."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 8_000)
    monkeypatch.setattr(reading, "POOL_MIN_BYTES", 0)
    if not native:
        monkeypatch.setenv("BULKCTL_NO_NATIVE", "1")
    path = tmp_path / "in.ndjson"
    path.write_bytes(ndjson_input())
    table = tmp_path / "in.csv"
    table.write_bytes(csv_input())
    common = ["--json", "--workers", str(workers)]
    for name, extra, expected in (
        (
            path,
            [],
            {
                "non_snake_case": {
                    "guest": ["Mid Name", "Late Name", "aName", "bName", "Zeta", "alphaBeta"]
                },
                "singular_collections": ["guest"],
                "duplicate_ids": 900,
            },
        ),
        (
            table,
            ["-c", "room"],
            {
                "non_snake_case": {"room": ["b Name", "Late Name"]},
                "singular_collections": ["room"],
                "duplicate_ids": 2300,
            },
        ),
    ):
        from_file = summary_of(cli, ["validate", str(name), *extra, *common], None)
        from_stdin = summary_of(
            cli,
            ["validate", "-", "--format", name.suffix[1:], *extra, *common],
            name.read_bytes(),
        )
        assert from_file == from_stdin == expected

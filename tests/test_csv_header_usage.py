"""What a CSV's header and the options make certain is one usage error before any row is read
(issue 11, item 5), and a bad row says what to fix (item 13): an empty id cell names its line
and column, a row of the wrong width says how many cells the header has and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

ROWS = 200_000


def big_csv(path: Path, header: str) -> Path:
    path.write_text(header + "\n" + "".join(f"r{n},name {n}\n" for n in range(ROWS)))
    return path


@pytest.mark.parametrize("command", ["validate", "push"])
def test_no_collection_is_one_usage_error_before_reading(
    cli: Any, tmp_path: Path, command: str
) -> None:
    """No -c and no collection column: exit 2 at once, not 200,000 rejected rows."""
    path = big_csv(tmp_path / "rooms.csv", "id,name")
    extra = ["--dry-run"] if command == "push" else []
    result = cli([command, str(path), "--json", *extra])
    assert result.exit_code == 2, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["records"] == 0 and summary["rejected"] == 0  # no row was read
    assert summary["error"] == (
        f"{path}:1: no collection for the rows: give one with -c/--collection NAME, or add a "
        "'collection' column (the header's columns: id, name)"
    )


def test_no_id_column_is_one_usage_error(cli: Any, tmp_path: Path) -> None:
    """The header lacks the id column (or --id-field names another): exit 2, naming it."""
    path = big_csv(tmp_path / "rooms.csv", "uid,name")
    result = cli(["validate", str(path), "-c", "rooms"])
    assert result.exit_code == 2
    assert (
        f"{path}:1: the header has no 'id' column for the object ids (its columns: uid, "
        "name); name the id column with --id-field COLUMN" in result.stderr
    )
    assert "records are invalid" not in result.stderr
    ok = cli(["validate", str(path), "-c", "rooms", "--id-field", "uid"])
    assert ok.exit_code == 0, ok.stderr


def test_a_collection_column_is_enough(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("id,collection,name\n1,rooms,a\n2,users,b\n")
    result = cli(["validate", str(path)])
    assert result.exit_code == 0, result.stderr


def test_an_empty_id_cell_names_its_line_and_column(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "rooms.csv"
    path.write_text("name,id\na,1\nb,\n")
    rejects = tmp_path / "rejects.ndjson"
    result = cli(["validate", str(path), "-c", "rooms", "--rejects", str(rejects)])
    assert result.exit_code == 1
    message = "the id cell (column 2, 'id') is empty; every row needs an id"
    assert f"{path}:3: id: {message}" in result.stderr
    (rejected,) = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert rejected["line"] == 3 and message in str(rejected["errors"])


def test_a_row_of_the_wrong_width_says_what_to_do(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "rooms.csv"
    path.write_text("id,name,city\n1,a,b\n2,Smith, John,Praha\n3,c\n")
    result = cli(["validate", str(path), "-c", "rooms"])
    assert result.exit_code == 1
    assert (
        f"{path}:3: row has 4 cells but the header has 3: put a cell that holds the "
        "delimiter ',' in double quotes, or pass --delimiter if the file is not ','-separated"
        in result.stderr
    )
    assert (
        f"{path}:4: row has 2 cells but the header has 3: give every row 3 cells (an empty "
        "cell is nothing between two delimiters)" in result.stderr
    )

"""`bulkctl validate` through the CLI, as users call it: exit codes, what each message names
(file:line[ index]:field), the --json summary, the --rejects file, stdin, -v, empty input, hints.

The reader quirks themselves are unit-tested in test_sources.py; here one table of record
problems runs over every format it applies to, as a file, a gzip file and standard input.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import assert_plain_text, csv_bytes

from bulkctl.native import native

Cli = Callable[..., Any]
ALL = ("ndjson", "json", "csv", "tsv")
JSONISH = ("ndjson", "json")
EXT = {"ndjson": ".ndjson", "json": ".json", "csv": ".csv", "tsv": ".tsv"}
SUMMARY_KEYS = {"status", "records", "valid", "rejected", "errors"}

# A row that is written as raw text instead of being encoded (broken input on purpose).
RAW = "__raw__"


@dataclass(frozen=True)
class Case:
    """Rows (flat objects, encoded per format) and, by row index, the fields they break."""

    rows: list[Any]
    bad: dict[int, list[str | None]] = field(default_factory=dict)
    formats: tuple[str, ...] = ALL


GOOD = [{"id": "a1", "name": "Ann", "beds": 2}, {"id": "b2", "name": "Bob", "beds": 3}]

CASES: dict[str, Case] = {
    "all valid": Case(GOOD),
    "collection not lowercase": Case(
        [GOOD[0], {"id": "c3", "collection": "Guest Rooms", "name": "x"}, GOOD[1]],
        {1: ["collection"]},
    ),
    "collection starts with an underscore": Case(
        [{"id": "c3", "collection": "_rooms", "name": "x"}, *GOOD], {0: ["collection"]}
    ),
    "missing id": Case([GOOD[0], {"name": "nobody"}], {1: ["id"]}),
    "id too long": Case([{"id": "x" * 101, "name": "long"}, *GOOD], {0: ["id"]}),
    "value too long": Case([*GOOD, {"id": "c3", "bio": "y" * 40_000}], {2: ["properties.bio"]}),
    "two problems in one record": Case(
        [{"id": "z" * 150, "collection": "Bad", "name": "x"}, GOOD[0]], {0: ["id", "collection"]}
    ),
    "list value": Case(
        [GOOD[0], {"id": "c3", "tags": ["a", "b"]}], {1: ["properties.tags"]}, JSONISH
    ),
    "nested object value": Case(
        [{"id": "c3", "meta": {"k": 1}}, GOOD[0]], {0: ["properties.meta"]}, JSONISH
    ),
    "id is a boolean": Case([GOOD[0], {"id": True, "name": "x"}], {1: ["id"]}, JSONISH),
    "record is not an object": Case([GOOD[0], 42, GOOD[1]], {1: [None]}, JSONISH),
    "unknown top-level field beside properties": Case(
        [{"id": "c3", "collection": "rooms", "properties": {"a": 1}, "extra": 1}, GOOD[0]],
        {0: ["extra"]},
        JSONISH,
    ),
    "line is not JSON": Case(
        [GOOD[0], {RAW: '{"id": "c3", "name": '}, GOOD[1]], {1: [None]}, ("ndjson",)
    ),
    "row with an extra cell": Case(
        [GOOD[0], {RAW: "c3,Cid,4,surplus"}, GOOD[1]], {1: [None]}, ("csv", "tsv")
    ),
}


def render(fmt: str, rows: list[Any]) -> tuple[bytes, list[tuple[int, int | None]]]:
    """The rows in `fmt`, and where (line, index) each one starts."""
    if fmt == "ndjson":
        lines = [
            r[RAW] if isinstance(r, dict) and RAW in r else orjson.dumps(r).decode() for r in rows
        ]
        return ("\n".join(lines) + "\n").encode(), [(n + 1, None) for n in range(len(rows))]
    if fmt == "json":
        body = ",\n".join(orjson.dumps(r).decode() for r in rows)
        return f"[\n{body}\n]\n".encode(), [(n + 2, n) for n in range(len(rows))]
    delimiter = "\t" if fmt == "tsv" else ","
    plain = [r for r in rows if RAW not in r]
    header, *lines = csv_bytes(plain, delimiter=delimiter).decode().splitlines()
    out = [header]
    for row in rows:
        out.append(row[RAW].replace(",", delimiter) if RAW in row else lines.pop(0))
    return ("\n".join(out) + "\n").encode(), [(n + 2, None) for n in range(len(rows))]


def where(source: str, line: int, index: int | None) -> str:
    return f"{source}:{line}" if index is None else f"{source}:{line} [index {index}]"


def one_json(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {stdout!r}"
    document = json.loads(lines[0])
    assert isinstance(document, dict)
    return document


def table_params() -> list[Any]:
    return [
        pytest.param(name, fmt, via, id=f"{name}-{fmt}-{via}")
        for name, case in CASES.items()
        for fmt in case.formats
        for via in ("file", "gzip", "stdin")
    ]


@pytest.mark.parametrize(("name", "fmt", "via"), table_params())
def test_record_problems_over_every_format(
    cli: Cli, tmp_path: Path, name: str, fmt: str, via: str
) -> None:
    """Each rejection is named file:line[ index]:field in stderr, --json and --rejects; exit 0/1."""
    case = CASES[name]
    data, places = render(fmt, case.rows)
    rejects = tmp_path / "rejects.ndjson"
    args = ["validate", "-c", "rooms", "--json", "--rejects", str(rejects)]
    if via == "stdin":
        source = "<stdin>"
        result = cli([*args, "-f", fmt], input=data)
    else:
        path = tmp_path / f"input{EXT[fmt]}{'.gz' if via == 'gzip' else ''}"
        path.write_bytes(gzip.compress(data) if via == "gzip" else data)
        source = str(path)
        result = cli([*args, source])

    assert result.exit_code == (1 if case.bad else 0), result.stderr
    expected = [(source, *places[row], fields) for row, fields in sorted(case.bad.items())]
    summary = one_json(result.stdout)
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["status"] == ("invalid" if case.bad else "valid")
    assert (summary["records"], summary["valid"], summary["rejected"]) == (
        len(case.rows),
        len(case.rows) - len(case.bad),
        len(case.bad),
    )
    assert summary["error"] is None
    got = [
        (e["source"], e["line"], e.get("index"), [p["field"] for p in e["errors"]])
        for e in summary["errors"]
    ]
    assert got == expected
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [
        (r["source"], r["line"], r.get("index"), [p["field"] for p in r["errors"]]) for r in written
    ] == expected
    for entry in written:
        assert set(entry) <= {"source", "line", "index", "errors", "record"}
        assert all(p["message"] and p["rule"] for p in entry["errors"])
        assert "record" in entry
    for row, fields in case.bad.items():
        original = case.rows[row]
        record = written[sorted(case.bad).index(row)]["record"]
        if isinstance(original, dict) and RAW in original:
            assert record == original[RAW].replace(",", "\t" if fmt == "tsv" else ",")
        elif fmt in JSONISH:
            assert record == original
        for field_name in fields:
            prefix = where(source, *places[row]) + (f": {field_name}: " if field_name else ": ")
            assert prefix in result.stderr
    assert_plain_text(result.stderr)


# -- stdin, formats and -v -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL)
def test_piped_input_is_read_and_verbose_says_the_sniffed_format(cli: Cli, fmt: str) -> None:
    """`producer | bulkctl validate -v`: no PATH reads stdin; -v says which format it chose."""
    data, _ = render(fmt, GOOD)
    result = cli(["validate", "-c", "rooms", "-v"], input=data)
    assert result.exit_code == 0, result.stderr
    assert f"<stdin>: format {fmt} (from the first bytes" in result.stderr
    assert "2 records: 2 valid, 0 rejected" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("fmt", ALL)
def test_verbose_says_the_format_taken_from_the_file_name(
    cli: Cli, tmp_path: Path, fmt: str
) -> None:
    """-v names each file's format and why (its name, even when gzipped)."""
    data, _ = render(fmt, GOOD)
    path = tmp_path / f"in{EXT[fmt]}.gz"
    path.write_bytes(gzip.compress(data))
    result = cli(["validate", "-c", "rooms", "-v", str(path)])
    assert result.exit_code == 0, result.stderr
    assert f"{path}: format {fmt} (from the name {EXT[fmt]}.gz)" in result.stderr


def test_explicit_format_wins_and_verbose_says_so(cli: Cli, tmp_path: Path) -> None:
    """-f overrides the name; -v says the format came from --format."""
    data, _ = render("ndjson", GOOD)
    path = tmp_path / "export.txt"
    path.write_bytes(data)
    result = cli(["validate", "-c", "rooms", "-v", "-f", "ndjson", str(path)])
    assert result.exit_code == 0, result.stderr
    assert f"{path}: format ndjson (from --format ndjson)" in result.stderr


def test_without_verbose_the_format_line_is_not_shown(cli: Cli, tmp_path: Path) -> None:
    """The chosen-format line is a -v detail."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(render("ndjson", GOOD)[0])
    result = cli(["validate", "-c", "rooms", str(path)])
    assert result.exit_code == 0
    assert "(from the name" not in result.stderr


def test_several_files_are_each_named_in_their_rejections(cli: Cli, tmp_path: Path) -> None:
    """Every input is read in order; each rejection names its own file."""
    first = tmp_path / "a.ndjson"
    first.write_bytes(render("ndjson", [GOOD[0], {"name": "no id"}])[0])
    second = tmp_path / "b.csv"
    second.write_bytes(render("csv", [{"id": "c3", "collection": "Bad", "name": "x"}])[0])
    result = cli(["validate", "-c", "rooms", "--json", str(first), str(second)])
    assert result.exit_code == 1
    assert f"{first}:2: id: " in result.stderr
    assert f"{second}:2: collection: " in result.stderr
    summary = one_json(result.stdout)
    assert [(e["source"], e["line"]) for e in summary["errors"]] == [
        (str(first), 2),
        (str(second), 2),
    ]


# -- empty input, hints, many rejections -----------------------------------------------------

EMPTY = {
    "ndjson": b"",
    "ndjson blank lines": b"\n\n  \n",
    "json": b"[]",
    "csv": b"",
    "csv header only": b"id,name\n",
    "tsv header only": b"id\tname\n",
}


@pytest.mark.parametrize("kind", list(EMPTY))
def test_empty_input_says_so(cli: Cli, tmp_path: Path, kind: str) -> None:
    """An input without records says "no records in FILE"; with --allow-empty that is exit 0."""
    fmt = kind.split()[0]
    path = tmp_path / f"empty{EXT[fmt]}"
    path.write_bytes(EMPTY[kind])
    result = cli(["validate", "-c", "rooms", "--json", "--allow-empty", str(path)])
    assert result.exit_code == 0, result.stderr
    assert f"no records in {path}" in result.stderr
    summary = one_json(result.stdout)
    assert (summary["records"], summary["valid"], summary["rejected"]) == (0, 0, 0)


def test_empty_standard_input_says_so(cli: Cli) -> None:
    """Nothing piped in: "no records in <stdin>", exit 1 (an upstream failure, issue 11)."""
    result = cli(["validate", "-c", "rooms"], input=b"")
    assert result.exit_code == 1, result.stderr
    assert "no records in <stdin>" in result.stderr


def test_hints_are_advice_that_never_fails(cli: Cli, tmp_path: Path) -> None:
    """Non-snake_case names, a singular collection and repeated ids are hints; exit stays 0."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(
        render(
            "ndjson",
            [
                {"id": "1", "roomName": "x", "beds": 1},
                {"id": "2", "Floor Plan": "y"},
                {"id": "1", "beds": 2},
            ],
        )[0]
    )
    result = cli(["validate", "-c", "room", "--json", str(path)])
    assert result.exit_code == 0, result.stderr
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint: ")]
    naming = [line for line in hints if "not snake_case" in line]
    assert len(naming) == 1
    assert "hint: room: property names are not snake_case: " in naming[0]
    assert "Floor Plan" in naming[0] and "roomName" in naming[0] and "beds" not in naming[0]
    assert "hint: collection 'room' looks singular; plural names are recommended" in hints
    assert any("1 records repeat an id seen earlier" in line for line in hints)
    summary = one_json(result.stdout)
    assert summary["status"] == "valid"
    assert {k: sorted(v) for k, v in summary["hints"]["non_snake_case"].items()} == {
        "room": ["Floor Plan", "roomName"]
    }
    assert summary["hints"]["singular_collections"] == ["room"]
    assert summary["hints"]["duplicate_ids"] == 1


def rejection_lines(stderr: str, path: Path) -> list[str]:
    return [line for line in stderr.splitlines() if re.match(rf"{re.escape(str(path))}:\d", line)]


def many_bad(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(render("ndjson", [{"name": f"no id {n}"} for n in range(count)])[0])
    return path


def test_many_rejections_are_capped_on_screen_and_in_json_but_all_in_rejects(
    cli: Cli, tmp_path: Path
) -> None:
    """25 rejections: 10 shown, then a pointer; --json keeps the first 20; --rejects all 25."""
    path = many_bad(tmp_path, 25)
    rejects = tmp_path / "rejects.ndjson"
    result = cli(["validate", "-c", "rooms", "--json", "--rejects", str(rejects), str(path)])
    assert result.exit_code == 1
    shown = rejection_lines(result.stderr, path)
    assert len(shown) == 10
    assert "more rejections not shown" in result.stderr
    assert f"every rejection is in {rejects}" in result.stderr
    summary = one_json(result.stdout)
    assert summary["rejected"] == 25
    assert [e["line"] for e in summary["errors"]] == list(range(1, 21))
    assert [json.loads(x)["line"] for x in rejects.read_text().splitlines()] == list(range(1, 26))


def test_verbose_shows_every_rejection(cli: Cli, tmp_path: Path) -> None:
    """-v lifts the on-screen cap."""
    path = many_bad(tmp_path, 25)
    result = cli(["validate", "-c", "rooms", "-v", str(path)])
    assert result.exit_code == 1
    shown = rejection_lines(result.stderr, path)
    assert len(shown) == 25


def test_quiet_prints_only_the_error(cli: Cli, tmp_path: Path) -> None:
    """-q: no progress, counts or rejections on stderr; only the final error line."""
    result = cli(["validate", "-c", "rooms", "-q", str(many_bad(tmp_path, 3))])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "bulkctl: error: 3 of 3 records are invalid (--rejects FILE lists them all)"
    ]


def test_skip_mode_still_exits_1(cli: Cli, tmp_path: Path) -> None:
    """validate --on-invalid skip counts the same and still says 1: something was rejected."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(render("ndjson", [GOOD[0], {"name": "no id"}])[0])
    result = cli(["validate", "-c", "rooms", "--on-invalid", "skip", "--json", str(path)])
    assert result.exit_code == 1
    assert one_json(result.stdout)["rejected"] == 1


def test_id_field_picks_the_id_column(cli: Cli, tmp_path: Path) -> None:
    """--id-field names the field holding the id, for flat JSON and CSV alike."""
    rows = [{"room_id": "r1", "name": "x"}, {"room_id": "r2", "name": "y"}]
    for fmt in ("ndjson", "csv"):
        path = tmp_path / f"in{EXT[fmt]}"
        path.write_bytes(render(fmt, rows)[0])
        without = cli(["validate", "-c", "rooms", "-q", str(path)])
        assert without.exit_code == (2 if fmt == "csv" else 1)  # CSV: certain from the header
        result = cli(["validate", "-c", "rooms", "--id-field", "room_id", str(path)])
        assert result.exit_code == 0, result.stderr


def test_missing_collection_says_how_to_give_one(cli: Cli, tmp_path: Path) -> None:
    """A CSV without a collection column and no -c: one usage error at the header, naming the
    fix (test_csv_header_usage.py has the details)."""
    path = tmp_path / "in.csv"
    path.write_bytes(render("csv", GOOD)[0])
    result = cli(["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:1: no collection for the rows" in result.stderr
    assert "--collection NAME" in result.stderr


# -- inputs that cannot be read, usage errors ------------------------------------------------


def test_missing_file_is_exit_1_with_one_json_object(cli: Cli, tmp_path: Path) -> None:
    """A missing input: exit 1, the path named, and still exactly one JSON object."""
    path = tmp_path / "nope.ndjson"
    result = cli(["validate", "--json", str(path)])
    assert result.exit_code == 1
    assert "nope.ndjson" in result.stderr
    summary = one_json(result.stdout)
    assert summary["status"] == "invalid"
    assert "nope.ndjson" in summary["error"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cut.json", b'[{"id": "a1"},\n{"id": "b2"', ":2: "),
        ("cut.ndjson.gz", gzip.compress(b'{"id": "a1"}\n' * 2000)[:-40], "gzip"),
    ],
)
def test_broken_input_is_exit_1_naming_where(
    cli: Cli, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    """A truncated JSON document or gzip stream: exit 1, the file and place named, JSON error."""
    path = tmp_path / name
    path.write_bytes(data)
    result = cli(["validate", "-c", "rooms", "--json", str(path)])
    assert result.exit_code == 1
    error_line = result.stderr.splitlines()[-1]
    assert error_line.startswith(f"bulkctl: error: {path}")
    assert message in error_line
    summary = one_json(result.stdout)
    assert summary["status"] == "invalid"
    assert summary["error"] and str(path) in summary["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format 'xml'"),
        (["--on-invalid", "ignore"], "--on-invalid 'ignore'"),
        (["--type", "beds"], "--type 'beds'"),
        (["-q", "-v"], "--quiet and --verbose"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_options_are_usage_errors(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    """A bad option value is exit 2 with a message naming it, before any input is read."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(render("ndjson", GOOD)[0])
    result = cli(["validate", "-c", "rooms", *args, str(path)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.skipif(native() is None, reason="the C fast path was not built")
def test_verbose_says_how_records_are_checked_and_the_c_path_can_be_turned_off(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-v says whether the C fast path checks the lines; BULKCTL_NO_NATIVE=1 turns it off."""
    data, _ = render("ndjson", GOOD)
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    result = cli(["validate", "-c", "rooms", "-v", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "records are checked in this process: C fast path" in result.stderr
    monkeypatch.setenv("BULKCTL_NO_NATIVE", "1")
    off = cli(["validate", "-c", "rooms", "-v", str(path)])
    assert off.exit_code == 0, off.stderr
    assert "checked in this process: in Python (BULKCTL_NO_NATIVE is set)" in off.stderr
    assert "2 records: 2 valid, 0 rejected" in off.stderr

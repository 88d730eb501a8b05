"""CSV types are decided per column from every value, through the CLI as users run it.

A column is numbers only when every non-empty value is one in canonical spelling, booleans
only when every value is true/false, else every value stays a string (issue 11, item 2); the
first pass runs in the worker processes for files and on a spooled copy for standard input;
`--type` overrides and `-v` lists the types. The C first pass (`csv_kinds`) and the Python one
give the same flags (hypothesis below), and a column's flags are its cells' flags merged.
"""

from __future__ import annotations

import gzip
import io
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from helpers import decode_part
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_csv_speedpath import csv_data

from bulkctl.native import native
from bulkctl.read import csv_types as csvtypes
from bulkctl.read.csv_chunks import CsvTask, csv_tasks
from bulkctl.read.csv_rows import CsvSettings
from bulkctl.read.csv_typing import type_chunk


def pushed(cli: Any, tmp_path: Path, args: list[str], *, input: bytes | None = None) -> Any:
    """Run `push ARGS --dry-run --out DIR` and return (result, records by id)."""
    out = tmp_path / "parts"
    result = cli(["push", *args, "--dry-run", "--out", str(out), "-v"], input=input)
    assert result.exit_code == 0, result.stderr
    records: dict[str, Any] = {}
    for part in sorted(out.glob("*.gz")):
        for record in decode_part(part.read_bytes()):
            records[record["id"]] = record["properties"]
    return result, records


MIXED = (
    "id,zip,hex,code,n,price,ratio,flag,yesno,note\n"
    "1,00983,a2868528f6,1234e5,5,10,1e5,true,yes,12\n"
    "2,12345,50454e32,x1,-3,12.5,2.5E-3,false,no,-0\n"
    "3,,1234e5,,,0.25,,,,7\n"
)


def test_each_column_has_one_type_decided_from_every_value(cli: Any, tmp_path: Path) -> None:
    """zip codes stay strings beside a leading-zero one, hex ids stay ids (50454e32 is not
    5.0454e+36), a 1234e5 among text stays text; ints, floats (ints among decimals become
    floats), all-exponent columns and true/false columns are typed as one."""
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED)
    result, records = pushed(cli, tmp_path, [str(path), "-c", "rooms"])
    assert records["1"] == {
        "zip": "00983", "hex": "a2868528f6", "code": "1234e5", "n": 5, "price": 10.0,
        "ratio": 100000.0, "flag": True, "yesno": "yes", "note": "12",
    }  # fmt: skip
    assert records["2"] == {
        "zip": "12345", "hex": "50454e32", "code": "x1", "n": -3, "price": 12.5,
        "ratio": 0.0025, "flag": False, "yesno": "no", "note": "-0",
    }  # fmt: skip
    assert records["3"] == {"hex": "1234e5", "price": 0.25, "note": "7"}
    assert (
        "mixed.csv: column types (" in result.stderr
        and "id=str (the id), zip=str, hex=str, code=str, n=int, price=float, ratio=float, "
        "flag=bool, yesno=str, note=str"
        in result.stderr
    )


def test_type_overrides_and_no_infer(cli: Any, tmp_path: Path) -> None:
    """--type sets a column's type (leniently: 00983 is the int 983); --no-infer keeps the
    rest strings, and -v says which columns are which."""
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED)
    args = [str(path), "-c", "rooms", "--type", "zip=int", "--type", "flag=str"]
    result, records = pushed(cli, tmp_path, args)
    assert records["1"]["zip"] == 983 and records["2"]["zip"] == 12345
    assert records["1"]["flag"] == "true" and records["1"]["n"] == 5
    assert "zip=int (--type)" in result.stderr and "flag=str (--type)" in result.stderr
    _, plain = pushed(cli, tmp_path / "b", [str(path), "-c", "rooms", "--no-infer"])
    assert plain["1"]["n"] == "5" and plain["1"]["flag"] == "true"


@pytest.mark.parametrize("compressed", [False, True])
def test_standard_input_is_typed_like_the_file(cli: Any, tmp_path: Path, compressed: bool) -> None:
    """CSV piped to standard input (gzip too) is spooled and typed as the same file is."""
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED)
    _, from_file = pushed(cli, tmp_path / "f", [str(path), "-c", "rooms"])
    data = MIXED.encode()
    piped = gzip.compress(data) if compressed else data
    _, from_stdin = pushed(cli, tmp_path / "s", ["-", "-c", "rooms", "-f", "csv"], input=piped)
    assert from_stdin == from_file


def test_the_first_pass_runs_in_the_workers_and_sees_the_last_row(cli: Any, tmp_path: Path) -> None:
    """A file big enough for worker processes, whose only leading-zero zip and only word in
    a number column are in its last rows: every zip is a string, every count a string."""
    rows = [f"r{n},{10000 + n % 80000},{n},{n % 7}.5,name number {n}\n" for n in range(120_000)]
    rows += ["last,00501,many,1,x\n"]
    path = tmp_path / "big.csv"
    path.write_text("id,zip,count,score,name\n" + "".join(rows))
    assert path.stat().st_size > 4 << 20  # bulkctl.run.inputs.POOL_MIN_BYTES: workers are used
    result, records = pushed(cli, tmp_path, [str(path), "-c", "rooms", "--workers", "2"])
    assert "in 2 worker processes" in result.stderr
    assert records["r1"] == {"zip": "10001", "count": "1", "score": 1.5, "name": "name number 1"}
    assert records["last"] == {"zip": "00501", "count": "many", "score": 1.0, "name": "x"}
    assert len(records) == 120_001


def test_validate_lists_the_types_and_accepts_what_push_accepts(cli: Any, tmp_path: Path) -> None:
    """validate runs the same first pass (-v lists the types)."""
    path = tmp_path / "mixed.tsv"
    path.write_text(MIXED.replace(",", "\t"))
    result = cli(["validate", str(path), "-c", "rooms", "-v"])
    assert result.exit_code == 0, result.stderr
    assert "n=int, price=float, ratio=float, flag=bool" in result.stderr


# -- the rule itself, and the C first pass against the Python one ------------------------------

CELLS = st.one_of(
    st.just(""),
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(
        [
            "0",
            "-0",
            "-0.0",
            "00",
            "007",
            "1.",
            ".5",
            "+1",
            " 1",
            "1e400",
            "-1e309",
            "1E5",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "1" * 309 + ".5",
            "9" * 400,
            "true",
            "false",
            "True",
            "yes",
            "a2868528f6",
            "50454e32",
            "٣",
            "é",
            'q"x',
            "a,b",
            "1\r",
            "",
        ]
    ),
    st.text(max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=30))
def test_a_columns_flags_are_its_cells_flags_merged(cells: list[str]) -> None:
    """column_flags (regexes over the joined column) is cell_flags merged cell by cell."""
    filled = [cell for cell in cells if cell and "\n" not in cell]
    want = reduce(
        lambda flags, cell: (
            (flags & csvtypes.cell_flags(cell) & csvtypes.ALL)
            | ((flags | csvtypes.cell_flags(cell)) & csvtypes.SOME)
        ),
        filled,
        csvtypes.ALL,
    )
    assert csvtypes.column_flags(filled) == want


@pytest.mark.skipif(native() is None, reason="the C fast path is not built")
@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(CELLS, min_size=3, max_size=3), min_size=1, max_size=25),
    st.sampled_from([",", "\t", ";"]),
    st.integers(0, 3),
)
def test_the_c_first_pass_gives_the_python_flags(
    rows: list[list[str]], delimiter: str, ragged: int
) -> None:
    """csv_kinds, when it takes a chunk, gives type_chunk's Python flags exactly."""
    if ragged == 0 and len(rows) > 1:
        rows[1] = rows[1][:2]  # a row of another width: Python skips it, C hands it back
    data = csv_data(["id", "a", "b"], rows, delimiter)
    stream = io.BytesIO(data)
    for task in csv_tasks(stream.readline, stream.read, "t.csv", CsvSettings(delimiter=delimiter)):
        assert isinstance(task, CsvTask)
        module = native()
        assert module is not None
        got = module.csv_kinds(task.data, ord(delimiter), 3, task.settings.limit)
        want = python_flags(task)
        if got is not None:
            assert got == want.columns


def python_flags(task: CsvTask) -> Any:
    import bulkctl.read.csv_typing as typing_module

    real = typing_module.native
    typing_module.native = lambda: None  # type: ignore[assignment]
    try:
        return type_chunk(task)
    finally:
        typing_module.native = real


def test_the_rule_in_examples() -> None:
    """The README's examples, column by column."""
    cases = {
        ("1", "22", "-3"): "int",
        ("1", "2.5"): "float",
        ("1e5", "2.5E-3"): "float",
        ("1e5", "2.5"): "str",
        ("00983", "12345"): "str",
        ("a2868528f6", "50454e32"): "str",
        ("true", "false", ""): "bool",
        ("true", "yes"): "str",
        ("-0",): "str",
        ("9223372036854775808",): "str",
        ("", ""): "str",
    }
    for cells, kind in cases.items():
        assert csvtypes.kind_of(csvtypes.column_flags(cells)) == kind, cells


@pytest.mark.skipif(native() is None, reason="the C fast path is not built")
def test_a_plain_chunk_is_typed_in_c() -> None:
    """The rows of MIXED are all plain: C types them, as Python does."""
    stream = io.BytesIO(MIXED.encode())
    (task,) = csv_tasks(stream.readline, stream.read, "t.csv", CsvSettings())
    assert isinstance(task, CsvTask)
    module = native()
    assert module is not None
    got = module.csv_kinds(task.data, ord(","), len(task.header), task.settings.limit)
    assert got is not None and got == python_flags(task).columns


@pytest.mark.skipif(native() is None, reason="the C fast path is not built")
@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(CELLS, min_size=3, max_size=3), min_size=0, max_size=25),
    st.integers(1, 40),
    st.booleans(),
)
def test_spans_give_the_types_the_exact_pass_gives(
    rows: list[list[str]], span: int, final_newline: bool
) -> None:
    """A file typed in byte spans its workers read (any span size, cut anywhere) gets the
    types the row-aligned pass gives, whenever the C pass takes every span."""
    import tempfile

    import bulkctl.read.csv_typing as typing_module
    from bulkctl.read.csv_typing import decide_types, run_here
    from bulkctl.read.sources import ReadOptions, open_sources

    data = csv_data(["id", "a", "b"], rows, ",")
    if not final_newline:
        data = data.rstrip(b"\n")
    assume(b"\0" not in data)  # not text: refused before any pass
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(data)
        (source,) = open_sources([str(path)], ReadOptions())
        real = typing_module.SPAN_BYTES
        typing_module.SPAN_BYTES = span
        try:
            spans = source._span_types(run_here)
        finally:
            typing_module.SPAN_BYTES = real
        exact = decide_types(source._csv_tasks(), run_here)
    if spans is not None:
        header = ("id", "a", "b")
        assert spans[0] == header and exact[0] in (header, ())  # () when no row follows
        assert [spans[1].get(name, "str") for name in header] == [
            exact[1].get(name, "str") for name in header
        ]


@pytest.mark.skipif(native() is None, reason="the C fast path is not built")
@pytest.mark.parametrize("span", [1, 5, 17, 1 << 20])
def test_a_plain_file_is_typed_in_spans(tmp_path: Path, span: int) -> None:
    """MIXED in spans of any size: the C pass takes them all, with the exact pass's types."""
    import bulkctl.read.csv_typing as typing_module
    from bulkctl.read.csv_typing import decide_types, run_here
    from bulkctl.read.sources import ReadOptions, open_sources

    path = tmp_path / "t.csv"
    path.write_text(MIXED)
    (source,) = open_sources([str(path)], ReadOptions())
    real, typing_module.SPAN_BYTES = typing_module.SPAN_BYTES, span
    try:
        spans = source._span_types(run_here)
    finally:
        typing_module.SPAN_BYTES = real
    assert spans is not None and spans == decide_types(source._csv_tasks(), run_here)

"""The streaming input readers, on real files (plain, gzip, named pipes) and on stdin streams."""

from __future__ import annotations

import gzip
import io
import os
import re
import threading
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkctl.errors import InputError, UsageError
from bulkctl.read.sources import ReadOptions, Source, open_sources, read_items
from bulkctl.records import RawItem

FORMATS = ("ndjson", "json", "csv", "tsv")
EXT = {"ndjson": ".ndjson", "json": ".json", "csv": ".csv", "tsv": ".tsv"}
VIAS = ("file", "file.gz", "gzip-by-magic", "stdin", "stdin.gz")

ROWS = [{"id": "a1", "name": "Ann"}, {"id": "b2", "name": "Bob"}]
LINE_SEP = "\u2028"
ROWS_2028 = [{"id": "a1", "name": f"Ann{LINE_SEP}Lee"}, {"id": "b2", "name": "Bob"}]


def _csv(text: str, fmt: str) -> bytes:
    """Write CSV cases once; TSV is the same with tabs."""
    return (text.replace(",", "\t") if fmt == "tsv" else text).encode()


@dataclass
class Case:
    """One input quirk: the bytes each format writes it as, and where each record starts."""

    docs: dict[str, tuple[bytes, list[tuple[int, int | None]]]]
    rows: list[dict[str, Any]] = field(default_factory=lambda: ROWS)


CASES: dict[str, Case] = {
    "plain": Case(
        {
            "ndjson": (
                b'{"id":"a1","name":"Ann"}\n{"id":"b2","name":"Bob"}\n',
                [(1, None), (2, None)],
            ),
            "json": (b'[{"id":"a1","name":"Ann"},\n{"id":"b2","name":"Bob"}]', [(1, 0), (2, 1)]),
            "csv": (_csv("id,name\na1,Ann\nb2,Bob\n", "csv"), [(2, None), (3, None)]),
            "tsv": (_csv("id,name\na1,Ann\nb2,Bob\n", "tsv"), [(2, None), (3, None)]),
        }
    ),
    "blank lines": Case(
        {
            "ndjson": (
                b'\n{"id":"a1","name":"Ann"}\n  \n\t\n{"id":"b2","name":"Bob"}\n\n',
                [(2, None), (5, None)],
            ),
            "json": (
                b'\n[\n\n{"id":"a1","name":"Ann"},\n\n\n{"id":"b2","name":"Bob"}\n\n]\n\n',
                [(4, 0), (7, 1)],
            ),
            "csv": (_csv("id,name\n\na1,Ann\n\n\nb2,Bob\n\n", "csv"), [(3, None), (6, None)]),
            "tsv": (_csv("id,name\n\na1,Ann\n\n\nb2,Bob\n\n", "tsv"), [(3, None), (6, None)]),
        }
    ),
    "CRLF": Case(
        {
            "ndjson": (
                b'{"id":"a1","name":"Ann"}\r\n\r\n{"id":"b2","name":"Bob"}\r\n',
                [(1, None), (3, None)],
            ),
            "json": (
                b'[\r\n  {"id":"a1",\r\n   "name":"Ann"},\r\n  {"id":"b2","name":"Bob"}\r\n]\r\n',
                [(2, 0), (4, 1)],
            ),
            "csv": (_csv("id,name\r\na1,Ann\r\nb2,Bob\r\n", "csv"), [(2, None), (3, None)]),
            "tsv": (_csv("id,name\r\na1,Ann\r\nb2,Bob\r\n", "tsv"), [(2, None), (3, None)]),
        }
    ),
    "BOM": Case(
        {
            "ndjson": (
                b'\xef\xbb\xbf{"id":"a1","name":"Ann"}\n{"id":"b2","name":"Bob"}\n',
                [(1, None), (2, None)],
            ),
            "json": (
                b'\xef\xbb\xbf[{"id":"a1","name":"Ann"},\n{"id":"b2","name":"Bob"}]\n',
                [(1, 0), (2, 1)],
            ),
            "csv": (
                b"\xef\xbb\xbf" + _csv("id,name\na1,Ann\nb2,Bob\n", "csv"),
                [(2, None), (3, None)],
            ),
            "tsv": (
                b"\xef\xbb\xbf" + _csv("id,name\na1,Ann\nb2,Bob\n", "tsv"),
                [(2, None), (3, None)],
            ),
        }
    ),
    "no final newline": Case(
        {
            "ndjson": (
                b'{"id":"a1","name":"Ann"}\n{"id":"b2","name":"Bob"}',
                [(1, None), (2, None)],
            ),
            "json": (b'[{"id":"a1","name":"Ann"},{"id":"b2","name":"Bob"}]', [(1, 0), (1, 1)]),
            "csv": (_csv("id,name\na1,Ann\nb2,Bob", "csv"), [(2, None), (3, None)]),
            "tsv": (_csv("id,name\na1,Ann\nb2,Bob", "tsv"), [(2, None), (3, None)]),
        }
    ),
    "U+2028 in a string": Case(
        {
            "ndjson": (
                f'{{"id":"a1","name":"Ann{LINE_SEP}Lee"}}\n{{"id":"b2","name":"Bob"}}\n'.encode(),
                [(1, None), (2, None)],
            ),
            "json": (
                f'[{{"id":"a1","name":"Ann{LINE_SEP}Lee"}},\n{{"id":"b2","name":"Bob"}}]'.encode(),
                [(1, 0), (2, 1)],
            ),
            "csv": (_csv(f"id,name\na1,Ann{LINE_SEP}Lee\nb2,Bob\n", "csv"), [(2, None), (3, None)]),
            "tsv": (_csv(f"id,name\na1,Ann{LINE_SEP}Lee\nb2,Bob\n", "tsv"), [(2, None), (3, None)]),
        },
        rows=ROWS_2028,
    ),
}


def _sources(
    tmp_path: Path, fmt: str, data: bytes, via: str, options: ReadOptions | None = None
) -> list[Source]:
    """Write `data` the way `via` says and open it the way a user would."""
    options = options or ReadOptions()
    if via.startswith("stdin"):
        payload = gzip.compress(data) if via.endswith(".gz") else data
        return open_sources(["-"], options, stdin=io.BytesIO(payload))
    if via == "file":
        path = tmp_path / f"in{EXT[fmt]}"
        path.write_bytes(data)
    elif via == "file.gz":
        path = tmp_path / f"in{EXT[fmt]}.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / f"in{EXT[fmt]}"
        path.write_bytes(gzip.compress(data))
    return open_sources([str(path)], options)


def _read(tmp_path: Path, name: str, data: bytes, **options: Any) -> list[RawItem]:
    path = tmp_path / name
    path.write_bytes(data)
    return list(read_items(open_sources([str(path)], ReadOptions(**options))))


def _error(item: RawItem) -> tuple[int, str | None, str | None]:
    return item.line, item.error, item.error_field


TABLE = [
    pytest.param(case, fmt, via, id=f"{case}-{fmt}-{via}")
    for case in CASES
    for fmt in FORMATS
    for via in VIAS
]


@pytest.mark.parametrize(("case", "fmt", "via"), TABLE)
def test_reader_case_over_every_format(tmp_path: Path, case: str, fmt: str, via: str) -> None:
    """Each input quirk yields the same records at the same lines in every format and wrapping."""
    data, positions = CASES[case].docs[fmt]
    sources = _sources(tmp_path, fmt, data, via)
    assert sources[0].format == fmt
    assert sources[0].compressed == via.endswith(("gz", "magic"))
    items = list(read_items(sources))
    assert [item.error for item in items] == [None] * len(items)
    assert [item.data for item in items] == CASES[case].rows
    assert [(item.line, item.index) for item in items] == positions
    assert {item.source for item in items} == {sources[0].name}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("via", VIAS)
def test_empty_input_yields_nothing(tmp_path: Path, fmt: str, via: str) -> None:
    """An empty input is zero records, not an error, in every format."""
    options = ReadOptions(format=fmt) if via.startswith("stdin") else ReadOptions()
    assert list(read_items(_sources(tmp_path, fmt, b"", via, options))) == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name_suffix", ["", ".gz"])
def test_truncated_gzip_names_file_and_progress(tmp_path: Path, fmt: str, name_suffix: str) -> None:
    """A cut-off .gz is an InputError naming the file, the decompressed bytes and the line."""
    rows = [{"id": f"r{i}", "name": f"name {i} " * 20} for i in range(20000)]
    data = _encode(fmt, rows)
    packed = gzip.compress(data)
    path = tmp_path / f"rooms{EXT[fmt]}{name_suffix}"
    path.write_bytes(packed[: len(packed) // 2])
    seen = 0
    with pytest.raises(InputError) as caught:
        for _ in read_items(open_sources([str(path)], ReadOptions())):
            seen += 1
    message = str(caught.value)
    assert message.startswith(f"{path}: the gzip stream is truncated after ")
    assert "decompressed bytes (line " in message
    assert "the file is incomplete" in message
    # A CSV's first pass (its column types) reads it all before the first record.
    assert seen > 100 if fmt not in ("csv", "tsv") else seen == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_gzip_is_an_input_error(tmp_path: Path, fmt: str) -> None:
    """Damaged deflate data is an InputError that says the file is damaged."""
    data = _encode(fmt, [{"id": f"r{i}", "name": f"n{i}" * 30} for i in range(3000)])
    packed = bytearray(gzip.compress(data))
    middle = len(packed) // 2
    packed[middle : middle + 8] = bytes(b ^ 0xFF for b in packed[middle : middle + 8])
    path = tmp_path / f"rooms{EXT[fmt]}.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(InputError, match=r"gzip data is corrupt .* the file is damaged"):
        list(read_items(open_sources([str(path)], ReadOptions())))


@pytest.mark.parametrize("fmt", FORMATS)
def test_concatenated_gzip_members_are_one_stream(tmp_path: Path, fmt: str) -> None:
    """Several gzip members back to back (as `cat a.gz b.gz` makes) read as one input."""
    data = _encode(fmt, ROWS)
    cut = data.index(b"Ann") + 1
    path = tmp_path / f"in{EXT[fmt]}.gz"
    path.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]) + b"\0\0\0")
    assert [item.data for item in read_items(open_sources([str(path)], ReadOptions()))] == ROWS


@pytest.mark.parametrize("fmt", [*FORMATS, "auto"])
@pytest.mark.parametrize("compress", [False, True])
def test_binary_garbage_is_refused_before_reading(tmp_path: Path, fmt: str, compress: bool) -> None:
    """A file with a NUL byte early on is not text: refused when opened, with the offset."""
    data = b"BIN\x01" + bytes(range(256)) * 4
    path = tmp_path / f"in{EXT.get(fmt, '.bin')}"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(InputError) as caught:
        open_sources([str(path)], ReadOptions())
    assert str(caught.value).startswith(f"{path}: does not look like text (NUL byte at offset 4)")
    assert "compressed in a format other than gzip" in str(caught.value)


def _encode(fmt: str, rows: list[dict[str, str]]) -> bytes:
    if fmt == "ndjson":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    sep = "\t" if fmt == "tsv" else ","
    lines = [sep.join(rows[0])] + [sep.join(row.values()) for row in rows]
    return ("\n".join(lines) + "\n").encode()


# -- format detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "reason"),
    [
        ("a.ndjson", "ndjson", "from the name .ndjson"),
        ("a.jsonl", "ndjson", "from the name .jsonl"),
        ("a.JSONL.GZ", "ndjson", "from the name .jsonl.gz"),
        ("a.json", "json", "from the name .json"),
        ("a.json.gz", "json", "from the name .json.gz"),
        ("a.csv", "csv", "from the name .csv"),
        ("a.tsv.gz", "tsv", "from the name .tsv.gz"),
    ],
)
def test_format_from_the_name(tmp_path: Path, name: str, fmt: str, reason: str) -> None:
    """The file name decides the format when it has a known extension, and says so."""
    path = tmp_path / name
    path.write_bytes(b"x")
    (source,) = open_sources([str(path)], ReadOptions())
    assert (source.format, source.format_reason) == (fmt, reason)


@pytest.mark.parametrize(
    ("data", "fmt", "reason_part"),
    [
        (b'  [{"id": "1"}]', "json", "'[' starts a JSON array"),
        (b'{"id": "1"}\n{"id": "2"}\n', "ndjson", "the first line is one JSON object"),
        (b'\xef\xbb\xbf\n {"id": "1"}', "ndjson", "the first line is one JSON object"),
        (b'{\n  "id": "1"\n}\n', "json", "a JSON object over several lines"),
        (b"id,name\n1,a\n", "csv", "not JSON, so CSV"),
        (b"id\tname\n1\ta\n", "tsv", "the first line has tabs and no commas"),
        (b"id\tname,x\n", "csv", "not JSON, so CSV"),
        (b"", "ndjson", "the input is empty"),
        (b'{"collection": "c", "objects": [{"id": "1"}]}\n', "json", "an Objects API body"),
    ],
)
def test_format_from_the_first_bytes(data: bytes, fmt: str, reason_part: str) -> None:
    """Without a telling name, the first bytes decide, and the reason says how."""
    (source,) = open_sources(["-"], ReadOptions(), stdin=io.BytesIO(data))
    assert source.format == fmt
    assert source.format_reason.startswith("from the first bytes")
    assert reason_part in source.format_reason


def test_sniffing_a_long_first_line_reads_it_as_ndjson() -> None:
    """A one-line object longer than the sniff window is NDJSON, not a JSON document."""
    line = orjson.dumps({"id": "1", "blob": "x" * 600_000}) + b"\n"
    (source,) = open_sources(["-"], ReadOptions(), stdin=io.BytesIO(line + line))
    assert source.format == "ndjson"
    items = list(source.items())
    assert [item.error is not None for item in items] == [True, True]


def test_explicit_format_wins_over_the_name(tmp_path: Path) -> None:
    """--format overrides what the name says."""
    path = tmp_path / "rooms.json"
    path.write_bytes(b'{"id": "1"}\n{"id": "2"}\n')
    (source,) = open_sources([str(path)], ReadOptions(format="ndjson"))
    assert (source.format, source.format_reason) == ("ndjson", "from --format ndjson")
    assert [item.data for item in source.items()] == [{"id": "1"}, {"id": "2"}]


def test_stdin_sniffing_loses_no_bytes() -> None:
    """Peeking at stdin (gzip magic, then the first line) keeps every byte for the reader."""
    data = gzip.compress(b'{"id":"1"}\n' * 5000)
    (source,) = open_sources(["-"], ReadOptions(), stdin=io.BytesIO(data))
    assert (source.name, source.compressed, source.size) == ("<stdin>", True, None)
    assert [item.line for item in source.items()] == list(range(1, 5001))
    assert source.bytes_read() == len(data)


# -- opening --------------------------------------------------------------------------------


def test_missing_file_fails_before_any_record_is_read(tmp_path: Path) -> None:
    """All paths are checked up front: a missing second file fails open_sources itself."""
    good = tmp_path / "a.ndjson"
    good.write_bytes(b'{"id": "1"}\n')
    missing = tmp_path / "nope.ndjson"
    with pytest.raises(InputError, match=rf"^{missing}: no such file; check the path"):
        open_sources([str(good), str(missing)], ReadOptions())


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as a path is an InputError that names it."""
    with pytest.raises(InputError, match=rf"^{tmp_path}: is a directory"):
        open_sources([str(tmp_path)], ReadOptions())


def test_stdin_may_appear_once() -> None:
    """ "-" twice is a usage error: standard input can only be read once."""
    with pytest.raises(UsageError, match="only once"):
        open_sources(["-", "-"], ReadOptions(), stdin=io.BytesIO(b""))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ReadOptions(format="xml"), "unknown format 'xml'"),
        (ReadOptions(delimiter=";;"), "one character"),
        (ReadOptions(types={"age": "integer"}), "--type age=integer: unknown type"),
        (ReadOptions(encoding="klingon"), "unknown encoding 'klingon'"),
        (ReadOptions(encoding="utf-16"), "convert the file to UTF-8"),
    ],
)
def test_bad_options_are_usage_errors(options: ReadOptions, message: str) -> None:
    """Options that cannot work are refused before anything is read."""
    with pytest.raises(UsageError, match=message):
        open_sources(["-"], options, stdin=io.BytesIO(b"id\n1\n"))


def test_sources_report_size_and_raw_progress(tmp_path: Path) -> None:
    """size is the on-disk size; bytes_read counts compressed bytes consumed so far."""
    path = tmp_path / "rooms.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"id": "1"}\n' * 20000))
    (source,) = open_sources([str(path)], ReadOptions())
    assert source.size == path.stat().st_size
    assert source.bytes_read() == 0
    assert sum(1 for _ in source.items()) == 20000
    assert source.bytes_read() == source.size


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_items_closes_its_file_at_the_end_and_on_close(tmp_path: Path) -> None:
    """A source holds no file open between runs, after the end, or after the consumer stops."""
    path = tmp_path / "rooms.ndjson"
    path.write_bytes(b'{"id": "1"}\n' * 100)
    before = _open_fds()
    (source,) = open_sources([str(path)], ReadOptions())
    assert _open_fds() == before
    items = source.items()
    next(items)
    assert _open_fds() == before + 1
    items.close()
    assert _open_fds() == before
    assert len(list(source.items())) == 100
    assert _open_fds() == before


def test_read_items_chains_sources_in_order(tmp_path: Path) -> None:
    """Records come source by source, each naming its own source."""
    first = tmp_path / "a.csv"
    first.write_bytes(b"id\n1\n2\n")
    second = tmp_path / "b.ndjson"
    second.write_bytes(b'{"id": "3"}\n')
    stdin = io.BytesIO(b'[{"id": "4"}]')
    items = list(
        read_items(open_sources([str(first), "-", str(second)], ReadOptions(), stdin=stdin))
    )
    assert [(item.source, item.data["id"]) for item in items] == [
        (str(first), "1"),
        (str(first), "2"),
        ("<stdin>", "4"),
        (str(second), "3"),
    ]


def test_named_pipe_is_sniffed_and_read_without_loss(tmp_path: Path) -> None:
    """A pipe (e.g. bash's <(...)) cannot be reopened: its sniffed bytes are kept and read once."""
    fifo = tmp_path / "feed.ndjson"
    os.mkfifo(fifo)
    data = b"".join(orjson.dumps({"id": str(i)}) + b"\n" for i in range(20000))

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        (source,) = open_sources([str(fifo)], ReadOptions())
        assert source.size is None
        items = list(source.items())
    finally:
        writer.join()
    assert [item.data["id"] for item in items] == [str(i) for i in range(20000)]
    with pytest.raises(InputError, match="can be read only once"):
        list(source.items())


# -- NDJSON ---------------------------------------------------------------------------------


def test_ndjson_bad_lines_become_items_with_errors(tmp_path: Path) -> None:
    """A line that is not JSON or not UTF-8 is an item with an error and its text; then the next."""
    data = b'{"id": "1"}\n{"id": \n[1, 2]\n{"id": "\xff\xfe"}\n{"id": "5"}\n'
    items = _read(tmp_path, "x.ndjson", data)
    assert [item.line for item in items] == [1, 2, 3, 4, 5]
    assert items[0].data == {"id": "1"} and items[4].data == {"id": "5"}
    assert items[1].data is None
    assert items[1].error is not None and items[1].error.startswith("not valid JSON: ")
    assert items[1].text == '{"id": '
    assert items[2].data == [1, 2] and items[2].error is None
    assert items[3].error == "not valid UTF-8 at byte 8 of the line"
    assert items[3].text == '{"id": "\ufffd\ufffd"}'


def test_ndjson_too_long_line_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    """A 20 MB line is an error item; it is never held in memory, and the next line is read."""
    path = tmp_path / "big.ndjson"
    with path.open("wb") as out:
        out.write(b'{"id": "1"}\n{"id": "2", "blob": "')
        for _ in range(20):
            out.write(b"x" * 1_000_000)
        out.write(b'"}\n{"id": "3"}\n')
    (source,) = open_sources([str(path)], ReadOptions(max_record_bytes=1000))
    tracemalloc.start()
    try:
        items = list(source.items())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    assert [(item.line, item.data) for item in items] == [
        (1, {"id": "1"}),
        (2, None),
        (3, {"id": "3"}),
    ]
    assert items[1].error == (
        "line is longer than 66,536 bytes; an object may be at most 1,000 bytes"
    )
    assert items[1].text is not None and items[1].text.startswith('{"id": "2", "blob": "xxx')
    assert len(items[1].text) == 1000


# -- JSON -----------------------------------------------------------------------------------


def test_json_array_over_many_lines_gives_line_and_index(tmp_path: Path) -> None:
    """Each element of a pretty-printed array reports the line it starts on and its index."""
    rows = [{"id": str(i), "tags": ["a", {"b": [i]}], "note": "}, {"} for i in range(50)]
    data = orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    items = _read(tmp_path, "rooms.json", data)
    assert [item.data for item in items] == rows
    assert [item.index for item in items] == list(range(50))
    lines_per_element = data.count(b"\n") // 50
    assert [item.line for item in items] == [2 + i * lines_per_element for i in range(50)]


def test_json_objects_api_body_injects_its_collection(tmp_path: Path) -> None:
    """An Objects API body streams its objects; each gets the body's collection if it has none."""
    data = (
        b'{\n  "collection": "rooms",\n  "objects": [\n'
        b'    {"id": "1", "properties": {"beds": 2}},\n'
        b'    {"id": "2", "collection": "suites", "properties": {}}\n  ]\n}\n'
    )
    items = _read(tmp_path, "body.json", data)
    assert [(item.line, item.index, item.data) for item in items] == [
        (4, 0, {"id": "1", "properties": {"beds": 2}, "collection": "rooms"}),
        (5, 1, {"id": "2", "collection": "suites", "properties": {}}),
    ]


def test_json_body_with_collection_after_objects_is_refused(tmp_path: Path) -> None:
    """A "collection" after "objects" is refused: move it first or use --collection instead."""
    data = b'{"objects": [{"id": "1"}],\n "collection": "rooms"}'
    path = tmp_path / "body.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        list(read_items(open_sources([str(path)], ReadOptions())))
    message = str(caught.value)
    assert message.startswith(f'{path}:2: "collection" comes after "objects"')
    assert "--collection" in message


def test_json_single_object_and_empty_array(tmp_path: Path) -> None:
    """One object is one record; an empty array is none."""
    assert [(i.line, i.index, i.data) for i in _read(tmp_path, "one.json", b'\n{"id": "1"}')] == [
        (2, None, {"id": "1"})
    ]
    assert _read(tmp_path, "none.json", b"[ ]\n") == []


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        (b'[\n{"id": "1"}\n{"id": "2"}]', ":3:", "expected ',' or ']' after an array element"),
        (b'[\n{"id": "1"},\n{"id": "2"', ":3:", "the JSON document ends early"),
        (b'[{"id": [1}]', ":1:", "found '}' where ']' should close"),
        (b'[{"id": "1"}] x', ":1:", "unexpected data after the end of the JSON document"),
        (b"\n\n42\n", ":3:", "the JSON document is not an array or an object"),
        (b'[{"id": "1"},]', ":1:", "expected an element after ','"),
    ],
)
def test_json_structure_errors_name_file_line_and_byte(
    tmp_path: Path, data: bytes, where: str, what: str
) -> None:
    """A broken document is an InputError with the file, line, byte offset and a fix."""
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        list(read_items(open_sources([str(path)], ReadOptions())))
    message = str(caught.value)
    assert message.startswith(f"{path}{where} {what}")
    assert " at byte " in message and "; " in message


# -- CSV / TSV ------------------------------------------------------------------------------

CSV_FORMATS = ("csv", "tsv")


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_header_only_is_no_records(tmp_path: Path, fmt: str) -> None:
    """A header with no rows is zero records."""
    assert _read(tmp_path, f"x{EXT[fmt]}", _csv("id,name\n", fmt)) == []


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_unterminated_quote_is_an_input_error_with_the_line(tmp_path: Path, fmt: str) -> None:
    """An unclosed quote stops the run at the row where it opens, not silently at the end."""
    path = tmp_path / f"x{EXT[fmt]}"
    path.write_bytes(_csv('id,name\n1,a\n2,"b\n3,c\n4,d\n', fmt))
    with pytest.raises(InputError, match=rf"^{path}:3: a quoted field .* never closed"):
        list(read_items(open_sources([str(path)], ReadOptions())))


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_ragged_row_is_an_item_error(tmp_path: Path, fmt: str) -> None:
    """A row with more or fewer cells than the header is rejected alone; reading goes on."""
    items = _read(
        tmp_path, f"x{EXT[fmt]}", _csv("id,a,b,c,d\n1,2,3\n2,1,1,1,1\n1,2,3,4,5,6\n", fmt)
    )
    shown = "','" if fmt == "csv" else "TAB"
    tail = f", or pass --delimiter if the file is not {shown}-separated"
    assert [_error(i) for i in items] == [
        (2, "row has 3 cells but the header has 5: give every row 5 cells (an empty cell is "
         f"nothing between two delimiters){tail}", None),
        (3, None, None),
        (4, f"row has 6 cells but the header has 5: put a cell that holds the delimiter "
         f"{shown} in double quotes{tail}", None),
    ]  # fmt: skip
    assert items[0].text == ("1,2,3" if fmt == "csv" else "1\t2\t3")


@pytest.mark.parametrize("fmt", CSV_FORMATS)
@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,name,id", "the header names column 'id' twice (columns 1 and 3)"),
        ("id,,name", "column 2 of the header has no name"),
    ],
    ids=["duplicate header", "empty header"],
)
def test_csv_bad_header_is_an_input_error(
    tmp_path: Path, fmt: str, header: str, message: str
) -> None:
    """Duplicate or empty column names are refused at line 1, naming the column."""
    path = tmp_path / f"x{EXT[fmt]}"
    path.write_bytes(_csv(f"{header}\n1,a,b\n", fmt))
    with pytest.raises(InputError, match=rf"^{path}:1: {re.escape(message)}"):
        list(read_items(open_sources([str(path)], ReadOptions())))


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_latin1(tmp_path: Path, fmt: str) -> None:
    """Latin-1 reads with --encoding latin-1; as UTF-8 it fails at its line with the hint."""
    path = tmp_path / f"x{EXT[fmt]}"
    text = "id,name\n1,Ann\n2,Zoë\n"
    path.write_bytes((text if fmt == "csv" else text.replace(",", "\t")).encode("latin-1"))
    items = list(read_items(open_sources([str(path)], ReadOptions(encoding="latin-1"))))
    assert [i.data for i in items] == [{"id": "1", "name": "Ann"}, {"id": "2", "name": "Zoë"}]
    with pytest.raises(InputError) as caught:
        list(read_items(open_sources([str(path)], ReadOptions())))
    assert str(caught.value) == (
        f"{path}:3: not valid UTF-8 at byte 4 of the line; pass --encoding latin-1 if it is Latin-1"
    )


@pytest.mark.parametrize("fmt", CSV_FORMATS)
@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("00501", "00501"),
        ("-007", "-007"),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", "9223372036854775808"),
        ("-9223372036854775809", "-9223372036854775809"),
        ("1.5", 1.5),
        ("-0.25e3", -250.0),
        ("1e999", "1e999"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1.", "1."),
        (".5", ".5"),
        ("1_000", "1_000"),
        (" 42", " 42"),
        ("١٢", "١٢"),
        ("true", True),
        ("-0", "-0"),
        ("50454e32", 5.0454e36),
    ],
    ids=lambda v: repr(v),
)
def test_csv_type_inference(tmp_path: Path, fmt: str, cell: str, value: Any) -> None:
    """A column of one value: numbers in canonical spelling become numbers (an exponent too,
    since every value of the column has one), true/false booleans; leading zeros, -0, big
    integers and nan/inf stay strings."""
    sep = "," if fmt == "csv" else "\t"
    data = f"id{sep}collection{sep}v\n{cell}{sep}{cell}{sep}{cell}\n".encode()
    items = _read(tmp_path, f"x{EXT[fmt]}", data)
    assert items[0].data == {"id": cell, "collection": cell, "v": value}
    assert type(items[0].data["v"]) is type(value)


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_empty_cells_are_left_out_and_infer_can_be_off(tmp_path: Path, fmt: str) -> None:
    """Empty cells are not sent (unchanged under merge); infer=False keeps strings."""
    data = _csv("id,beds,name\n1,2,\n2,,b\n", fmt)
    assert [i.data for i in _read(tmp_path, f"x{EXT[fmt]}", data)] == [
        {"id": "1", "beds": 2},
        {"id": "2", "name": "b"},
    ]
    assert [i.data for i in _read(tmp_path, f"y{EXT[fmt]}", data, infer=False)] == [
        {"id": "1", "beds": "2"},
        {"id": "2", "name": "b"},
    ]


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_types_override_columns(tmp_path: Path, fmt: str) -> None:
    """--type converts a column; a cell that does not convert is an item error naming the field."""
    data = _csv("id,age,score,vip,zip\n007,41,2,yes,00501\n8,abc,1.5,N,1\n9,1,x,maybe,2\n", fmt)
    types = {"id": "int", "age": "int", "score": "float", "vip": "bool", "zip": "str"}
    items = _read(tmp_path, f"x{EXT[fmt]}", data, types=types, infer=False)
    assert items[0].data == {"id": 7, "age": 41, "score": 2.0, "vip": True, "zip": "00501"}
    assert _error(items[1]) == (3, "'abc' is not an int (--type age=int)", "properties.age")
    assert items[2].error is not None
    assert items[2].error.startswith(
        "'x' is not a float (--type score=float); 'maybe' is not a bool"
    )
    assert items[2].error_field == "properties.score"
    bad_id = _read(tmp_path, f"y{EXT[fmt]}", _csv("id\nA7\n", fmt), types={"id": "int"})
    assert _error(bad_id[0]) == (2, "'A7' is not an int (--type id=int)", "id")


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_type_for_a_missing_column_is_a_usage_error(tmp_path: Path, fmt: str) -> None:
    """--type naming a column the header lacks is a usage error that lists the columns."""
    path = tmp_path / f"x{EXT[fmt]}"
    path.write_bytes(_csv("id,name\n1,a\n", fmt))
    with pytest.raises(
        UsageError, match=r"'age', which the header does not have; its columns are: id, name"
    ):
        list(read_items(open_sources([str(path)], ReadOptions(types={"age": "int"}))))


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_multiline_field_keeps_physical_lines(tmp_path: Path, fmt: str) -> None:
    """A quoted field over several lines: the next row reports its own physical line."""
    items = _read(tmp_path, f"x{EXT[fmt]}", _csv('id,note\n1,"a\nb\nc"\n2,d\n', fmt))
    assert [(i.line, i.data) for i in items] == [
        (2, {"id": "1", "note": "a\nb\nc"}),
        (5, {"id": "2", "note": "d"}),
    ]


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_oversized_field_or_line_is_an_input_error(tmp_path: Path, fmt: str) -> None:
    """A field over the record limit, or a line over it plus slack, stops with its line."""
    path = tmp_path / f"x{EXT[fmt]}"
    path.write_bytes(_csv('id,note\n1,"', fmt) + b"x" * 5000 + b'"\n')
    with pytest.raises(InputError, match=rf"^{path}:2: a field of the row starting on line 2"):
        list(read_items(open_sources([str(path)], ReadOptions(max_record_bytes=1000))))
    path.write_bytes(_csv("id,note\n1,", fmt) + b"x" * 100_000 + b"\n")
    with pytest.raises(InputError, match=rf"^{path}:2: the line is longer than 66,536 bytes"):
        list(read_items(open_sources([str(path)], ReadOptions(max_record_bytes=1000))))


@pytest.mark.parametrize("fmt", CSV_FORMATS)
def test_csv_delimiter_override(tmp_path: Path, fmt: str) -> None:
    """An explicit delimiter replaces the format's default."""
    items = _read(tmp_path, f"x{EXT[fmt]}", b"id;name\n1;a\n", delimiter=";")
    assert [i.data for i in items] == [{"id": "1", "name": "a"}]

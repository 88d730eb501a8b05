"""The streaming JSON splitter: exact elements, start lines and indexes, in bounded memory."""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkctl.errors import InputError
from bulkctl.read.json_array import read_json
from bulkctl.read.sources import ReadOptions, open_sources
from bulkctl.records import RawItem

CHUNKS = (1, 2, 3, 7, 64, 1 << 20)


def split(data: bytes, chunk_size: int = 1 << 20, limit: int = 400_000) -> list[RawItem]:
    return list(read_json(io.BytesIO(data).read, "t.json", limit=limit, chunk_size=chunk_size))


TRICKY = [
    {"s": "brackets ] } [ { inside"},
    {"s": 'escaped \\" quote", {"x": 1}, ', "t": "\\"},
    {"n": [[1, [2, [3, {"deep": ["]"]}]]], []], "e": {}},
    {"a": {"b": 1}, "c": {"d": {"e": 2}}, "f": [{"g": 3}, {"h": 4}], "i": 5},
    {"s": "}, {", "t": "}]", "u": "\\\\", "v": "\u2028\u00e9\U0001f600"},
    {"deep": json.loads("[" * 40 + "1" + "]" * 40)},
    {"backslashes": "\\\\\\\\\\", "quote": '"'},
]


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("indent", [None, 2])
def test_nested_brackets_and_escaped_quotes(chunk_size: int, indent: int | None) -> None:
    """Brackets and escaped quotes inside strings, deep nesting and chunk edges never confuse it."""
    data = json.dumps(TRICKY, indent=indent, ensure_ascii=False).encode()
    items = split(data, chunk_size)
    assert [item.data for item in items] == TRICKY
    assert [item.index for item in items] == list(range(len(TRICKY)))
    starts = [i for i, line in enumerate(data.split(b"\n"), 1) if line.startswith(b"  {")]
    assert [item.line for item in items] == (starts if indent else [1] * len(TRICKY))


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_scalars_strings_and_arrays_are_elements_too(chunk_size: int) -> None:
    """Non-object elements are yielded as parsed values; the rules reject them later."""
    data = b'[1, -2.5e3, "a]\\"b", true, null, [1, [2]], {}, "", []]'
    items = split(data, chunk_size)
    assert [item.data for item in items] == [1, -2500.0, 'a]"b', True, None, [1, [2]], {}, "", []]


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_balanced_but_invalid_element_is_an_item_error(chunk_size: int) -> None:
    """An element that balances but is not JSON is an error item; the next one still reads."""
    items = split(b'[{"a": tru},\n{"b": 1}, {"c": [1,]}, 01, {"d": 2}]', chunk_size)
    assert [(item.line, item.index, item.data) for item in items] == [
        (1, 0, None),
        (2, 1, {"b": 1}),
        (2, 2, None),
        (2, 3, None),
        (2, 4, {"d": 2}),
    ]
    assert items[0].error is not None and items[0].error.startswith("not valid JSON: ")
    assert items[0].text == '{"a": tru}'


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_too_long_element_is_skipped_and_reading_goes_on(chunk_size: int) -> None:
    """An element over the limit plus slack is an error item with a preview, then the next."""
    big = {"id": "big", "blob": ["x" * 1000] * 100}
    data = orjson.dumps([{"id": "a"}, big, {"id": "b"}])
    items = split(data, chunk_size, limit=100)
    assert [item.data for item in items] == [{"id": "a"}, None, {"id": "b"}]
    assert items[1].error == (
        "element is longer than 65,636 bytes; an object may be at most 100 bytes"
    )
    assert items[1].text is not None and items[1].text.startswith('{"id":"big","blob":["xxx')


def test_too_long_element_is_never_held_whole(tmp_path: Path) -> None:
    """A 30 MB element is skipped while memory stays a few MB; its neighbours are read."""
    path = tmp_path / "big.json"
    with path.open("wb") as out:
        out.write(b'[{"id": "a"},\n{"id": "big", "blob": [')
        for _ in range(300):
            out.write(b'"' + b"y" * 100_000 + b'",')
        out.write(b'"end"]},\n{"id": "b"}]')
    (source,) = open_sources([str(path)], ReadOptions())
    tracemalloc.start()
    try:
        items = list(source.items())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(item.line, item.index, item.data) for item in items] == [
        (1, 0, {"id": "a"}),
        (2, 1, None),
        (3, 2, {"id": "b"}),
    ]
    assert peak < 8_000_000


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_objects_api_body_shapes(chunk_size: int) -> None:
    """A body with "objects" first streams its elements as they are."""
    items = split(b'{"objects": [{"id": "1"}, {"id": "2"}]}', chunk_size)
    assert [(item.index, item.data) for item in items] == [(0, {"id": "1"}), (1, {"id": "2"})]


def test_body_with_an_unknown_key_after_objects_is_refused() -> None:
    """Only "collection" and "objects" belong in a body; anything after the array says so."""
    with pytest.raises(InputError, match=r"^t.json:1: unexpected key 'extra' in an Objects API"):
        split(b'{"collection": "c", "objects": [], "extra": 1}')


def test_object_that_only_looks_like_a_body_is_one_record() -> None:
    """An object whose first keys are not collection/objects is a single record."""
    data = b'{"id": "1", "objects": [1, 2], "collection": "c"}'
    assert [item.data for item in split(data)] == [orjson.loads(data)]


# -- property: random documents -------------------------------------------------------------

_TRICKY_CHARS = st.sampled_from(list('{}[]",:\\/ \t\n\r\u2028\u00e9\U0001f600'))
_TEXT = st.text(st.one_of(_TRICKY_CHARS, st.characters(codec="utf-8")), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=16,
)
_OBJECTS = st.dictionaries(_TEXT, _VALUES, max_size=6)
_SPACE = ["", "", " ", "  ", "\n", "\r\n", "\t", "\n    ", " \n\n "]


def _dump(value: Any, rnd: random.Random) -> str:
    """JSON with random whitespace between every token."""

    def ws() -> str:
        return rnd.choice(_SPACE)

    if isinstance(value, dict):
        members = [
            f"{ws()}{json.dumps(k, ensure_ascii=rnd.random() < 0.5)}{ws()}:{ws()}"
            f"{_dump(v, rnd)}{ws()}"
            for k, v in value.items()
        ]
        return "{" + (",".join(members) or ws()) + "}"
    if isinstance(value, list):
        return "[" + (",".join(f"{ws()}{_dump(v, rnd)}{ws()}" for v in value) or ws()) + "]"
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


@settings(max_examples=150, deadline=None)
@given(
    elements=st.lists(_OBJECTS, max_size=8),
    rnd=st.randoms(use_true_random=False),
    chunk_size=st.sampled_from([1, 2, 3, 5, 8, 64, 4096]),
    body=st.booleans(),
    bom=st.booleans(),
)
def test_splitter_yields_exactly_the_elements_and_their_start_lines(
    elements: list[dict[str, Any]],
    rnd: random.Random,
    chunk_size: int,
    body: bool,
    bom: bool,
) -> None:
    """For any objects in any layout, the splitter yields them, their indexes and start lines."""
    ws = lambda: rnd.choice(_SPACE)  # noqa: E731
    parts = [
        ws(),
        '{"collection"' + ws() + ":" + ws() + '"c",' + ws() + '"objects":' if body else "",
    ]
    parts.append(ws() + "[" + ws())
    starts: list[int] = []
    for index, element in enumerate(elements):
        if index:
            parts.append(ws() + "," + ws())
        starts.append("".join(parts).count("\n") + 1)
        parts.append(_dump(element, rnd))
    parts.append(ws() + "]" + ws() + ("}" + ws() if body else ""))
    data = (b"\xef\xbb\xbf" if bom else b"") + "".join(parts).encode()

    items = split(data, chunk_size)

    expected = [{**e, "collection": "c"} if body and "collection" not in e else e for e in elements]
    assert [item.error for item in items] == [None] * len(elements)
    assert [item.data for item in items] == expected
    assert [item.line for item in items] == starts
    assert [item.index for item in items] == list(range(len(elements)))


# -- bounded memory -------------------------------------------------------------------------


def test_fifty_megabyte_array_reads_in_bounded_memory(tmp_path: Path) -> None:
    """A ~50 MB array streams with a small peak: memory does not grow with the document."""
    element = orjson.dumps({"id": "x" * 8, "collection": "rooms", "properties": {"t": "z" * 2000}})
    count = 50_000_000 // (len(element) + 4)
    path = tmp_path / "huge.json"
    with path.open("wb") as out:
        out.write(b"[\n")
        for index in range(count):
            out.write(b",\n  " if index else b"  ")
            out.write(element)
        out.write(b"\n]\n")
    assert path.stat().st_size > 48_000_000
    (source,) = open_sources([str(path)], ReadOptions())
    tracemalloc.start()
    try:
        seen = 0
        last: RawItem | None = None
        for item in source.items():
            seen += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert last is not None and (last.line, last.index) == (count + 1, count - 1)
    assert peak < 20_000_000

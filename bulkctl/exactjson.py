"""A parsed record that says exactly what its input says: repeated keys, integers beyond 64 bits.

orjson, which every reader uses for speed, keeps only the last of a repeated key
(`{"id":"1","id":"2"}` reads as id "2") and reads an integer beyond the 64-bit range as a
float (`123456789012345678901234567890` as 1.2345678901234568e+29), so the rules could neither
see the repeat nor tell such an integer from a float, nor quote it as it was written.

`exact` finds the few records where either can have happened, cheaply: every key is followed
by a colon (after its closing quote or whitespace), so when the input holds no more such
colons than the parsed value has keys, no key was repeated (a byte count or two, in C); and
orjson makes a float of an integer only beyond 2^63 in magnitude. Only those records are
parsed again with the standard library's `json`, which hands every key to a hook and keeps
integers exact. The fast paths (`bulkctl.fast.batch`, `ChunkState.fast`, the C scanner)
take no record that could need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from bulkctl.records import RawItem

__all__ = [
    "REPEATED_KEY_RULE",
    "RepeatedKeys",
    "dumps",
    "exact",
    "exact_item",
    "no_repeats",
    "no_repeats_in",
    "read_exactly",
    "repeated_item",
]

REPEATED_KEY_RULE = "record.duplicate_key"
_BIG = float(2**63)  # orjson reads an integer as a float only beyond [-2^63, 2^64)
_WHITESPACE_AS_QUOTE = bytes.maketrans(b" \t\r\n", b'""""')
_SHOWN_KEYS = 5
_VALUE_CHARS = 40


@dataclass(frozen=True, slots=True)
class RepeatedKeys:
    """The input has a key more than once in one object: a rejection, never a silent pick."""

    field: str  # where the first repeated key is, e.g. "id" or "properties.color"
    message: str


def no_repeats(buf: bytes, value: Any, start: int = 0, end: int | None = None) -> bool:
    """True when `buf[start:end]`, parsed as `value`, cannot have repeated a key (cheap).

    False means only "maybe": `exact` decides.
    """
    keys = _shallow_keys(value)
    stop = len(buf) if end is None else end
    if buf.count(b":", start, stop) <= keys:
        return True
    return _key_bound(buf if start == 0 and stop == len(buf) else buf[start:stop]) <= keys


def no_repeats_in(lines: list[bytes], keys: int) -> bool:
    """`no_repeats` for a batch of lines whose parsed values have `keys` keys in all."""
    joined = b"\n".join(lines)  # (a line cannot start with ':', so no new key colon)
    return joined.count(b":") <= keys or _key_bound(joined) <= keys


def exact(buf: bytes, value: Any, start: int = 0, end: int | None = None) -> Any:
    """`value` (orjson's parse of `buf[start:end]`) as the input says it, or `RepeatedKeys`."""
    raw = buf[start:end] if start or end is not None else buf
    repeats = not no_repeats(raw, value) and _keys(value) < _key_bound(raw)
    if not repeats and not _big_float(value):
        return value
    found: list[tuple[dict[str, Any], list[tuple[str, Any]]]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) < len(items):
            found.append((obj, items))
        return obj

    try:
        again = json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # deeper than json goes: keep orjson's reading
        return value
    if found:
        return _repeated(again, found)
    return again


def exact_item(
    source: str, line: int, index: int | None, raw: bytes, value: Any, size: int | None = None
) -> RawItem:
    """The `RawItem` of a parsed input value, through `exact`."""
    data = exact(raw, value)
    if isinstance(data, RepeatedKeys):
        return repeated_item(source, line, index, raw, data)
    return RawItem(source, line, index, data, size=size)


def read_exactly(item: RawItem) -> RawItem:
    """An item a reader left to be read exactly (`RawItem.raw`), through `exact`."""
    if item.raw is None:
        return item
    return exact_item(item.source, item.line, item.index, item.raw, item.data, item.size)


def repeated_item(
    source: str, line: int, index: int | None, raw: bytes, repeated: RepeatedKeys
) -> RawItem:
    """An item rejected for a repeated key, showing the input's own text."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    return RawItem(
        source, line, index, None, repeated.message, repeated.field, text, None, REPEATED_KEY_RULE
    )


def dumps(value: Any, default: Any = None, option: int = 0) -> bytes:
    """orjson.dumps, or the standard library for what orjson cannot write (integers beyond
    64 bits, which the exact readings keep so that reports quote them as written)."""
    try:
        return orjson.dumps(value, default, option)
    except TypeError:
        text = json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"))
        return (text + "\n").encode() if option & orjson.OPT_APPEND_NEWLINE else text.encode()


def _shallow_keys(value: Any) -> int:
    """The keys of a record and of its properties (a lower bound of all its keys)."""
    if type(value) is not dict:
        return 0
    props = value.get("properties")
    return len(value) + (len(props) if type(props) is dict else 0)


def _keys(value: Any) -> int:
    """Every key of every object in `value`."""
    if type(value) is dict:
        return len(value) + sum(_keys(v) for v in value.values() if type(v) in (dict, list))
    if type(value) is list:
        return sum(_keys(v) for v in value if type(v) in (dict, list))
    return 0


def _key_bound(raw: bytes) -> int:
    """At least the keys in `raw`: each is followed by a colon, after its closing quote or
    whitespace, so with whitespace read as a quote every key has a `":` of its own."""
    return raw.translate(_WHITESPACE_AS_QUOTE).count(b'":')


def _big_float(value: Any) -> bool:
    """A float from an integer literal is possible: a value (or property) beyond 2^63."""
    if type(value) is not dict:
        return False
    values = list(value.values())
    props = value.get("properties")
    if type(props) is dict:
        values += props.values()
    if float not in set(map(type, values)):
        return False
    return max(map(abs, [item for item in values if type(item) is float])) >= _BIG


def _repeated(
    value: Any, found: list[tuple[dict[str, Any], list[tuple[str, Any]]]]
) -> RepeatedKeys:
    """Name every repeated key, by its path in the record, with the values it was given."""
    paths = _paths(value, "")
    order = {key: number for number, key in enumerate(paths)}
    # The hook saw inner objects first; an object that is not in the record was the value
    # of a repeated key, which is named already.
    kept = sorted((pair for pair in found if id(pair[0]) in order), key=lambda p: order[id(p[0])])
    named: list[tuple[str, list[Any]]] = []
    for obj, items in kept:
        where = paths[id(obj)]
        counted: dict[str, list[Any]] = {}
        for key, item in items:
            counted.setdefault(key, []).append(item)
        named += [(f"{where}{key}", values) for key, values in counted.items() if len(values) > 1]
    shown = [f"{path!r} ({', '.join(map(_short, values))})" for path, values in named[:_SHOWN_KEYS]]
    more = f" and {len(named) - _SHOWN_KEYS} more" if len(named) > _SHOWN_KEYS else ""
    if len(named) == 1:
        path, values = named[0]
        what = f"key {path!r} is repeated in one object (values {', '.join(map(_short, values))})"
    else:
        what = f"keys are repeated in one object: {', '.join(shown)}{more}"
    return RepeatedKeys(
        named[0][0], f"{what}; only one value of a key can be sent: keep one, remove the others"
    )


def _paths(value: Any, path: str) -> dict[int, str]:
    """id(object) -> the prefix of its keys' paths ("", "properties.", "segments[0]."), in
    the order the objects appear."""
    out: dict[int, str] = {}
    if type(value) is dict:
        out[id(value)] = f"{path}." if path else ""
        for key, item in value.items():
            if type(item) in (dict, list):
                out.update(_paths(item, f"{path}.{key}" if path else key))
    elif type(value) is list:
        for number, item in enumerate(value):
            if type(item) in (dict, list):
                out.update(_paths(item, f"{path}[{number}]"))
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"

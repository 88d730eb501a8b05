"""Well-formed CSV rows accepted a column at a time, their JSON lines built without a dict a row.

Python spends ~50 ns on every object it makes or frees, and a row of 20 cells turned into a
dict, a record and an encoded line costs dozens. Here a block of rows is handled a column at
a time, with passes that run in C: each column becomes its *fragments* (`"name":value`, or
b"" for an empty cell, which `csvread` leaves out) from one or two `orjson` calls for the
whole column, `bytes.replace` and `bytes.split`; a lane's lines are then one join of
`{"id":…` + `,"collection":…,"properties":{` + each property's fragment, with a comma before
all but the row's first, + `}}` and a newline.

Why the lines are byte for byte what `orjson.dumps(record)` writes (the tests compare them):
- a value's JSON inside a list (or alone) is the same as inside an object, and orjson writes
  no spaces, writes a line break inside a string as `\\n`, and writes a str as `"` + the str
  + `"` unless it holds `"`, `\\` or a character below U+0020;
- so a raw line break in orjson's output can only be one this module put between two cells;
  in the JSON of one string (the column's cells joined by line breaks, none holding `\\`)
  a `\\n` can only be where a line break was; and in the JSON of a list of numbers, or of
  strings none of which holds a comma, a comma is only ever between two values;
- an empty cell is written `""` (a string) or `null` (NaN or None, in a number column), and
  no other cell's JSON starts with those bytes (a `"` in a string is written `\\"`);
- a column whose cells are all numbers without exponent (digits, points, minus signs, no 19
  digits in a row) is read by orjson as one JSON array: such a cell is a JSON number exactly
  when `csvread._infer` makes it a number, JSON reads the same int or float from it, and
  orjson writes that back. Without points, an int with no leading zero (and not `-0`) is
  its own JSON, so it is not even read; in a column of digits only, a code with a leading
  zero is a string to `_infer`, written in quotes. Any other column with a number in it goes
  through `csvchunks.infer_column` (the exact per-cell inference) and then orjson.

Rows the rules might refuse (an id too long, an unusable collection, a float beyond 2^63) are
left to the exact path (`Block.exact`); any block this cannot handle, to the caller's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import lt, mod, not_
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from bulkctl.csvlines import names_size

if TYPE_CHECKING:
    from bulkctl.csvread import CsvSettings
    from bulkctl.fastpath import ChunkState, WorkContext

Infer = Callable[[tuple[str, ...], set[int]], Sequence[Any]]


class Facts(NamedTuple):
    """What is known of every cell of a block before it is converted (see `csvlines`)."""

    single: bool  # no cell holds a line break (every row was one line)
    plain: bool  # no cell holds a character below U+0020
    small: bool  # no cell is a float of 2^63 or more


# A line that _infer may make a number of (a superset: _infer then decides), possessive so
# that a line like `1956-06-19` fails at once; and a line that starts like a number.
_NUMBER_LINE = re.compile(r"\n-?[0-9]++(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+\n")
_DIGIT_START = re.compile(r"\n[-0-9]")
_LEADING_ZERO = re.compile(rb"\n-?0[0-9]")  # no JSON number: orjson need not try
_ZERO_LED = re.compile(rb"\n(0[0-9]+)(?=\n)")  # a code of digits: a string to _infer
_NUMBER_BYTES = b"-.0123456789\n"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN = b"0" * 19
_OPEN_ID = b'{"id":'
_END = b"}}\n"
_JOIN = 512  # items a join: its buffer records (80 bytes an item) stay in the CPU caches


class Block:
    """Rows of one chunk as columns, checked and (packing) turned into JSON lines."""

    def __init__(
        self,
        ids: Sequence[str],
        collections: Sequence[str] | None,
        collection: str | None,
        names: list[str],
        raw: list[Sequence[str]],
        exact: list[int],
    ) -> None:
        self.ids = ids
        self.collections = collections  # one a row; None: every row has `collection`
        self.collection = collection
        self.names = names
        self.raw = raw
        self.exact = exact  # rows the rules must decide, ascending
        self.filled = [any(column) for column in raw]
        self.slots: list[Sequence[bytes]] = []  # packing: a row's line is its items joined
        self.encoded: list[bytes] | None = None  # packing: the ids in UTF-8, when at hand
        self.lines: list[bytes] | None = None  # packing, several lanes: each row's line

    @classmethod
    def of(
        cls,
        ctx: WorkContext,
        state: ChunkState,
        header: Sequence[str],
        settings: CsvSettings,
        rows: list[list[str]],
        longest: int,
        facts: Facts,
        infer_column: Infer,
    ) -> Block | None:
        """The rows as a block, or None when some bound or shape leaves them to the rules."""
        rules = ctx.rules
        id_field = settings.id_field
        # What the rules measure stays far from its limit: a value, the whole line.
        if longest * 6 + 2 >= rules.max_value_bytes:
            return None
        if 6 * (len(header) * longest + names_size(header)) + 256 >= rules.max_line_bytes:
            return None
        if id_field not in header or id_field == "collection" or "properties" in header:
            return None  # a `properties` cell makes the row canonical-shaped to the rules
        if ctx.shape.id_field != id_field:
            return None
        columns: list[Sequence[str]] = list(zip(*rows, strict=True))
        ids = columns[header.index(id_field)]
        if "" in ids:
            return None
        collections: Sequence[str] | None = None
        collection = ctx.shape.collection
        if "collection" in header:
            collections = columns[header.index("collection")]
            if "" in collections:
                return None
            if len(set(collections)) == 1:
                collection = collections[0]
                collections = None
        if collections is None:
            if collection is None or not state.collection_ok(collection):
                return None
            named = {collection}
        else:
            named = set(collections)
        kept = [name != id_field and name != "collection" for name in header]
        names = list(compress(header, kept))
        raw = list(compress(columns, kept))
        exact: set[int] = set()
        lengths = list(map(len, ids))
        if max(lengths) > state.max_id:
            exact.update(compress(range(len(ids)), map(lt, repeat(state.max_id), lengths)))
        bad = {name for name in named if not state.collection_ok(name)}
        if bad and collections is not None:
            exact.update(i for i, name in enumerate(collections) if name in bad)
        block = cls(ids, collections, collection, names, raw, [])
        if ctx.pack:
            try:
                if not block._lines(settings.infer, facts, exact, infer_column):
                    return None
            except (orjson.JSONEncodeError, UnicodeEncodeError):  # a lone surrogate, say
                return None
        elif settings.infer and not facts.small:
            for column in raw:
                joined = "\n".join(column)
                if _maybe_numbers(joined) and not _plain(joined, False):
                    infer_column(tuple(column), exact)
        block.exact = sorted(exact)
        return block

    def _lines(self, infer: bool, facts: Facts, odd: set[int], infer_column: Infer) -> bool:
        """Fill `slots` (see the module's doc); False if a cell holds a line break."""
        ids = self.ids
        count = len(ids)
        joined = "\n".join(ids)
        if not facts.single and joined.count("\n") != count - 1:
            return False
        plain = facts.plain
        heads = _column(_OPEN_ID, ids, joined, False, plain, odd, infer_column)
        if _plain_text(joined, plain):
            self.encoded = joined.encode().split(b"\n")
        collections = self.collections
        if collections is None:
            middles: Sequence[bytes] = [_middle(self.collection)] * count
        else:
            known = {name: _middle(name) for name in set(collections)}
            middles = list(map(known.__getitem__, collections))
        slots: list[Sequence[bytes]] = [heads, middles]
        waiting: list[int] | None = None  # rows with no property yet (None: every row)
        for name, column, filled in zip(self.names, self.raw, self.filled, strict=True):
            if not filled:
                continue
            joined = "\n".join(column)
            if not facts.single and joined.count("\n") != count - 1:
                return False
            key = (b"" if waiting is None else b",") + orjson.dumps(name) + b":"
            fragments = _column(key, column, joined, infer, plain, odd, infer_column)
            if waiting is None:
                waiting = list(compress(range(count), map(not_, fragments)))
            elif waiting:
                for row in waiting:
                    if fragments[row]:
                        fragments[row] = fragments[row][1:]  # the row's first: no comma
                waiting = [row for row in waiting if not fragments[row]]
            slots.append(fragments)
        slots.append([_END] * count)
        self.slots = slots
        return True

    def take(self, state: ChunkState, start: int, end: int) -> None:
        """Accept rows start..end (none of them in `exact`): counts, hints, keys, lanes."""
        count = end - start
        if count <= 0:
            return
        state.records += count
        state.valid += count
        ids = self.ids[start:end]
        collections: Sequence[str]
        per = state.per_collection
        if self.collections is None:
            collection = self.collection
            if collection is None:  # pragma: no cover - `of` refuses such blocks
                raise ValueError("a block without collections")
            per[collection] = per.get(collection, 0) + count
            collections = list(repeat(collection, count))
        else:
            collections = self.collections[start:end]
            for name, number in Counter(collections).items():
                per[name] = per.get(name, 0) + number
        ctx = state.ctx
        if ctx.hints:
            self._hints(state, start, collections)
            state.keys.extend(map(hash, zip(collections, ids, strict=True)))
        if not self.slots:
            return
        lanes_count = ctx.lanes
        bufs, lane_records = state.bufs, state.lane_records
        if lanes_count == 1:
            bufs[0] += _joined([slot[start:end] for slot in self.slots], count)
            lane_records[0] += count
            state.order.extend(bytes(count))
            return
        bases = map(state.good.__getitem__, collections)
        encoded = map(str.encode, ids) if self.encoded is None else self.encoded[start:end]
        lanes = list(map(mod, map(state.crc32, encoded, bases), repeat(lanes_count)))
        if self.lines is None:  # one join and one split beat picking each lane's items
            self.lines = _joined(self.slots, len(self.ids)).split(b"\n")
        lines = self.lines[start:end]
        for lane in set(lanes):
            buf = bufs[lane]
            buf += b"\n".join(compress(lines, map(lane.__eq__, lanes)))
            buf += b"\n"
            lane_records[lane] += lanes.count(lane)
        state.order.extend(lanes)

    def _hints(self, state: ChunkState, start: int, collections: Sequence[str]) -> None:
        """Property names each collection shows for the first time, record by record (as
        `batchcheck.take` notes them); nothing to do once a collection has seen every name
        the block fills."""
        names = state.names
        named = set(collections)
        for name in named - names.keys():
            names[name] = set()
        filled = set(compress(self.names, self.filled))
        pending = {name for name in named if not names[name].issuperset(filled)}
        if not pending:
            return
        raw = self.raw
        header = self.names
        for row, name in enumerate(collections, start):
            if name not in pending:
                continue
            seen = names[name]
            present = [header[i] for i, column in enumerate(raw) if column[row]]
            if not seen.issuperset(present):
                new = sorted(set(present) - seen)
                seen.update(new)
                state.groups.append((name, new))
                if seen.issuperset(filled):
                    pending.discard(name)
                    if not pending:
                        return


def _middle(collection: str | None) -> bytes:
    return b',"collection":' + orjson.dumps(collection) + b',"properties":{'


def _joined(slots: list[Sequence[bytes]], count: int) -> bytes:
    """The rows' items (one sequence a slot) joined row by row."""
    width = len(slots)
    flat: list[bytes] = [b""] * (count * width)
    for at, slot in enumerate(slots):
        flat[at::width] = slot
    if len(flat) <= _JOIN:
        return b"".join(flat)
    return b"".join([b"".join(flat[at : at + _JOIN]) for at in range(0, len(flat), _JOIN)])


def _column(
    key: bytes,
    cells: Sequence[str],
    joined: str,
    infer: bool,
    plain: bool,
    odd: set[int],
    infer_column: Infer,
) -> list[bytes]:
    """`key` + the JSON of each cell's value (b"" for an empty cell), as `csvread` infers it.

    `joined`: the cells joined by line breaks (no cell holds one). Rows with a float the rules
    may refuse are added to `odd`. orjson.JSONEncodeError for a cell orjson cannot write."""
    if infer and _maybe_numbers(joined):
        numbers = _plain_numbers(joined, len(cells))
        if numbers is not None:
            return _split(key, *numbers, b"null")
        values = infer_column(tuple(cells), odd)
        if "," not in joined and '"' not in joined:
            return _split(key, orjson.dumps(values)[1:-1], b",", b'""')
        return _split(key, b"\n".join(map(orjson.dumps, values)), b"\n", b'""')
    if "\\" in joined:
        return _split(key, b"\n".join(map(orjson.dumps, cells)), b"\n", b'""')
    quoted = key + b'"'
    if _plain_text(joined, plain):
        body = joined.encode().replace(b"\n", b'"\n' + quoted)
    else:  # one string: a `\n` in its JSON stands where a line break was
        body = orjson.dumps(joined)[1:-1].replace(b"\\n", b'"\n' + quoted)
    text = b"\n" + quoted + body + b'"'
    return text.replace(b"\n" + quoted + b'"', b"\n")[1:].split(b"\n")


def _split(key: bytes, body: bytes, between: bytes, empty: bytes) -> list[bytes]:
    """`key` + each value's JSON from `body`, where `between` stands only between two values
    and `empty` is the JSON of an empty cell (and no other value's JSON starts with it)."""
    text = b"\n" + key + body.replace(between, b"\n" + key)
    return text.replace(b"\n" + key + empty, b"\n")[1:].split(b"\n")


def _plain_text(joined: str, plain: bool) -> bool:
    """Whether orjson writes each cell as `"` + its UTF-8 + `"` (nothing to escape); `plain`:
    no character below U+0020 is known to be in the chunk."""
    return '"' not in joined and "\\" not in joined and (plain or not _CONTROL.search(joined))


def _maybe_numbers(joined: str) -> bool:
    """Whether a line of `joined` may be a number to `_infer`."""
    lined = f"\n{joined}\n"
    first = _DIGIT_START.search(lined)
    return first is not None and _NUMBER_LINE.search(lined, first.start()) is not None


def _plain(joined: str, small: bool) -> bool:
    """Only digits, points, minus signs (and line breaks), and no 19 digits in a row (which
    `small` already rules out)."""
    if not joined.isascii():
        return False
    raw = joined.encode()
    if raw.translate(None, _NUMBER_BYTES):
        return False
    return small or _NINETEEN not in raw.translate(_ZEROS)


def _plain_numbers(joined: str, count: int) -> tuple[bytes, bytes] | None:
    """The JSON of cells each of digits, points and minus signs only, with no 19 digits in a
    row, and the separator between them (an empty cell is `null`); None if a cell is not a
    number to `_infer` (but a code of digits with leading zeros, a string to it).

    Such a cell is a JSON number exactly when `_infer` makes it a number (an int when it has
    no point), JSON reads the same value, and it is well within 64 bits and below 2^63. An
    int is written as its own text when it has no leading zero and is not `-0`."""
    if not _plain(joined, False):
        return None
    raw = joined.encode()
    lined = f"\n{joined}\n".encode().replace(b"\n\n", b"\nnull\n").replace(b"\n\n", b"\nnull\n")
    led = _LEADING_ZERO.search(lined) is not None
    if b"." not in raw:
        if b"-" not in raw:  # digits: ints, and strings where a code has leading zeros
            return (_ZERO_LED.sub(rb'\n"\1"', lined) if led else lined)[1:-1], b"\n"
        ints = raw.count(b"-") == lined.count(b"\n-")  # each sign starts its cell
        if not led and ints and b"\n-\n" not in lined and b"\n-0\n" not in lined:
            return lined[1:-1], b"\n"
    if led:
        return None
    try:
        values = orjson.loads(b"[" + lined[1:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    if type(values) is not list or len(values) != count:
        return None
    return orjson.dumps(values)[1:-1], b","

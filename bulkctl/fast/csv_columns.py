"""Well-formed CSV rows accepted a column at a time, their JSON lines built without a dict a row.

Python spends ~50 ns on every object it makes or frees, and a row of 20 cells turned into a
dict, a record and an encoded line costs dozens. Here a block of rows is handled a column at
a time, with passes that run in C: each column becomes its *fragments* (`"name":value`, or
b"" for an empty cell, which `read.csv_rows` leaves out) from one or two `orjson` calls for the
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
- a column's type was decided before (`bulkctl.read.csv_types`), so a column is converted as one:
  an `int` or `bool` column's cells (checked again: canonical ints within 64 bits, `true` /
  `false`) are their own JSON; a `float` column goes through `float` and one `orjson.dumps`
  of the list (commas only between values; an empty cell is `null`); a `str` column is text.

Rows the rules might refuse (an id too long, an unusable collection, a float beyond 2^63) are
left to the exact path (`Block.exact`); any block this cannot handle, to the caller's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import compress, repeat
from operator import lt, not_
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from bulkctl.fast.csv_lines import names_size
from bulkctl.pack.lanes import lanes_of
from bulkctl.read.csv_types import _DEC, _EXP, _INT, INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    from bulkctl.fast.state import ChunkState, WorkContext
    from bulkctl.read.csv_rows import CsvSettings


class Facts(NamedTuple):
    """What is known of every cell of a block before it is converted (see `fast.csv_lines`)."""

    single: bool  # no cell holds a line break (every row was one line)
    plain: bool  # no cell holds a character below U+0020


_INT_LINES = re.compile(rf"(?:{_INT}?\n)*{_INT}?")  # an int column's cells, empty ones too
_BOOL_LINES = re.compile(r"(?:(?:true|false)?\n)*(?:true|false)?")
_FLOAT_LINES = re.compile(rf"(?:(?:{_EXP}|{_DEC}|{_INT})?\n)*(?:{_EXP}|{_DEC}|{_INT})?")
_SAFE_DIGITS = 18  # a cell of at most 18 characters is an int within 64 bits
_BEYOND = 2.0**63  # a float this large is an integer beyond 64 bits to the rules
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
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
        self.kinds: list[str] = ["str"] * len(names)  # each property column's decided type
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
        kinds = settings.kinds or {}
        block.kinds = [kinds.get(name, "str") for name in names]
        if ctx.pack:
            try:
                if not block._lines(facts, exact):
                    return None
            except (orjson.JSONEncodeError, UnicodeEncodeError):  # a lone surrogate, say
                return None
        else:
            for column, kind in zip(raw, block.kinds, strict=True):
                if kind != "str" and _values(kind, column, "\n".join(column), exact) is None:
                    return None
        block.exact = sorted(exact)
        return block

    def _lines(self, facts: Facts, odd: set[int]) -> bool:
        """Fill `slots` (see the module's doc); False if a cell holds a line break, or is not
        of its column's type (the file changed since the first pass)."""
        ids = self.ids
        count = len(ids)
        joined = "\n".join(ids)
        if not facts.single and joined.count("\n") != count - 1:
            return False
        plain = facts.plain
        heads = _column(_OPEN_ID, ids, joined, "str", plain, odd)
        if heads is None:  # pragma: no cover - a str column is always written
            return False
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
        columns = zip(self.names, self.raw, self.filled, self.kinds, strict=True)
        for name, column, filled, kind in columns:
            if not filled:
                continue
            joined = "\n".join(column)
            if not facts.single and joined.count("\n") != count - 1:
                return False
            key = (b"" if waiting is None else b",") + orjson.dumps(name) + b":"
            fragments = _column(key, column, joined, kind, plain, odd)
            if fragments is None:
                return False
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
            if state.one_collection:
                state.note_collections(collections)
            return
        bases = map(state.good.__getitem__, collections)
        encoded = map(str.encode, ids) if self.encoded is None else self.encoded[start:end]
        lanes = lanes_of(bases, encoded, lanes_count)
        if self.lines is None:  # one join and one split beat picking each lane's items
            self.lines = _joined(self.slots, len(self.ids)).split(b"\n")
        lines = self.lines[start:end]
        for lane in set(lanes):
            buf = bufs[lane]
            buf += b"\n".join(compress(lines, map(lane.__eq__, lanes)))
            buf += b"\n"
            lane_records[lane] += lanes.count(lane)
        state.order.extend(lanes)
        if state.one_collection:
            state.note_collections(collections)

    def _hints(self, state: ChunkState, start: int, collections: Sequence[str]) -> None:
        """Property names each collection shows for the first time, record by record (as
        `batchcheck.take` notes them); nothing to do once a collection has seen every name
        the block fills."""
        book = state.book
        names = book.names
        named = set(collections)
        book.know(named - names.keys())
        filled = set(compress(self.names, self.filled))
        pending = {name for name in named if not names[name].issuperset(filled)}
        if not pending:
            return
        raw = self.raw
        header = self.names
        for row, name in enumerate(collections, start):
            if name not in pending:
                continue
            present = [header[i] for i, column in enumerate(raw) if column[row]]
            new = book.fresh(name, present)
            if new:
                state.groups.append((name, new))
                if names[name].issuperset(filled):
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
    kind: str,
    plain: bool,
    odd: set[int],
) -> list[bytes] | None:
    """`key` + the JSON of each cell's value (b"" for an empty cell), as `read.csv_rows` converts a
    column of type `kind`; None if a cell is not of that type.

    `joined`: the cells joined by line breaks (no cell holds one). Rows with a float the rules
    may refuse are added to `odd`. orjson.JSONEncodeError for a cell orjson cannot write."""
    if kind != "str":
        values = _values(kind, cells, joined, odd)
        if values is None:
            return None
        if kind == "float":
            return _split(key, orjson.dumps(values)[1:-1], b",", b"null")
        lined = f"\n{joined}\n".encode().replace(b"\n\n", b"\nnull\n").replace(b"\n\n", b"\nnull\n")
        return _split(key, lined[1:-1], b"\n", b"null")
    if "\\" in joined:
        return _split(key, b"\n".join(map(orjson.dumps, cells)), b"\n", b'""')
    quoted = key + b'"'
    if _plain_text(joined, plain):
        body = joined.encode().replace(b"\n", b'"\n' + quoted)
    else:  # one string: a `\n` in its JSON stands where a line break was
        body = orjson.dumps(joined)[1:-1].replace(b"\\n", b'"\n' + quoted)
    text = b"\n" + quoted + body + b'"'
    return text.replace(b"\n" + quoted + b'"', b"\n")[1:].split(b"\n")


def _values(kind: str, cells: Sequence[str], joined: str, odd: set[int]) -> list[Any] | None:
    """Check the cells of an `int`, `bool` or `float` column are of that type (canonical, as
    the first pass saw them); for a float column, the floats (None for an empty cell), rows
    with one of 2^63 or more added to `odd`. None if a cell is not of the type."""
    if kind == "bool":
        return [] if _BOOL_LINES.fullmatch(joined) else None
    if kind == "int":
        if not _INT_LINES.fullmatch(joined):
            return None
        if max(map(len, cells)) > _SAFE_DIGITS:
            numbers = [int(cell) for cell in cells if cell]
            if min(numbers) < INT64_MIN or max(numbers) > INT64_MAX:
                return None
        return []
    if not _FLOAT_LINES.fullmatch(joined):
        return None
    values = [float(cell) if cell else None for cell in cells]
    if max((abs(value) for value in values if value is not None), default=0.0) >= _BEYOND:
        if not all(map(math.isfinite, filter(None, values))):
            return None
        odd.update(at for at, value in enumerate(values) if value and abs(value) >= _BEYOND)
    return values


def _split(key: bytes, body: bytes, between: bytes, empty: bytes) -> list[bytes]:
    """`key` + each value's JSON from `body`, where `between` stands only between two values
    and `empty` is the JSON of an empty cell (and no other value's JSON starts with it)."""
    text = b"\n" + key + body.replace(between, b"\n" + key)
    return text.replace(b"\n" + key + empty, b"\n")[1:].split(b"\n")


def _plain_text(joined: str, plain: bool) -> bool:
    """Whether orjson writes each cell as `"` + its UTF-8 + `"` (nothing to escape); `plain`:
    no character below U+0020 is known to be in the chunk."""
    return '"' not in joined and "\\" not in joined and (plain or not _CONTROL.search(joined))

"""A streaming splitter for JSON documents: each top-level element with its start line and index.

ijson cannot say where an element starts, and `orjson.loads` wants the whole document, so this
module scans the byte stream chunk by chunk. For an object element it first tries the likely
end (a '}' before ',' or ']') and lets orjson say whether that slice is the whole element;
otherwise regular expressions jump over strings and plain content to the next bracket, so
Python runs a few steps per bracket, never one per byte. Memory stays bounded by the chunk size
plus the largest element kept (an element over `cap` bytes is skipped, not kept).

Accepted documents: an array of values, one object, or an Objects API body
`{"collection": "rooms", "objects": [...]}` whose elements get the body's collection.
A broken structure (unbalanced, garbage between elements, truncated) is an `InputError`;
a balanced element that is not valid JSON is a `RawItem` with an error, and reading goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson

from bulkctl.errors import InputError
from bulkctl.exactjson import RepeatedKeys, exact, repeated_item
from bulkctl.native import native
from bulkctl.records import RawItem

SLACK = 64 * 1024  # a record may be this much over the limit before a reader refuses to keep it
PREVIEW_CHARS = 1000
BOM = b"\xef\xbb\xbf"

_RUN = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_SCALAR = re.compile(rb"[-+.0-9A-Za-z]*+")
_SPACE = re.compile(rb"[ \t\r\n]*+")

# Where an object element may end: a brace, then the comma or bracket after the element.
_OBJECT_END = re.compile(rb"\}[ \t\r\n]*+[,\]]")
_GUESSES = 16
_NEXT_OBJECT = re.compile(rb"[ \t\r\n]*+,[ \t\r\n]*+(?=\{)")
_NO_GUESS = object()
_LBRACE = ord("{")
_BODY_HEAD = re.compile(
    rb'\{\s*(?:"collection"\s*:\s*("(?:[^"\\]++|\\.)*+")\s*,\s*)?"objects"\s*:\s*\[', re.DOTALL
)
_BODY_WINDOW = 64 * 1024
_CLOSER = {ord("["): ord("]"), ord("{"): ord("}")}
_OPEN = frozenset(b"[{")
_QUOTE = ord('"')
_COMMA = ord(",")
_END = -1


def parse_error(raw: bytes) -> str:
    """Say why `raw` is not a JSON value, pointing at bad UTF-8 by its byte in the line."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 at byte {exc.start} of the line"
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"
    return "not valid JSON"  # pragma: no cover - only called after loads failed


def preview(raw: bytes) -> str:
    """The start of an unusable input, as text a rejects file can show."""
    return raw[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS].rstrip("\r\n")


def too_long(what: str, cap: int, limit: int) -> str:
    """The error for a line or element that a reader skipped instead of keeping in memory."""
    return f"{what} is longer than {cap:,} bytes; an object may be at most {limit:,} bytes"


@dataclass(frozen=True, slots=True)
class Unparsed:
    """An element's bytes, to be parsed where it is checked (a worker), not where it was found.

    `collection`: the Objects API body's collection, for an element that names none.
    """

    raw: bytes
    collection: str | None = None


def read_json(
    read: Callable[[int], bytes],
    name: str,
    *,
    limit: int,
    chunk_size: int = 1 << 20,
    defer: bool = False,
) -> Iterator[RawItem]:
    """Yield every record of one JSON document read with `read(n)`, with lines and indexes.

    `defer`: object and array elements come as `Unparsed` bytes when the C fast path can
    find their ends (`bulkctl._native.value_end`); see `parse_element`. Other elements keep
    their bytes (`RawItem.raw`) to be read exactly where they are checked (`bulkctl.fast.lines`).
    Every error is exactly as without it.
    """
    yield from _Splitter(read, name, limit, chunk_size, defer).document()


def parse_element(item: RawItem) -> RawItem:
    """An item with `Unparsed` data as `read_json` would have made it without `defer`."""
    element = item.data
    if not isinstance(element, Unparsed):
        return item
    raw = element.raw
    try:
        data = exact(raw, orjson.loads(raw))
    except orjson.JSONDecodeError:
        return RawItem(
            item.source, item.line, item.index, None, parse_error(raw), None, preview(raw)
        )
    if isinstance(data, RepeatedKeys):
        return repeated_item(item.source, item.line, item.index, raw, data)
    size = len(raw)
    collection = element.collection
    if collection is not None and type(data) is dict and "collection" not in data:
        data["collection"] = collection
        size += len(collection) + 16  # as _Splitter.item counts it
    return RawItem(item.source, item.line, item.index, data, size=size)


class _Splitter:
    """Scan state over a window `buf` of the stream; offsets in messages are absolute."""

    def __init__(
        self, read: Callable[[int], bytes], name: str, limit: int, chunk: int, defer: bool = False
    ) -> None:
        self.defer = defer  # elements are read exactly where they are checked
        module = native() if defer else None
        self.value_end: Callable[[bytes, int], int] | None = (
            None if module is None else module.value_end
        )
        self.read = read
        self.name = name
        self.limit = limit
        self.cap = limit + SLACK
        self.chunk = max(1, chunk)
        self.buf = b""
        self.pos = 0
        self.base = 0  # absolute offset of buf[0]
        self.line = 1  # line number at buf[line_pos]
        self.line_pos = 0
        self.keep = -1  # start of the element being kept, or -1
        self.dropped: bytes | None = None  # preview of an element too long to keep

    # -- buffer -----------------------------------------------------------------------------

    def fill(self) -> bool:
        """Read one more chunk, dropping what is no longer needed; False at the end."""
        data = self.read(self.chunk)
        if not data:
            return False
        if self.keep >= 0 and len(self.buf) - self.keep > self.cap:
            self.dropped = self.buf[self.keep : self.keep + PREVIEW_CHARS * 4]
            self.keep = -1
        cut = self.keep if self.keep >= 0 else self.pos
        if cut > self.line_pos:
            self.line_at(cut)
        self.line_pos -= cut
        if self.keep >= 0:
            self.keep -= cut
        self.buf = self.buf[cut:] + data
        self.base += cut
        self.pos -= cut
        return True

    def line_at(self, p: int) -> int:
        """The line number at buf[p]; p never goes backwards."""
        self.line += self.buf.count(b"\n", self.line_pos, p)
        self.line_pos = p
        return self.line

    def peek(self) -> int:
        """Skip whitespace and return the next byte (not consumed), or _END."""
        while True:
            end = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            self.pos = end
            if end < len(self.buf):
                return self.buf[end]
            if not self.fill():
                return _END

    def fail(self, what: str, todo: str) -> InputError:
        line = self.line_at(self.pos)
        return InputError(f"{self.name}:{line}: {what} at byte {self.base + self.pos:,}; {todo}")

    def unexpected(self, expected: str) -> InputError:
        if self.pos >= len(self.buf):
            return self.truncated()
        found = self.buf[self.pos : self.pos + 1].decode("latin-1")
        return self.fail(
            f"expected {expected} but found {found!r}", "fix the JSON structure of the file"
        )

    def truncated(self) -> InputError:
        return self.fail(
            "the JSON document ends early",
            "the file may be incomplete: check that it was written or copied whole",
        )

    # -- scanning one value -----------------------------------------------------------------

    def value(self) -> tuple[int, bytes | None]:
        """Scan the value at pos; return its start line and bytes (None when too long)."""
        start = self.pos
        line = self.line_at(start)
        self.keep = start
        self.dropped = None
        first = self.buf[start]
        if first in _OPEN:
            self.nested()
        elif first == _QUOTE:
            self.pos += 1
            self.string()
        else:
            self.scalar()
        start = self.keep
        self.keep = -1
        if start < 0 or self.pos - start > self.cap:
            if start >= 0:
                self.dropped = self.buf[start : start + PREVIEW_CHARS * 4]
            return line, None
        return line, self.buf[start : self.pos]

    def nested(self) -> None:
        """From an opening bracket at pos to just after its matching closer."""
        expect = bytearray()
        while True:
            buf = self.buf
            p = _RUN.match(buf, self.pos).end()  # type: ignore[union-attr]
            self.pos = p
            if p == len(buf):
                if not self.fill():
                    raise self.truncated()
                continue
            ch = buf[p]
            if ch == _QUOTE:  # a string that goes on past the window
                self.pos = p + 1
                self.string()
                continue
            if ch in _OPEN:
                expect.append(_CLOSER[ch])
            elif (closer := expect.pop()) != ch:
                raise self.fail(
                    f"found {chr(ch)!r} where {chr(closer)!r} should close the open bracket",
                    "fix the JSON structure of the file",
                )
            self.pos = p + 1
            if not expect:
                return

    def string(self) -> None:
        """From just after an opening quote to just after the closing one."""
        while True:
            buf = self.buf
            p = _STRING_BODY.match(buf, self.pos).end()  # type: ignore[union-attr]
            if p < len(buf) and buf[p] == _QUOTE:
                self.pos = p + 1
                return
            self.pos = p
            if not self.fill():
                raise self.truncated()

    def scalar(self) -> None:
        """A number or literal: the run of characters they can be made of."""
        start = self.base + self.pos
        while True:
            p = _SCALAR.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            self.pos = p
            if p < len(self.buf) or not self.fill():
                break
        if self.base + self.pos == start:
            raise self.unexpected("a JSON value")

    # -- the document -----------------------------------------------------------------------

    def document(self) -> Iterator[RawItem]:
        while len(self.buf) < len(BOM) and self.fill():
            pass
        if self.buf.startswith(BOM):
            self.pos = len(BOM)
        first = self.peek()
        if first == _END:
            return
        if first == ord("["):
            yield from self.array(None)
        elif first == ord("{"):
            yield from self.top_object()
        else:
            raise self.fail(
                "the JSON document is not an array or an object",
                "give an array of objects, one object, or an Objects API body",
            )
        if self.peek() != _END:
            raise self.fail(
                "unexpected data after the end of the JSON document",
                "if the file holds one JSON object per line, read it as NDJSON (--format ndjson)",
            )

    def array(self, collection: str | None) -> Iterator[RawItem]:
        """The elements of the array whose '[' is at pos; pos ends just after its ']'."""
        self.pos += 1
        nxt = self.peek()
        if nxt == ord("]"):
            self.pos += 1
            return
        index = 0
        while True:
            if nxt == _END:
                raise self.truncated()
            if nxt in b",]}:":
                raise self.unexpected("an array element")
            yield self.item(index, collection)
            index += 1
            follows = _NEXT_OBJECT.match(self.buf, self.pos)
            if follows is not None:  # the usual ", {": skip the general case below
                self.pos = follows.end()
                nxt = _LBRACE
                continue
            nxt = self.peek()
            if nxt == _COMMA:
                self.pos += 1
                nxt = self.peek()
                if nxt == ord("]"):
                    raise self.unexpected("an element after ','")
            elif nxt == ord("]"):
                self.pos += 1
                return
            else:
                raise self.unexpected("',' or ']' after an array element")

    def item(self, index: int | None, collection: str | None) -> RawItem:
        """Scan, slice and parse the element at pos."""
        if self.value_end is not None:
            deferred = self.deferred(index, collection)
            if deferred is not None:
                return deferred
        at = self.pos
        start = self.base + at
        data: Any = self.guess() if self.buf[at] == _LBRACE else _NO_GUESS
        if data is _NO_GUESS:
            line, raw = self.value()
            if raw is None:
                error = too_long("element", self.cap, self.limit)
                text = preview(self.dropped or b"")
                return RawItem(self.name, line, index, None, error, None, text)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return RawItem(self.name, line, index, None, parse_error(raw), None, preview(raw))
        else:
            line = self.line
            raw = self.buf[at : self.pos]  # guess() read no more: `at` holds
        size = self.base + self.pos - start
        if self.defer and collection is None:
            return RawItem(self.name, line, index, data, size=size, raw=raw)
        data = exact(raw, data)
        if isinstance(data, RepeatedKeys):
            return repeated_item(self.name, line, index, raw, data)
        if collection is not None and type(data) is dict and "collection" not in data:
            data["collection"] = collection
            size += len(collection) + 16  # what the element stands for is a little longer
        return RawItem(self.name, line, index, data, size=size)

    def deferred(self, index: int | None, collection: str | None) -> RawItem | None:
        """The object or array at pos as `Unparsed` bytes, ended by brackets alone (in C).

        None (nothing consumed) when it is not an object or array, is longer than the cap,
        or its brackets do not balance: `item` then scans it and says what is wrong.
        """
        value_end = self.value_end
        if value_end is None or self.buf[self.pos] not in _OPEN:
            return None
        end = value_end(self.buf, self.pos)
        while end == -1:
            if len(self.buf) - self.pos > self.cap or not self.fill():
                return None
            end = value_end(self.buf, self.pos)
        if end < 0 or end - self.pos > self.cap:
            return None
        line = self.line_at(self.pos)
        raw = self.buf[self.pos : end]
        self.pos = end
        return RawItem(self.name, line, index, Unparsed(raw, collection), size=len(raw))

    def guess(self) -> Any:
        """The fast path for an object: try the likely ends where its braces balance.

        A slice from '{' that orjson accepts ends exactly where the bracket scan would end
        it, so a successful guess is never wrong; failed ones fall back to the scan.
        Returns the parsed value (pos moved past it, line_at(start) done) or _NO_GUESS.
        """
        buf = self.buf
        start = self.pos
        found = _OBJECT_END.search(buf, start)
        if found is None:
            return _NO_GUESS
        end = found.start() + 1
        if end - start > self.cap:
            return _NO_GUESS
        try:
            data = orjson.loads(buf[start:end])
        except orjson.JSONDecodeError:
            data = self.guess_further(end)
            if data is _NO_GUESS:
                return data
        else:
            self.pos = end
        self.line_at(start)
        return data

    def guess_further(self, end: int) -> Any:
        """Later candidate ends, skipping those where braces do not balance."""
        buf = self.buf
        start = self.pos
        opens = buf.count(b"{", start, end)
        closes = buf.count(b"}", start, end)
        for found in islice(_OBJECT_END.finditer(buf, end), _GUESSES):
            seen, end = end, found.start() + 1
            if end - start > self.cap:
                break
            opens += buf.count(b"{", seen, end)
            closes += buf.count(b"}", seen, end)
            if opens != closes:
                continue
            try:
                data = orjson.loads(buf[start:end])
            except orjson.JSONDecodeError:
                break
            self.pos = end
            return data
        return _NO_GUESS

    def key(self, raw: bytes) -> str:
        """A JSON string of the body's own structure (a key, the collection)."""
        try:
            text: str = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.fail(f"not a valid JSON string ({exc})", "fix the string") from None
        return text

    def top_object(self) -> Iterator[RawItem]:
        """One object, or an Objects API body streamed element by element."""
        while len(self.buf) - self.pos < _BODY_WINDOW and self.fill():
            pass
        head = _BODY_HEAD.match(self.buf, self.pos)
        if head is None:
            yield self.item(None, None)
            return
        collection = None
        if head.group(1) is not None:
            collection = self.key(head.group(1))
        self.pos = head.end() - 1
        yield from self.array(collection)
        while True:
            nxt = self.peek()
            if nxt == ord("}"):
                self.pos += 1
                return
            if nxt != _COMMA:
                raise self.unexpected("',' or '}' after \"objects\"")
            self.pos += 1
            if self.peek() != _QUOTE:
                raise self.unexpected("a key")
            _, raw = self.value()
            key = self.key(raw or b'""')
            if key == "collection":
                raise self.fail(
                    '"collection" comes after "objects" in this Objects API body',
                    'put "collection" before "objects" so it applies while streaming, '
                    "or remove it and pass --collection NAME",
                )
            raise self.fail(
                f"unexpected key {key!r} in an Objects API body",
                'only "collection" and "objects" belong there',
            )

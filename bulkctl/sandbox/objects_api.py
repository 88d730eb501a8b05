"""The Segment Objects API (seed 001), emulated: `POST /v1/set` with 1 to 10 objects.

As strict as the documentation: Basic auth with the write key, `Content-Type:
application/json`, a body of exactly `collection` and `objects`, each object exactly `id` and
`properties`, checked with the client's own rules (`bulkctl.check.rules`), ids unique within a
request ("each with a unique object ID"), no key written twice. A good request is applied to
the warehouse (merged by id, property by property) before the 200 answers, so its rows can be
queried as soon as the client has its answer; a bad one is refused whole with a 400 naming
`objects[i].field`.

`Faults.out_of_order` plays the API's asynchronous mode: a request without `Synchronous: true`
is answered at once but applied only after the next such request (or when the sandbox stops),
so two versions of one object land in the wrong order unless the client asks for order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import orjson

from bulkctl.check.rules import SEGMENT_RULES, ObjectRules
from bulkctl.exactjson import RepeatedKeys, exact
from bulkctl.records import Problem, Record
from bulkctl.sandbox.auth import refuse_write_key, write_key_token
from bulkctl.sandbox.server import Request, Response, Route, json_error, route
from bulkctl.sandbox.warehouse import SetRequest, Warehouse, now_iso
from bulkctl.targets.segment_objects import MAX_OBJECTS

_ENVELOPE_BYTES = 65_536  # room for the envelope around MAX_OBJECTS objects at the line limit
_BODY_KEYS = ("collection", "objects")
_OBJECT_KEYS = ("id", "properties")


class _Refused(Exception):
    """The request is malformed: answer 400 naming the first problem."""

    def __init__(self, field: str | None, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.field = field
        self.problems = problems or [Problem(field, "request", message)]

    def response(self) -> Response:
        where = f"{self.field}: " if self.field else ""
        return json_error(
            400,
            f"{where}{self.args[0]}",
            field=self.field,
            problems=[p.as_dict() for p in self.problems],
        )


class SegmentObjectsEmulator:
    """`/v1/set` of the Objects API, over a `Warehouse`."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        write_key: str | None = None,
        out_of_order: bool = False,
        rules: ObjectRules = SEGMENT_RULES,
    ) -> None:
        self._warehouse = warehouse
        self._key = write_key_token(write_key)
        self._out_of_order = out_of_order
        self._rules = rules
        self._body_limit = MAX_OBJECTS * rules.max_line_bytes + _ENVELOPE_BYTES
        self._lock = threading.Lock()  # keeps the held request and applying in step
        self._held: SetRequest | None = None

    def __repr__(self) -> str:
        return f"SegmentObjectsEmulator(out_of_order={self._out_of_order})"  # never the key

    def routes(self) -> Sequence[Route]:
        return [route("POST", r"/v1/set", "set", self._set)]

    def authorize(self, request: Request) -> Response | None:
        return refuse_write_key(request, self._key)

    def tick(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held is not None:
                self._warehouse.apply_set(held)

    def _set(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return json_error(400, "send the body as JSON: Content-Type: application/json")
        if request.body.too_long_to_drain(self._body_limit):
            return json_error(413, f"the body is over {self._body_limit:,} bytes")
        raw = request.body.read_all(self._body_limit)
        synchronous = request.headers.get("synchronous", "").strip().lower() == "true"
        try:
            collection, objects = self._parse(raw)
        except _Refused as exc:
            return exc.response()
        received = SetRequest(collection, objects, synchronous, now_iso())
        try:
            self._apply(received)
        except sqlite3.Error as exc:
            return json_error(500, f"the sandbox could not apply the request: {exc}")
        return Response(200, {"success": True})

    def _apply(self, received: SetRequest) -> None:
        with self._lock:
            if not self._out_of_order:
                self._warehouse.apply_set(received)
                return
            if received.synchronous:  # delivered in order: what was held goes first
                held, self._held = self._held, None
                if held is not None:
                    self._warehouse.apply_set(held)
                self._warehouse.apply_set(received)
                return
            held, self._held = self._held, received
            if held is not None:
                self._held = None
                self._warehouse.apply_set(received)  # the later request lands first
                self._warehouse.apply_set(held)
            # else: held until the next asynchronous request or the sandbox stops

    def _parse(self, raw: bytes) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        try:
            data = exact(raw, orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise _Refused(None, f"the body is not valid JSON: {exc}") from None
        if isinstance(data, RepeatedKeys):
            raise _Refused(data.field, data.message)
        if not isinstance(data, dict):
            raise _Refused(None, 'the body must be a JSON object {"collection", "objects"}')
        _exact_keys(data, _BODY_KEYS, "")
        collection, objects = data["collection"], data["objects"]
        if not isinstance(collection, str):
            raise _Refused("collection", "must be a string")
        if not isinstance(objects, list) or not 1 <= len(objects) <= MAX_OBJECTS:
            raise _Refused("objects", f"must be an array of 1 to {MAX_OBJECTS} objects")
        seen: set[str] = set()
        parsed: list[tuple[str, dict[str, Any]]] = []
        for index, item in enumerate(objects):
            where = f"objects[{index}]"
            if not isinstance(item, dict):
                raise _Refused(where, "must be an object {id, properties}")
            _exact_keys(item, _OBJECT_KEYS, f"{where}.")
            object_id, properties = item["id"], item["properties"]
            if not isinstance(object_id, str):
                raise _Refused(f"{where}.id", "must be a string")
            if not isinstance(properties, dict):
                raise _Refused(f"{where}.properties", "must be an object")
            record = Record(object_id, collection, properties, "", 0)
            problems = self._rules.check(record)[0]
            if problems:
                first = problems[0]
                field = where if first.field is None else f"{where}.{first.field}"
                field = "collection" if first.field == "collection" else field
                raise _Refused(field, first.message, problems)
            if object_id in seen:
                raise _Refused(f"{where}.id", f"id {object_id!r} occurs twice in one request")
            seen.add(object_id)
            parsed.append((object_id, properties))
        return collection, parsed


def _exact_keys(data: dict[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    for key in sorted(data):
        if key not in keys:
            raise _Refused(f"{prefix}{key}", f"unknown field {key!r}")
    for key in keys:
        if key not in data:
            raise _Refused(f"{prefix}{key}", "is required")

"""Segment Objects API (seed 001): `POST /v1/set`, at most 10 objects of one collection.

No session: every accepted request is applied on its own, so the runner sends each spooled
part as batches (`bulkctl.send.requests`), one request in flight a lane, and the job store
keeps each acknowledged one (`resume` sends the rest).

The API may apply requests out of order unless they carry `Synchronous: true`: with neither
`--sync` nor `--no-sync` the header goes on every request when some id occurs more than once
in the input (found before the first request, `bulkctl.pack.batches.ids_repeat`), else on
none. The object rules are the Bulk API's (`bulkctl.check.rules.SEGMENT_RULES`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from bulkctl.errors import ApiError
from bulkctl.pack.batches import Batch, BatchObject, BatchRules
from bulkctl.pack.parts import Part
from bulkctl.send import answers
from bulkctl.send.http import Reply, RequestSpec
from bulkctl.send.remote import RETRY_AFTER, Call, Limits, RepeatNote, SendResult
from bulkctl.sizes import counted
from bulkctl.targets.base import ConnectSettings
from bulkctl.targets.segment_bulk import (
    KEY_HINT,
    KEY_REFUSED,
    WRITE_KEY,
    SegmentBulkTarget,
    write_key_auth,
)

if TYPE_CHECKING:
    from bulkctl.settings import Secret

SEGMENT_OBJECTS_HOSTS = {
    "us": "https://objects.segment.com",
    "eu": "https://objects.euw1.segment.com",
}
MAX_OBJECTS = 10  # "The max batch size is 10 objects per request."
SPOOL_PART_BYTES = 64_000_000  # one spooled part a lane at a time: cut into requests to send
DEFAULT_CONCURRENCY = 8  # request-bound: 10 objects a request
IDS_NAMED = 3  # ids a message names when it points at one request


def set_request(endpoint: str, batch: Batch, *, synchronous: bool) -> RequestSpec:
    """`POST /v1/set` with `{"collection", "objects": [{"id", "properties"}, ...]}`."""
    body = b"".join(
        (
            b'{"collection":',
            orjson.dumps(batch.collection),
            b',"objects":[',
            b",".join(object_json(item) for item in batch.objects),
            b"]}",
        )
    )
    headers = [("Content-Type", "application/json")]
    if synchronous:
        headers.append(("Synchronous", "true"))
    return RequestSpec(
        f"request {batch.index + 1} of part {batch.part}",  # describe(batch) in errors
        "POST",
        f"{endpoint.rstrip('/')}/v1/set",
        headers=tuple(headers),
        content=body,
        carries_data=True,
    )


def object_json(item: BatchObject) -> bytes:
    """`{"id", "properties"}` from the bytes of the line (nothing encoded again)."""
    return b'{"id":' + item.id_json + b',"properties":' + item.properties + b"}"


def describe(batch: Batch) -> str:
    """How messages name one request: where it was cut from and the ids it carries."""
    ids = [item.id for item in batch.objects]
    named = ", ".join(repr(i) for i in ids[:IDS_NAMED]) + (" …" if len(ids) > IDS_NAMED else "")
    return (
        f"request {batch.index + 1} of part {batch.part} ({batch.collection}, "
        f"{counted(len(ids), 'object')}: {named})"
    )


def parse_set(reply: Reply, batch: Batch) -> SendResult:
    """A 2xx applied every record of the batch; a 400 quotes the API's reason."""
    if reply.status_code == 400:
        raise ApiError(
            f"the API refused {describe(batch)} as malformed (HTTP 400){answers.excerpt(reply)}",
            hint="fix those records (`bulkctl validate --target segment-objects` checks the "
            "rules bulkctl knows) and push them again",
            status_code=400,
        )
    if not 200 <= reply.status_code < 300:
        answers.raise_for_status(reply, describe(batch), refused=KEY_REFUSED, refused_hint=KEY_HINT)
    return SendResult(None, batch.records)


class SegmentObjectsRemote:
    """`/v1/set` requests, each applied on its own; `Synchronous: true` when ids repeat."""

    noun = "request"
    min_interval = 0.0
    rate_limit_headers: tuple[str, ...] = RETRY_AFTER
    batching = BatchRules(max_objects=MAX_OBJECTS)

    def __init__(self, endpoint: str, write_key: Secret | None, sync: bool | None = None) -> None:
        self.endpoint = endpoint
        self.auth = None if write_key is None else write_key_auth(write_key)
        self.sync = sync  # --sync / --no-sync; None: decided by note_repeats
        self.synchronous = sync is not False  # until the input is known: the safe order

    def __repr__(self) -> str:
        return f"SegmentObjectsRemote({self.endpoint!r}, synchronous={self.synchronous})"

    def note_repeats(self, repeats: bool | None) -> RepeatNote:
        if self.sync is True:
            return RepeatNote(detail="every request carries Synchronous: true (--sync)")
        if self.sync is False:
            self.synchronous = False
            if repeats is False:
                return RepeatNote()
            what = "some ids occur more than once" if repeats else "ids may repeat"
            return RepeatNote(
                warning=f"{what} in the input and --no-sync sends no Synchronous header: the "
                "API may apply versions of one object out of order, so an older one can win"
            )
        self.synchronous = repeats is not False
        if repeats is None:
            return RepeatNote(
                detail="too many ids to compare in memory, so every request carries "
                "Synchronous: true (pass --no-sync if ids are unique)"
            )
        if repeats:
            return RepeatNote(
                detail="some ids occur more than once, so every request carries "
                "Synchronous: true (the API then applies them in order)"
            )
        return RepeatNote(detail="every id occurs once: requests go without Synchronous")

    def send_batch(self, call: Call, batch: Batch) -> SendResult:
        # A retried request may be applied twice: the API merges by id, so that ends the same.
        spec = set_request(self.endpoint, batch, synchronous=self.synchronous)
        return parse_set(call(spec), batch)

    def send(self, call: Call, part: Part) -> SendResult:
        from bulkctl.send.requests import send_batches

        return send_batches(call, self, part)

    def job_options(self) -> dict[str, Any]:
        return {}


class SegmentObjectsTarget(SegmentBulkTarget):
    """`segment-objects`: the Bulk API's object rules; `/v1/set` requests of 10 in lanes."""

    name: ClassVar[str] = "segment-objects"
    options: ClassVar[frozenset[str]] = frozenset({"sync"})
    hosts: ClassVar[dict[str, str]] = SEGMENT_OBJECTS_HOSTS
    limits = Limits(
        max_part_bytes=SPOOL_PART_BYTES,
        gzip=False,
        file_suffix=".ndjson",
        batch=SegmentObjectsRemote.batching,
    )
    default_concurrency = DEFAULT_CONCURRENCY
    wait_timeout = 0.0  # no remote jobs to wait for

    def __init__(self, sync: bool | None = None) -> None:
        self.sync = sync

    def remote(self, connect: ConnectSettings) -> SegmentObjectsRemote:  # type: ignore[override]
        endpoint = connect.endpoint_for(self.hosts)
        return SegmentObjectsRemote(endpoint, connect.secret(WRITE_KEY), self.sync)

"""Segment Objects Bulk API: start → upload gzip parts → finish, plus keep-alive.

Only URLs, payloads and status codes live here, as pure pairs: `*_request` builds a
`RequestSpec`, `parse_*` interprets the `Reply` that ended its retries (a 2xx or a status
that must not be retried) and raises the bulkctl error that status means. No I/O, so each
step is testable without a server; `bulkctl.session` drives them.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from bulkctl.errors import ApiError, CredentialsError
from bulkctl.httpclient import Reply, RequestSpec, redact_url
from bulkctl.parts import Part
from bulkctl.sizes import format_bytes

DEFAULT_ENDPOINT = "https://objects-bulk-api.segmentapis.com"
EXCERPT_CHARS = 200


def _url(endpoint: str, *segments: str) -> str:
    path = "/".join(quote(segment, safe="") for segment in segments)
    return f"{endpoint.rstrip('/')}/v0/{path}"


def start_request(endpoint: str) -> RequestSpec:
    """`POST /v0/start`: open a session."""
    return RequestSpec("start of a session", "POST", _url(endpoint, "start"))


def parse_start(reply: Reply) -> str:
    """The new session's `sync_id` from a 200/201 answer."""
    _raise_for_status(reply, "start of a session")
    return _field(reply, "sync_id", "start of a session")


def upload_request(endpoint: str, sync_id: str, part: Part) -> RequestSpec:
    """`POST /v0/upload/<sync_id>` with the part's gzip bytes verbatim."""
    return RequestSpec(
        f"upload of part {part.number}",
        "POST",
        _url(endpoint, "upload", sync_id),
        headers=(
            ("Content-Type", "binary/octet-stream"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", str(part.bytes_compressed)),
        ),
        body_file=part.path,
    )


def parse_upload(reply: Reply, part: Part) -> str:
    """The `part_id` from a 200/201 answer; a 413 names the part's sizes and the fix."""
    label = f"upload of part {part.number}"
    if reply.status_code == 413:
        raise ApiError(
            f"part {part.number} was too large for the API (HTTP 413): "
            f"{format_bytes(part.bytes_uncompressed)} uncompressed, "
            f"{format_bytes(part.bytes_compressed)} gzip",
            hint="lower --part-size, e.g. --part-size 64MB",
            status_code=413,
            attempts=part.attempts,
        )
    _raise_for_status(reply, label)
    return _field(reply, "part_id", label)


def finish_request(endpoint: str, sync_id: str, error: str = "") -> RequestSpec:
    """`POST /v0/finish/<sync_id>` with `{"error": ""}`, or a non-empty error to discard it."""
    return RequestSpec(
        f"finish of session {sync_id}",
        "POST",
        _url(endpoint, "finish", sync_id),
        headers=(("Content-Type", "application/json"),),
        content=orjson.dumps({"error": error}),
    )


def parse_finish(reply: Reply, sync_id: str) -> None:
    """Accept 200/202; anything else is an error."""
    _raise_for_status(reply, f"finish of session {sync_id}")


def keep_alive_request(endpoint: str, sync_id: str) -> RequestSpec:
    """`POST /v0/keep-alive/<sync_id>`: extend the session's life."""
    return RequestSpec(
        f"keep-alive of session {sync_id}", "POST", _url(endpoint, "keep-alive", sync_id)
    )


def parse_keep_alive(reply: Reply, sync_id: str) -> None:
    """Accept 200; anything else is an error."""
    _raise_for_status(reply, f"keep-alive of session {sync_id}")


def _raise_for_status(reply: Reply, label: str) -> None:
    status = reply.status_code
    if 200 <= status <= 299:
        return
    if status in (401, 403):
        raise CredentialsError(
            f"the write key was rejected (HTTP {status})",
            hint="check BULKCTL_WRITE_KEY, --write-key-file or the config profile",
        )
    if 300 <= status <= 399:
        location = reply.headers.get("location")
        where = redact_url(location) if location else "no Location given"
        raise ApiError(
            f"{label} was redirected (HTTP {status} to {where}); redirects are not followed",
            hint="pass the final URL with --endpoint",
            status_code=status,
        )
    raise ApiError(f"{label} failed: HTTP {status}{_excerpt(reply)}", status_code=status)


def _excerpt(reply: Reply) -> str:
    text = " ".join(reply.body.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return f": {text}"


def _field(reply: Reply, name: str, label: str) -> str:
    try:
        document = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        document = None
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(
            f"{label}: the answer (HTTP {reply.status_code}) has no {name}{_excerpt(reply)}",
            status_code=reply.status_code,
        )
    return value

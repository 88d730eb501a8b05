"""Reading an API's answer: the one rule for statuses every target shares.

A target's `parse_*` functions call `raise_for_status` with its own words for a refusal of
its credentials; the rest is the same for every API: 2xx passes, 3xx is a redirect we do
not follow (named, with the redacted Location), anything else is an `ApiError` carrying the
status and an excerpt of the body.
"""

from __future__ import annotations

import orjson

from bulkctl.errors import ApiError, CredentialsError
from bulkctl.redact import redact_url
from bulkctl.send.http import Reply

EXCERPT_CHARS = 200


def raise_for_status(reply: Reply, label: str, *, refused: str, refused_hint: str) -> None:
    """Return on 2xx; else raise what the status means (`refused`: the 401/403 message)."""
    status = reply.status_code
    if 200 <= status <= 299:
        return
    if status in (401, 403):
        raise CredentialsError(f"{refused} (HTTP {status})", hint=refused_hint)
    if 300 <= status <= 399:
        location = reply.headers.get("location")
        where = redact_url(location) if location else "no Location given"
        raise ApiError(
            f"{label} was redirected (HTTP {status} to {where}); redirects are not followed",
            hint="pass the final URL with --endpoint",
            status_code=status,
        )
    raise ApiError(f"{label} failed: HTTP {status}{excerpt(reply)}", status_code=status)


def excerpt(reply: Reply) -> str:
    """ ": <the body on one line, cut at EXCERPT_CHARS>", or "" for an empty body."""
    text = " ".join(reply.body.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return f": {text}"


def string_field(reply: Reply, name: str, label: str) -> str:
    """The non-empty string `name` of a JSON object answer, or an ApiError saying it is missing."""
    try:
        document = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        document = None
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(
            f"{label}: the answer (HTTP {reply.status_code}) has no {name}{excerpt(reply)}",
            status_code=reply.status_code,
        )
    return value

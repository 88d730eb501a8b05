"""HTTP Basic auth with a write key as the user name, as both Segment APIs take it."""

from __future__ import annotations

import base64
import binascii
import hmac

from bulkctl.sandbox.server import Request, Response, json_error


def write_key_token(write_key: str | None) -> bytes | None:
    """What a good `Authorization: Basic` decodes to (`key:`), or None when any is taken."""
    return None if write_key is None else f"{write_key}:".encode()


def refuse_write_key(request: Request, token: bytes | None) -> Response | None:
    """None when the request carries the write key as the Basic user name, else a 401."""
    if token is None:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(given.strip(), validate=True)
        except binascii.Error:
            decoded = b""
        if hmac.compare_digest(decoded, token):
            return None
    response = json_error(
        401,
        "unauthorized: send the write key as the Basic auth user name with an empty password",
    )
    response.headers["WWW-Authenticate"] = 'Basic realm="bulkctl sandbox"'
    return response

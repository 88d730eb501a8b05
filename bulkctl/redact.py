"""What may be printed or stored of a URL: one rule, for one URL or every URL in a text.

A key can ride in a URL (the write key as Basic user name, `?token=`): the user info is
dropped, query values become REDACTED (their names stay, to say which was given), and the
fragment goes. Every message, log line and job-store row that holds a URL passes here.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """The URL without user info, query values or fragment: safe to print."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if pairs:
        text += "?" + "&".join(f"{key}=REDACTED" for key, _ in pairs)
    return text


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted as `redact_url` does (the rest unchanged)."""
    return _URL.sub(_redacted, text)


def _redacted(match: re.Match[str]) -> str:
    url = match.group(0)
    if "@" not in url and "?" not in url and "#" not in url:
        return url  # nothing to hide: left as written
    return redact_url(url)

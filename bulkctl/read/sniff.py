"""Which format an input is in: from --format, its name, or its first bytes.

The first bytes are always looked at, so binary and otherwise-compressed files are refused
before any record is read (`bulkctl.read.magic`).
"""

from __future__ import annotations

import orjson

from bulkctl.errors import InputError
from bulkctl.read.decoded import Decoded
from bulkctl.read.decoded import content as without_bom
from bulkctl.read.json_array import SLACK
from bulkctl.read.magic import refuse_compressed
from bulkctl.read.options import ReadOptions

_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
_TEXT_PROBE = 8 * 1024


def resolve_format(
    stream: Decoded, name: str, options: ReadOptions, *, stdin: bool
) -> tuple[str, str]:
    """Look at the first bytes (always, to refuse binary and compressed files) and decide
    the format; `stdin`: the input is standard input (for the fix a refusal suggests)."""
    by_name = _format_from_name(name) if options.format == "auto" else None
    need_line = options.format == "auto" and by_name is None
    line_max = options.max_record_bytes + SLACK if need_line else 0
    head = stream.read_head(_TEXT_PROBE, line_max)
    refuse_compressed(name, head, stdin=stdin, in_gzip=stream.compressed)
    nul = head.find(b"\0", 0, _TEXT_PROBE)
    if nul >= 0:
        hint = " (it looks like UTF-16: convert it to UTF-8)" if head[:2] in _UTF16 else ""
        raise InputError(
            f"{name}: does not look like text (NUL byte at offset {nul}){hint}; is it the "
            "right file, or compressed in a format other than gzip?"
        )
    if options.format != "auto":
        return options.format, f"from --format {options.format}"
    if by_name is not None:
        return by_name
    return _sniff(head, cut=len(head) >= line_max)


_UTF16 = (b"\xff\xfe", b"\xfe\xff")


def _format_from_name(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    base = lower[:-3] if lower.endswith(".gz") else lower
    for suffix, fmt in _SUFFIXES.items():
        if base.endswith(suffix):
            return fmt, f"from the name {lower[len(base) - len(suffix) :]}"
    return None


def _sniff(head: bytes, *, cut: bool) -> tuple[str, str]:
    """Decide from the first bytes; `cut` says the head stopped before the first line ended."""
    content = without_bom(head)
    if not content:
        return "ndjson", "from the first bytes: the input is empty"
    first = content[:1]
    line_end = content.find(b"\n")
    line = content if line_end < 0 else content[:line_end]
    if first == b"[":
        return "json", "from the first bytes: '[' starts a JSON array"
    if first == b"{":
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line_end < 0 and cut:
                return "ndjson", "from the first bytes: a very long first line starting with '{'"
            return "json", "from the first bytes: a JSON object over several lines"
        if isinstance(value, dict) and isinstance(value.get("objects"), list):
            return "json", "from the first bytes: an Objects API body"
        return "ndjson", "from the first bytes: the first line is one JSON object"
    if b"\t" in line and b"," not in line:
        return "tsv", "from the first bytes: the first line has tabs and no commas"
    return "csv", "from the first bytes: not JSON, so CSV"

"""Compressed and archive formats bulkctl does not read, told apart by their first bytes.

bulkctl reads plain text and gzip (`bulkctl.read.sources`). Anything else would otherwise be
refused as "not text" (or, with no NUL byte early on, read as a CSV of garbage), so an input
in one of these formats is refused by name, with the command that decompresses it into a
pipe, e.g. `zstd -dc data.zst | bulkctl push -`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bulkctl.errors import InputError

__all__ = ["Compressed", "compressed_format", "refuse_compressed"]


@dataclass(frozen=True, slots=True)
class Compressed:
    """A format by its magic bytes, and the commands that write its content to stdout."""

    name: str
    magic: re.Pattern[bytes]
    file_command: str  # with the file's name in {}
    pipe_command: str | None  # reading stdin; None: the tool needs a file
    archive: bool = False


_FORMATS = (
    # bzip2: "BZh", the block size, then a block's or the end-of-stream magic
    Compressed(
        "bzip2", re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)"), "bzip2 -dc {}", "bzip2 -dc"
    ),
    Compressed("zstd", re.compile(rb"\x28\xb5\x2f\xfd"), "zstd -dc {}", "zstd -dc"),
    Compressed("xz", re.compile(rb"\xfd7zXZ\x00"), "xz -dc {}", "xz -dc"),
    Compressed("lzip", re.compile(rb"LZIP\x01"), "lzip -dc {}", "lzip -dc"),
    Compressed("lz4", re.compile(rb"\x04\x22\x4d\x18"), "lz4 -dc {}", "lz4 -dc"),
    Compressed("compress (.Z)", re.compile(rb"\x1f\x9d"), "gzip -dc {}", "gzip -dc"),
    Compressed("zip", re.compile(rb"PK(?:\x03\x04|\x05\x06)"), "unzip -p {}", None, archive=True),
    Compressed("7z", re.compile(rb"7z\xbc\xaf\x27\x1c"), "7z x -so {}", None, archive=True),
    Compressed(
        "tar", re.compile(rb".{257}ustar[\x00 ]", re.DOTALL), "tar -xOf {}", "tar -xOf -", True
    ),
)


def compressed_format(head: bytes) -> Compressed | None:
    """The format whose magic bytes start `head`, if it is one bulkctl does not read."""
    for known in _FORMATS:
        if known.magic.match(head):
            return known
    return None


def refuse_compressed(name: str, head: bytes, *, stdin: bool, in_gzip: bool) -> None:
    """Raise the InputError that names the format and the pipe to use, if `head` has one.

    `head` is what bulkctl read (after gzip, when `in_gzip`); `stdin`: the input is a pipe.
    """
    known = compressed_format(head)
    if known is None:
        return
    kind = f"a {known.name} archive" if known.archive else f"{known.name}-compressed"
    raise InputError(
        f"{name}: is {kind}{' inside gzip' if in_gzip else ''}, which bulkctl does not read "
        f"(it reads plain text and gzip); {_fix(known, None if stdin else name, in_gzip)} "
        "(`bulkctl validate -` reads a pipe the same way)"
    )


def _fix(known: Compressed, path: str | None, in_gzip: bool) -> str:
    """How to give bulkctl the content in a pipe, from a file (`path`) or standard input."""
    push = "bulkctl push -"
    name = None if path is None else _shell_word(path)
    if known.pipe_command is not None:
        if name is None:
            steps = ["…", *(["gzip -dc"] if in_gzip else []), known.pipe_command]
        elif in_gzip:
            steps = [f"gzip -dc {name}", known.pipe_command]
        else:
            steps = [known.file_command.format(name)]
        where = "the pipe" if name is None else "a pipe"
        verb = "extract" if known.archive else "decompress"
        return f"{verb} it in {where}: `{' | '.join([*steps, push])}`"
    if name is not None and not in_gzip:
        return f"extract it in a pipe: `{known.file_command.format(name)} | {push}`"
    saved = ("… | gzip -dc" if name is None else f"gzip -dc {name}") if in_gzip else "…"
    extract = known.file_command.format("FILE")
    return f"{known.name} needs a file: save it (`{saved} > FILE`), then `{extract} | {push}`"


_SAFE_WORD = re.compile(r"[\w@%+=:,./-]+")


def _shell_word(text: str) -> str:
    """`text` as one shell word (quoted when it needs to be), for a command to copy."""
    if _SAFE_WORD.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"

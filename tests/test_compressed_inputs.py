"""Inputs compressed in a format bulkctl does not read are refused by name, through the CLI, with
the pipe that decompresses them (`zstd -dc file | bulkctl push -`): files, gzip layers and stdin.
The suggested pipe is run too, where the tool is installed."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import bulkctl_exe

Cli = Callable[..., Any]
LINE = b'{"id":"1","collection":"rooms","properties":{}}\n'
# What `zstd -c` and `lz4 -c` write for LINE (no library for them in the standard library).
ZSTD = b"(\xb5/\xfd\x04X\x81\x01\x00" + LINE + b"q8\x95\x85"
LZ4 = b'\x04"M\x18d@\xa70\x00\x00\x80' + LINE + b"\x00\x00\x00\x00\t\xd0u\xc0"


def zipped() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("rooms.ndjson", LINE)
    return out.getvalue()


def tarred() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("rooms.ndjson")
        info.size = len(LINE)
        archive.addfile(info, io.BytesIO(LINE))
    return out.getvalue()


# name, file suffix, bytes, what the message calls it, the command it suggests for a file
FORMATS = {
    "bzip2": (".ndjson.bz2", lambda: bz2.compress(LINE), "bzip2-compressed", "bzip2 -dc"),
    "xz": (".ndjson.xz", lambda: lzma.compress(LINE), "xz-compressed", "xz -dc"),
    "zstd": (".ndjson.zst", lambda: ZSTD, "zstd-compressed", "zstd -dc"),
    "lz4": (".ndjson.lz4", lambda: LZ4, "lz4-compressed", "lz4 -dc"),
    "zip": (".zip", zipped, "a zip archive", "unzip -p"),
    "tar": (".tar", tarred, "a tar archive", "tar -xOf"),
}


def hint_command(message: str) -> str:
    """The first command line in backticks of a message."""
    found = re.search(r"`([^`]+)`", message)
    assert found is not None, message
    return found.group(1)


@pytest.mark.parametrize("command", ["validate", "push"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_file_in_another_format_is_refused_by_name_with_the_pipe_to_use(
    cli: Cli, tmp_path: Path, fmt: str, command: str
) -> None:
    """Exit 1 before any record, one --json object, the format named, its decompress pipe."""
    suffix, make, called, tool = FORMATS[fmt]
    path = tmp_path / f"rooms{suffix}"
    path.write_bytes(make())
    args = [command, str(path), "--json", *(["--dry-run"] if command == "push" else [])]
    result = cli(args)
    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    message = summary["error"]
    assert message.startswith(f"{path}: is {called}, which bulkctl does not read"), message
    assert hint_command(message) == f"{tool} {path} | bulkctl push -"
    assert "NUL byte" not in message
    assert summary["records"] == 0


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_standard_input_in_another_format_says_what_to_put_in_the_pipe(cli: Cli, fmt: str) -> None:
    """From a pipe: the decompressor goes before bulkctl (an archive tool wants a file)."""
    _, make, called, tool = FORMATS[fmt]
    result = cli(["validate", "-"], input=make())
    assert result.exit_code == 1
    assert f"<stdin>: is {called}, which bulkctl does not read" in result.stderr
    if fmt == "zip":
        assert "zip needs a file: save it (`… > FILE`), then `unzip -p FILE | bulkctl push -`" in (
            result.stderr
        )
    else:
        pipe_tool = "tar -xOf -" if fmt == "tar" else tool
        assert f"`… | {pipe_tool} | bulkctl push -`" in result.stderr


@pytest.mark.parametrize("fmt", ["xz", "tar"])
def test_another_format_inside_gzip_is_named_too(cli: Cli, tmp_path: Path, fmt: str) -> None:
    """A .tar.gz or an xz file gzipped again: named after its gzip layer, both steps given."""
    _, make, called, _ = FORMATS[fmt]
    path = tmp_path / "rooms.gz"
    path.write_bytes(gzip.compress(make()))
    result = cli(["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: is {called} inside gzip" in result.stderr
    second = "tar -xOf -" if fmt == "tar" else "xz -dc"
    assert f"`gzip -dc {path} | {second} | bulkctl push -`" in result.stderr


def test_a_name_with_spaces_is_quoted_in_the_command(cli: Cli, tmp_path: Path) -> None:
    """The suggested command can be pasted as it is."""
    path = tmp_path / "my rooms.ndjson.xz"
    path.write_bytes(lzma.compress(LINE))
    result = cli(["validate", str(path)])
    assert f"`xz -dc '{path}' | bulkctl push -`" in result.stderr


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_the_suggested_pipe_reads_the_records(tmp_path: Path, fmt: str) -> None:
    """Run the command the message suggests (validate for push) with the real tool."""
    suffix, make, _, tool = FORMATS[fmt]
    if shutil.which(tool.split()[0]) is None:
        pytest.skip(f"{tool.split()[0]} is not installed")
    path = tmp_path / f"rooms{suffix}"
    path.write_bytes(make())
    exe = str(bulkctl_exe())
    refused = subprocess.run([exe, "validate", str(path)], capture_output=True, text=True)
    assert refused.returncode == 1
    pipe = hint_command(refused.stderr).replace("bulkctl push -", f"{exe} validate - --json")
    ran = subprocess.run(["bash", "-o", "pipefail", "-c", pipe], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["valid"] == 1

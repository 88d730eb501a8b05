"""Numbers at the edges of 64 bits, through the CLI: floats of any size are sent as floats; an
integer beyond 64 bits is refused, quoted as the input wrote it (message, --json, --rejects),
whichever path checks it (the C scanner or Python) and whether it comes as a file or a pipe."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulkctl.sandbox import start_sandbox

Cli = Callable[..., Any]

BIG_FLOATS = [
    "1.5e300",
    "1.7976931348623157e308",  # the largest double
    "-1.7976931348623157e308",
    "1e19",
    "9.3e18",  # just above 2^63
    "12345678901234567890.0",  # integral, but written as a float
    "1E+20",
]
BIG_INTEGERS = [
    "123456789012345678901234567890",
    "-99999999999999999999999",
    "18446744073709551616",  # 2^64: orjson reads it as a float
    "9223372036854775808",  # 2^63: orjson reads it as an int
]
PATHS = [pytest.param("", id="c-path"), pytest.param("1", id="python-path")]


def record_line(record_id: str, props: dict[str, str]) -> str:
    """A canonical record whose property values are written verbatim (numbers as spelled)."""
    body = ",".join(f'"{name}":{text}' for name, text in props.items())
    return f'{{"id":"{record_id}","collection":"rooms","properties":{{{body}}}}}'


def document(lines: list[str], fmt: str) -> bytes:
    if fmt == "json":
        return ("[\n" + ",\n".join(lines) + "\n]\n").encode()
    return ("\n".join(lines) + "\n").encode()


def run(
    cli: Cli, tmp_path: Path, args: list[str], data: bytes, fmt: str, via: str, no_native: str
) -> Any:
    """`bulkctl ARGS INPUT`, the input a file or standard input."""
    env = {"BULKCTL_NO_NATIVE": no_native} if no_native else None
    if via == "stdin":
        return cli([*args[:1], "-", *args[1:], "--format", fmt], input=data, env=env)
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    return cli([*args[:1], str(path), *args[1:]], env=env)


def sent_records(out: Path) -> list[dict[str, Any]]:
    records = []
    for part in sorted(out.glob("*.gz")):
        records += [json.loads(line) for line in gzip.decompress(part.read_bytes()).splitlines()]
    return records


@pytest.mark.parametrize("no_native", PATHS)
@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_floats_beyond_the_64_bit_integer_range_are_sent_as_floats(
    cli: Cli, tmp_path: Path, fmt: str, via: str, no_native: str
) -> None:
    """1.5e300, the largest double, 1e19…: valid, and sent with the same value."""
    lines = [record_line(f"r{n}", {"x": text, "n": "1"}) for n, text in enumerate(BIG_FLOATS)]
    out = tmp_path / "parts"
    args = ["push", "--dry-run", "--out", str(out), "--json"]
    result = run(cli, tmp_path, args, document(lines, fmt), fmt, via, no_native)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["valid"], summary["rejected"]) == (len(BIG_FLOATS), 0)
    sent = {r["id"]: r["properties"]["x"] for r in sent_records(out)}
    assert sent == {f"r{n}": float(text) for n, text in enumerate(BIG_FLOATS)}
    assert all(type(value) is float for value in sent.values())


@pytest.mark.parametrize("no_native", PATHS)
@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_an_integer_beyond_64_bits_is_refused_in_its_own_spelling(
    cli: Cli, tmp_path: Path, fmt: str, via: str, no_native: str
) -> None:
    """The message, the --json errors and the --rejects record quote the digits as written."""
    lines = [record_line("ok", {"n": "1"})]
    lines += [record_line(f"r{n}", {"big": text}) for n, text in enumerate(BIG_INTEGERS)]
    rejects = tmp_path / "rejects.ndjson"
    args = ["validate", "--json", "--rejects", str(rejects)]
    result = run(cli, tmp_path, args, document(lines, fmt), fmt, via, no_native)
    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["valid"], summary["rejected"]) == (1, len(BIG_INTEGERS))
    written = rejects.read_text(encoding="utf-8").splitlines()
    assert len(written) == len(BIG_INTEGERS)
    for text, error, line in zip(BIG_INTEGERS, summary["errors"], written, strict=True):
        [problem] = error["errors"]
        assert problem["field"] == "properties.big"
        assert problem["rule"] == "value.int_range"
        assert f"integer {text} does not fit in 64 bits" in problem["message"]
        assert "e+" not in problem["message"]
        assert f'"big":{text}}}' in line  # the rejects file writes the number as it came
        assert json.loads(line)["record"]["properties"]["big"] == int(text)
        assert error["record"]["properties"]["big"] == int(text)
        assert f"properties.big: integer {text} does not fit" in result.stderr


def test_an_integer_id_beyond_64_bits_keeps_its_digits(cli: Cli, tmp_path: Path) -> None:
    """An integer id becomes its string, all of its digits (not 1.2345678901234568e+29)."""
    path = tmp_path / "ids.ndjson"
    path.write_text('{"id":123456789012345678901234567890,"collection":"rooms","properties":{}}\n')
    out = tmp_path / "parts"
    result = cli(["push", str(path), "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in sent_records(out)] == ["123456789012345678901234567890"]


def test_the_sandbox_takes_big_floats_and_quotes_a_big_integer(tmp_path: Path) -> None:
    """The emulator applies the same rules to what it receives: floats pass, an integer beyond
    64 bits is a 400 that quotes it as written."""
    floats = document([record_line("f", {"x": "1.5e300", "y": "1e19"})], "ndjson")
    integer = document([record_line("i", {"x": "123456789012345678901234567890"})], "ndjson")
    headers = {"Content-Encoding": "gzip", "Content-Type": "binary/octet-stream"}
    sandbox = start_sandbox(tmp_path / "w.sqlite3")
    try:
        with httpx.Client(base_url=sandbox.url, timeout=30) as client:
            sync_id = client.post("/v0/start").json()["sync_id"]
            took = client.post(
                f"/v0/upload/{sync_id}", content=gzip.compress(floats), headers=headers
            )
            refused = client.post(
                f"/v0/upload/{sync_id}", content=gzip.compress(integer), headers=headers
            )
    finally:
        sandbox.stop()
    assert took.status_code == 201, took.text
    assert refused.status_code == 400
    assert "integer 123456789012345678901234567890 does not fit" in refused.json()["error"]

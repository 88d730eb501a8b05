"""A plain NDJSON file is cut where `ndjson_tasks` cuts it, and the workers read its chunks.

`FileTasks` finds each chunk's end with a small read and hands out places in the file
(`FileSpan`); wherever that read cannot settle it, the chunk is cut from its bytes. These
tests pin that the tasks (bytes, restarts, error items) are exactly those of `ndjson_tasks`,
that a file changed under the run fails it rather than giving other chunks, and that the CLI
reports the same from a file as from the same bytes on standard input.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bulkctl.check.rules import SEGMENT_RULES
from bulkctl.errors import InputError
from bulkctl.fast.dispatch import process
from bulkctl.fast.state import WorkContext
from bulkctl.read import chunks
from bulkctl.read.chunks import FileTasks, ItemsTask, LinesTask, ndjson_tasks
from bulkctl.read.json_array import SLACK
from bulkctl.read.sources import ReadOptions, open_sources
from bulkctl.records import ShapeOptions
from bulkctl.run import inputs as reading
from bulkctl.targets.segment_bulk import SegmentBulkTarget

LIMIT = 40
CAP = LIMIT + SLACK

Task = LinesTask | ItemsTask


def file_tasks(
    path: Path, chunk: int, probe: int = chunks.PROBE, limit: int = LIMIT
) -> tuple[list[Task], FileTasks]:
    """The tasks FileTasks makes of a real file, read with os.pread as the CLI reads it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        cut = FileTasks(
            lambda size, offset: os.pread(fd, size, offset),
            str(path),
            info.st_dev,
            info.st_ino,
            "s",
            limit,
            chunk,
            probe,
        )
        return list(cut), cut
    finally:
        os.close(fd)


def plain(tasks: list[Task]) -> list[tuple[Any, ...]]:
    """Tasks as comparable values, a span replaced by the bytes a worker reads from it."""
    out: list[tuple[Any, ...]] = []
    for task in tasks:
        if isinstance(task, LinesTask):
            out.append(("lines", task.content(), task.restart, task.relative))
        else:
            items = [(item.line, item.error, item.text, size) for item, size in task.items]
            out.append(("items", items, task.restart, task.relative))
    return out


def reference(data: bytes, chunk: int, limit: int = LIMIT) -> list[Task]:
    return list(ndjson_tasks(io.BytesIO(data).read, "s", limit, chunk))


def lines_around(cap: int) -> st.SearchStrategy[bytes]:
    """Lines of any bytes but a newline, empty ones, and lines just under, at and over `cap`."""
    return st.one_of(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
        st.integers(min_value=0, max_value=3 * cap).map(lambda n: b"x" * n),
        st.integers(min_value=-2, max_value=2).map(lambda d: b"y" * max(0, cap + d)),
        st.just(b""),
    )


@st.composite
def small_cap_inputs(draw: st.DrawFn) -> tuple[bytes, int]:
    """NDJSON-ish bytes and a limit as small as the lines, so lines often pass the cap."""
    limit = draw(st.integers(min_value=1, max_value=40))
    lines = draw(st.lists(lines_around(limit), max_size=40))
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"])), limit


def check_same_tasks(path: Path, data: bytes, chunk: int, probe: int, limit: int) -> None:
    path.write_bytes(data)
    tasks, cut = file_tasks(path, chunk, probe, limit)
    assert plain(tasks) == plain(reference(data, chunk, limit))
    assert cut.offset == len(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    given_input=small_cap_inputs(),
    chunk=st.integers(min_value=1, max_value=200),
    probe=st.one_of(
        st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=300)
    ),
)
@example(  # a too-long line that starts before the window and ends in it
    given_input=(b"a" * 29 + b"\n" + b"x" * 22 + b"\n" + b"b\n" * 5, 10), chunk=50, probe=5
)
def test_file_tasks_are_exactly_ndjson_tasks(
    tmp_path_factory: pytest.TempPathFactory,
    given_input: tuple[bytes, int],
    chunk: int,
    probe: int,
) -> None:
    """Same chunk bytes, restarts and too-long items as ndjson_tasks, whatever the probe size.

    The slack over the limit is taken away here, so that lines pass the cap within a few
    bytes and every case of the probe (line in the window or not, short or too long) comes up.
    """
    data, limit = given_input
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "SLACK", 0)
        check_same_tasks(tmp_path_factory.mktemp("f") / "in.ndjson", data, chunk, probe, limit)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(lines_around(CAP), max_size=8),
    trailing=st.booleans(),
    chunk=st.integers(min_value=1, max_value=3 * CAP),
    probe=st.sampled_from([16, 4096, chunks.PROBE, 2 * CAP]),
)
def test_file_tasks_are_exactly_ndjson_tasks_at_the_real_cap(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    trailing: bool,
    chunk: int,
    probe: int,
) -> None:
    """With the real slack (lines of 64 kB and more), the tasks are ndjson_tasks' too."""
    data = b"\n".join(lines) + (b"\n" if trailing else b"")
    check_same_tasks(tmp_path_factory.mktemp("f") / "in.ndjson", data, chunk, probe, LIMIT)


def test_short_lines_go_out_as_spans_but_the_last_chunk(tmp_path: Path) -> None:
    """The main process carries no chunk's bytes but the last one's (where the input ends)."""
    data = b"".join(b'{"id":"%d"}\n' % n for n in range(3000))
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    tasks, _ = file_tasks(path, 1000)
    spans = [t.span for t in tasks if isinstance(t, LinesTask) and t.span is not None]
    assert len(spans) == len(tasks) - 1 > 20
    assert all(isinstance(t, LinesTask) and t.data == b"" for t in tasks[:-1])
    assert plain(tasks) == plain(reference(data, 1000))


def test_a_long_line_is_cut_from_its_bytes_and_the_spans_go_on_after_it(tmp_path: Path) -> None:
    """A line over the cap becomes one error item in place; the chunks after it are spans."""
    short = b"".join(b'{"id":"%d"}\n' % n for n in range(400))
    data = short + b'"' + b"z" * CAP + b'"\n' + short
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    tasks, _ = file_tasks(path, 500)
    kinds = ["items" if isinstance(t, ItemsTask) else bool(t.span) for t in tasks]
    at = kinds.index("items")
    assert kinds.count("items") == 1 and all(kinds[at + 1 : -1])
    assert plain(tasks) == plain(reference(data, 500))


def test_a_span_of_a_changed_file_is_an_input_error(tmp_path: Path) -> None:
    """Truncated, replaced or removed after cutting: the chunk's read fails, naming the file."""
    data = b"".join(b'{"id":"%d"}\n' % n for n in range(300))
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    tasks, _ = file_tasks(path, 500)
    task = tasks[-2]
    assert isinstance(task, LinesTask) and task.span is not None
    assert task.content() == data[task.span.offset : task.span.offset + task.span.length]
    path.write_bytes(data[: task.span.offset + 3])  # truncated in place: same inode
    with pytest.raises(InputError, match=r"^s: the file changed while it was read"):
        task.content()
    other = tmp_path / "other.ndjson"
    other.write_bytes(data)
    other.replace(path)  # the same bytes, but another file
    with pytest.raises(InputError, match="changed while it was read"):
        task.content()
    path.unlink()
    with pytest.raises(InputError, match="changed while it was read"):
        task.content()


def test_a_worker_reports_a_changed_file_as_the_runs_input_error(tmp_path: Path) -> None:
    """process() turns a span that can no longer be read into the result's error, not a crash."""
    data = b"".join(b'{"id":"%d","collection":"c","properties":{}}\n' % n for n in range(300))
    path = tmp_path / "in.ndjson"
    path.write_bytes(data)
    tasks, _ = file_tasks(path, 2000)
    context = WorkContext(SegmentBulkTarget(), SEGMENT_RULES, ShapeOptions(), True, False)
    first = process(context, tasks[0])
    assert (first.error, first.valid) == (None, first.lines)
    path.write_bytes(b"")
    result = process(context, tasks[1])
    assert result.error is not None and "changed while it was read" in result.error
    assert result.records == 0


def test_a_plain_files_tasks_are_spans_and_progress_reaches_its_size(tmp_path: Path) -> None:
    """Source.tasks hands out places in a plain file; bytes_read counts what was handed out."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(b'{"id": "1"}\n' * 300_000)
    (source,) = open_sources([str(path)], ReadOptions())
    tasks = list(source.tasks())
    assert all(isinstance(t, LinesTask) and t.span is not None for t in tasks[:-1])
    assert source.bytes_read() == source.size == path.stat().st_size


def test_standard_input_still_carries_its_bytes() -> None:
    """A pipe cannot be read again elsewhere: its chunks carry their bytes."""
    data = b'{"id": "1"}\n' * 300_000
    (source,) = open_sources(["-"], ReadOptions(), stdin=io.BytesIO(data))
    tasks = list(source.tasks())
    assert all(isinstance(t, LinesTask) and t.span is None for t in tasks)
    assert b"".join(t.data for t in tasks if isinstance(t, LinesTask)) == data


def odd_input() -> bytes:
    """A BOM, blank and broken lines, lines over the limit, invalid records, no last newline."""
    lines = [b"\xef\xbb\xbf" + orjson.dumps({"id": "0", "collection": "rooms", "properties": {}})]
    for n in range(1, 3000):
        if n % 1000 == 7:
            lines.append(b'{"id": "' + b"w" * 470_000 + b'"}')  # over the 400 kB limit + slack
        elif n % 300 == 5:
            lines.append(b"")
        elif n % 211 == 3:
            lines.append(b'{"id": "broken", ')
        else:
            props = {"n": n} if n % 97 else {"bad": [n]}
            lines.append(
                orjson.dumps({"id": str(n % 900), "collection": "rooms", "properties": props})
            )
    return b"\n".join(lines)


@pytest.mark.parametrize("workers", [1, 2])
def test_validate_of_a_file_reports_what_the_same_bytes_on_stdin_do(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Counts, errors, hints and rejects (line numbers) match stdin's, with and without workers."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 8_000)
    monkeypatch.setattr(reading, "POOL_MIN_BYTES", 0)
    path = tmp_path / "in.ndjson"
    path.write_bytes(odd_input())
    seen = []
    for name, given_input in ((str(path), None), ("-", path.read_bytes())):
        rejects = tmp_path / f"rejects-{workers}-{name != '-'}.ndjson"
        args = ["validate", name, "--json", "--rejects", rejects, "--workers", str(workers)]
        args += ["--on-invalid", "skip"]
        result = cli(args, input=given_input)
        summary = json.loads(result.stdout.replace(json.dumps(str(path))[1:-1], "<stdin>"))
        summary.pop("elapsed_s", None)
        seen.append((summary, rejects.read_text().replace(str(path), "<stdin>")))
    assert seen[0] == seen[1]
    assert seen[0][0]["rejected"] > 10 and "longer than" in seen[0][1]

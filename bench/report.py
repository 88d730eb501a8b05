"""Rows of the benchmark table, the table itself, and the issue targets checked against them.

MB are 10^6 bytes (as bulkctl's sizes). MB/s is input bytes ÷ wall seconds, whatever the
command does with them. `ratio` compares wall times: on a baseline row it is bulkctl's time ÷
that baseline's (below 1 means bulkctl is faster); on a start-up row it is ÷ `python -c pass`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MB = 1e6
NOTE_CHARS = 90  # the table's note column; the JSON keeps the whole note


@dataclass(slots=True)
class Row:
    """One measured command."""

    group: str
    case: str
    command: str
    baseline: bool
    input_bytes: int | None = None
    records: int | None = None
    wall_s: float = 0.0
    peak_rss: int = 0  # bytes, summed over the command's process tree
    procs: int = 0  # processes in the tree at the peak
    sent_bytes: int | None = None  # body bytes the sink received
    ratio: float | None = None
    ok: bool = True
    note: str = ""
    stdout: str | None = None

    def mb_s(self) -> float | None:
        if not self.input_bytes or not self.wall_s or not self.ok:
            return None
        return self.input_bytes / MB / self.wall_s

    def records_s(self) -> float | None:
        if not self.records or not self.wall_s or not self.ok:
            return None
        return self.records / self.wall_s

    def mb_s_text(self) -> str:
        value = self.mb_s()
        return "-" if value is None else f"{value:.1f}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mb_s"] = self.mb_s()
        data["records_s"] = self.records_s()
        if data["stdout"] is not None and len(data["stdout"]) > 2000:
            data["stdout"] = data["stdout"][:2000] + "…"
        return data


COLUMNS = (
    ("group", "<"), ("case", "<"), ("input MB", ">"), ("records", ">"), ("wall s", ">"),
    ("MB/s", ">"), ("rec/s", ">"), ("peak RSS MB", ">"), ("procs", ">"), ("sent MB", ">"),
    ("ratio", ">"), ("note", "<"),
)  # fmt: skip


def _cells(row: Row) -> list[str]:
    def opt(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    wall = f"{row.wall_s:.3f}" if row.group == "startup" else f"{row.wall_s:.2f}"
    return [
        row.group,
        row.case + (" [baseline]" if row.baseline else ""),
        opt(row.input_bytes / MB if row.input_bytes else None, ",.1f"),
        opt(row.records, ",d") if row.records else "-",
        wall if row.ok or row.wall_s else "-",
        row.mb_s_text(),
        opt(row.records_s(), ",.0f"),
        f"{row.peak_rss / MB:.1f}" if row.peak_rss else "-",
        str(row.procs) if row.procs else "-",
        opt(row.sent_bytes / MB if row.sent_bytes else None, ",.1f"),
        opt(row.ratio, ".2f"),
        row.note if len(row.note) <= NOTE_CHARS else row.note[: NOTE_CHARS - 1] + "…",
    ]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def print_table(rows: list[Row], checks: list[dict[str, Any]]) -> None:
    """The table (a Markdown pipe table, so it pastes into a note as is) and the targets."""
    cells = [[_escape(c) for c in _cells(row)] for row in rows]
    widths = [len(name) for name, _ in COLUMNS]
    for line in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, line, strict=True)]

    def render(values: list[str]) -> str:
        parts = [
            f"{v:{align}{w}}" for v, (_, align), w in zip(values, COLUMNS, widths, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    print(render([name for name, _ in COLUMNS]))
    print("|" + "|".join(("-" * (w + 1) + ":") if a == ">" else "-" * (w + 2)
                         for (_, a), w in zip(COLUMNS, widths, strict=True)) + "|")  # fmt: skip
    for line in cells:
        print(render(line))
    if checks:
        print("\ntargets (issues 2 and 7):")
        for check in checks:
            print(
                f"  {'PASS' if check['pass'] else 'MISS'}  {check['target']}: {check['measured']}"
            )


def _find(rows: list[Row], group: str, case: str) -> Row | None:
    for row in rows:
        if row.group == group and row.case == case and row.ok:
            return row
    return None


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    """Each target of the issues that this run measured, with its figure and pass/miss."""
    checks: list[dict[str, Any]] = []

    def add(target: str, measured: str, passed: bool) -> None:
        checks.append({"target": target, "measured": measured, "pass": passed})

    push = _find(rows, "push", "bulkctl push (defaults)")
    gzip6 = _find(rows, "push", "gzip -6 | curl")
    if push and gzip6:
        speedup = gzip6.wall_s / push.wall_s
        add("push ≥ 3x faster than gzip -6 | curl", f"{speedup:.2f}x", speedup >= 3)
    pigz6 = _find(rows, "push", "pigz -6 | curl")
    if push and pigz6:
        speedup = pigz6.wall_s / push.wall_s
        add("push faster than pigz -6 | curl", f"{speedup:.2f}x", speedup > 1)
    validate = _find(rows, "validate", "bulkctl validate ndjson")
    if validate and validate.mb_s():
        speed = validate.mb_s() or 0.0
        add("validate ≥ 150 MB/s", f"{speed:.1f} MB/s", speed >= 150)
    csv_push = _find(rows, "csv", "bulkctl push csv (infer on)")
    if csv_push and csv_push.mb_s():
        speed = csv_push.mb_s() or 0.0
        add("CSV push ≥ 40 MB/s", f"{speed:.1f} MB/s", speed >= 40)
    for late in ("", " +2 ms"):
        objects = _find(rows, "objects", f"bulkctl push segment-objects{late}")
        posts = _find(rows, "objects", f"httpx POSTs of 10, one client{late}")
        if objects and posts:
            speed = posts.wall_s / objects.wall_s
            target = f"segment-objects push{late} ≥ 0.8x sequential httpx POSTs"
            add(target, f"{speed:.2f}x", speed >= 0.8)
    for row in rows:
        if row.ok and not row.baseline and row.group != "startup" and row.peak_rss:
            limit = 150 if row.case.startswith("bulkctl validate") else 200
            peak = row.peak_rss / MB
            add(f"{row.case}: peak RSS < {limit} MB", f"{peak:.1f} MB", peak < limit)
        if row.ok and row.group == "startup" and not row.baseline:
            add(f"{row.case} < 0.25 s", f"{row.wall_s:.3f} s", row.wall_s < 0.25)
    return checks

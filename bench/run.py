"""The bulkctl benchmark: one command, one table, baselines measured in the same run.

    python bench/run.py [--size 256MB] [--quick] [--only validate|push|csv|objects|startup]

Generates (or reuses) deterministic data under bench/data/, starts the local sink in its own
process, measures each command's wall time and the peak RSS of its process tree, prints one
table and the issue targets, and writes everything as JSON to bench/out/results-<time>.json.
See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gen
from measure import best_of, run_measured
from report import Row, print_table, targets
from sink import Sink

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
GROUPS = ("validate", "push", "csv", "objects", "startup")
OBJECT_RECORDS = 100_000  # the objects group: records sent as /v1/set requests of 10
OBJECT_DELAY_MS = 2  # the objects group's second round: each answer this much later
WRITE_KEY = "bench-write-key"  # the sink accepts anything; never a real key
ORJSON_LOOP = (
    "import sys, orjson\n"
    "n = 0\n"
    "for line in open(sys.argv[1], 'rb'):\n"
    "    orjson.loads(line)\n"
    "    n += 1\n"
    "print(n)\n"
)


class Bench:
    """One benchmark run: where logs go, which bulkctl, the environment it runs in."""

    def __init__(self, size: int, seed: int, stamp: str) -> None:
        self.size = size
        self.seed = seed
        self.logs = OUT / f"logs-{stamp}"
        self.bulkctl = find_bulkctl()
        self.env = bench_env()
        self.timeout = 300 + size / 1e6 * 1.5  # generous: the naive script at 2 GB
        self.rows: list[Row] = []

    def log(self, name: str) -> Path:
        return self.logs / name.replace(" ", "_").replace("|", "").replace("/", "_")

    def measure(
        self, group: str, case: str, argv: list[str], data: gen.DataFile | None, baseline: bool
    ) -> Row:
        """Run one command and turn it into a row (a failed command is a row that says so)."""
        measured = run_measured(argv, self.log(f"{group}-{case}"), self.env, self.timeout)
        row = Row(
            group=group,
            case=case,
            command=shlex.join(argv),
            input_bytes=data.bytes if data else None,
            records=data.records if data else None,
            wall_s=measured.wall_s,
            peak_rss=measured.peak_rss,
            procs=measured.peak_procs,
            baseline=baseline,
        )
        if measured.returncode != 0:
            row.ok = False
            row.note = f"FAILED exit {measured.returncode}: {measured.stderr_tail()}"
        else:
            row.stdout = measured.stdout.read_text(encoding="utf-8", errors="replace")
        self.rows.append(row)
        print(f"  {group:8} {case:34} {row.wall_s:8.2f} s  {row.mb_s_text():>8} MB/s", flush=True)
        return row


def push_row(
    bench: Bench,
    sink: Sink,
    group: str,
    case: str,
    argv: list[str],
    data: gen.DataFile,
    baseline: bool = True,
) -> Row:
    """Measure a command that sends `data` to the sink; note what the sink received."""
    sink.stats(reset=True)
    row = bench.measure(group, case, argv, data, baseline)
    got = sink.stats(reset=True)
    row.sent_bytes = got.get("body_bytes", 0)
    if row.ok and not row.sent_bytes:
        row.ok, row.note = False, "the sink received no body bytes"
    speaks_api = any("--endpoint" in arg for arg in argv)
    if row.ok and speaks_api and (got.get("uploads", 0) < 1 or got.get("finishes", 0) != 1):
        row.ok, row.note = False, f"sink saw {got} (expected uploads and one finish)"
    return row


def find_bulkctl() -> str:
    """The `bulkctl` beside this Python (the project venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "bulkctl"
    if beside.exists():
        return str(beside)
    found = shutil.which("bulkctl")
    if found is None:
        raise SystemExit("bench: no bulkctl beside this Python or on PATH; install the project")
    return found


def bench_env() -> dict[str, str]:
    """The caller's environment with bulkctl's own state redirected under bench/out/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKCTL_")}
    # An installed bulkctl runs from byte-compiled modules (pip compiles them); a sandbox that
    # sets PYTHONDONTWRITEBYTECODE would have every start compile them again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["BULKCTL_WRITE_KEY"] = WRITE_KEY
    env["BULKCTL_HOME"] = str(OUT / "home")  # the job store of bench pushes lives here
    env["BULKCTL_CONFIG"] = str(OUT / "no-config.toml")  # no user profile applies
    if os.environ.get("BULKCTL_NO_NATIVE"):  # measure the Python path (bench/README.md)
        env["BULKCTL_NO_NATIVE"] = os.environ["BULKCTL_NO_NATIVE"]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def warm(data: gen.DataFile) -> None:
    """Read the file once so every row finds it in the page cache alike."""
    with data.path.open("rb") as handle:
        while handle.read(8 << 20):
            pass


def ensure_pigz() -> str | None:
    """pigz's path, installing it with apt-get when missing; None (with a note) if that fails."""
    found = shutil.which("pigz")
    if found or shutil.which("apt-get") is None:
        return found
    print("bench: pigz is missing; trying `apt-get install -y pigz`", flush=True)
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "pigz"], capture_output=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return shutil.which("pigz")


def curl_row(
    bench: Bench, sink: Sink, group: str, tool: str, level: int, data: gen.DataFile
) -> Row:
    """`TOOL -LEVEL -c FILE | curl --data-binary @- SINK/` under bash, failing if either fails."""
    script = (
        f"set -o pipefail; {shlex.quote(tool)} -{level} -c {shlex.quote(str(data.path))} | "
        f"curl -sS --fail -o /dev/null --data-binary @- {shlex.quote(sink.url + '/')}"
    )
    case = f"{Path(tool).name} -{level} | curl"
    row = push_row(bench, sink, group, case, ["bash", "-c", script], data)
    row.records = None  # bytes only: no record is parsed, so records/s does not apply
    return row


def summary_records(row: Row) -> int | None:
    """The record count bulkctl's `--json` summary reports, if it printed one."""
    try:
        document = json.loads(row.stdout or "")
    except ValueError:
        return None
    value = document.get("records") if isinstance(document, dict) else None
    return value if isinstance(value, int) else None


def check_bulkctl(row: Row, expected: int) -> None:
    """Flag a bulkctl row whose summary does not account for every generated record."""
    if not row.ok:
        return
    counted = summary_records(row)
    if counted != expected:
        row.ok = False
        row.note = f"summary says {counted} records, expected {expected}"


def set_ratios(rows: list[Row], subject: Row) -> None:
    """On each baseline row: subject's wall time ÷ that baseline's (< 1: bulkctl is faster)."""
    for row in rows:
        if row.baseline and row.ok and subject.ok and row.wall_s > 0:
            row.ratio = subject.wall_s / row.wall_s


def run_validate(bench: Bench) -> None:
    ndjson = gen.ensure_ndjson(bench.size, bench.seed)
    array = gen.ensure_json_array(ndjson)
    warm(ndjson)
    argv = [bench.bulkctl, "validate", str(ndjson.path), "--json"]
    main = bench.measure("validate", "bulkctl validate ndjson", argv, ndjson, baseline=False)
    check_bulkctl(main, ndjson.records)
    argv = [sys.executable, "-c", ORJSON_LOOP, str(ndjson.path)]
    loop = bench.measure("validate", "python orjson.loads per line", argv, ndjson, baseline=True)
    set_ratios([loop], main)
    warm(array)
    argv = [bench.bulkctl, "validate", str(array.path), "--json"]
    whole = bench.measure("validate", "bulkctl validate json array", argv, array, baseline=False)
    check_bulkctl(whole, array.records)


def run_push(bench: Bench, sink: Sink, pigz: str | None) -> None:
    data = gen.ensure_ndjson(bench.size, bench.seed)
    warm(data)
    argv = [bench.bulkctl, "push", str(data.path), "--endpoint", sink.url, "--json"]
    main = push_row(bench, sink, "push", "bulkctl push (defaults)", argv, data, baseline=False)
    check_bulkctl(main, data.records)
    # The same records from standard input, and as one JSON array: memory must stay flat.
    script = (
        f"set -o pipefail; cat {shlex.quote(str(data.path))} | "
        f"{shlex.quote(bench.bulkctl)} push - --endpoint {shlex.quote(sink.url)} --json"
    )
    piped = push_row(
        bench, sink, "push", "bulkctl push stdin", ["bash", "-c", script], data, baseline=False
    )
    check_bulkctl(piped, data.records)
    array = gen.ensure_json_array(data)
    warm(array)
    argv = [bench.bulkctl, "push", str(array.path), "--endpoint", sink.url, "--json"]
    whole = push_row(bench, sink, "push", "bulkctl push json array", argv, array, baseline=False)
    check_bulkctl(whole, array.records)
    warm(data)
    baselines = [curl_row(bench, sink, "push", "gzip", level, data) for level in (6, 1)]
    baselines += pigz_rows(bench, sink, pigz, "push", data, levels=(6, 1))
    argv = [sys.executable, str(HERE / "naive_push.py"), str(data.path), "--endpoint", sink.url]
    baselines.append(push_row(bench, sink, "push", "naive python (json+gzip+httpx)", argv, data))
    set_ratios(baselines, main)


def pigz_rows(
    bench: Bench,
    sink: Sink,
    pigz: str | None,
    group: str,
    data: gen.DataFile,
    levels: tuple[int, ...],
) -> list[Row]:
    """`pigz -N | curl` rows, or one row saying why pigz could not be measured."""
    if pigz is None:
        row = Row(group=group, case="pigz -6 | curl", command="", baseline=True, ok=False)
        row.note = "SKIPPED: pigz not installed and `apt-get install -y pigz` failed"
        bench.rows.append(row)
        return [row]
    return [curl_row(bench, sink, group, pigz, level, data) for level in levels]


def run_csv(bench: Bench, sink: Sink, pigz: str | None) -> None:
    data = gen.ensure_csv(bench.size, bench.seed)
    warm(data)
    flags = ["--collection", gen.CSV_COLLECTION, "--json"]
    argv = [bench.bulkctl, "validate", str(data.path), *flags]
    check = bench.measure("csv", "bulkctl validate csv", argv, data, baseline=False)
    check_bulkctl(check, data.records)
    argv = [bench.bulkctl, "push", str(data.path), "--endpoint", sink.url, *flags]
    main = push_row(bench, sink, "csv", "bulkctl push csv (infer on)", argv, data, baseline=False)
    check_bulkctl(main, data.records)
    baselines = [curl_row(bench, sink, "csv", "gzip", 6, data)]
    baselines += pigz_rows(bench, sink, pigz, "csv", data, levels=(6,))
    set_ratios(baselines, main)


def objects_row(
    bench: Bench, sink: Sink, case: str, argv: list[str], data: gen.DataFile, baseline: bool
) -> Row:
    """Measure a command that sends `data` to the sink's `/v1/set`; note requests/s."""
    sink.stats(reset=True)
    row = bench.measure("objects", case, argv, data, baseline)
    got = sink.stats(reset=True)
    row.sent_bytes = got.get("body_bytes", 0)
    sets = got.get("sets", 0)
    if row.ok and (sets < data.records / 10 or sets != got.get("requests")):
        row.ok, row.note = False, f"sink saw {got} (expected only /v1/set requests)"
    if row.ok:
        row.note = f"{sets:,} requests, {sets / row.wall_s:,.0f} req/s"
    return row


def run_objects(bench: Bench, sink: Sink) -> None:
    """segment-objects against the sequential httpx baseline (issue 14: ≥ 0.8x its speed),
    answered at once and then OBJECT_DELAY_MS late (a remote API is never 0 ms away)."""
    data = gen.ensure_record_count(OBJECT_RECORDS, bench.seed)
    warm(data)
    for delay in (0, OBJECT_DELAY_MS):
        endpoint = sink.url if not delay else f"{sink.url}/delay/{delay}"
        late = f" +{delay} ms" if delay else ""
        base = [bench.bulkctl, "push", str(data.path), "--target", "segment-objects"]
        argv = [*base, "--endpoint", endpoint, "--json"]
        case = f"bulkctl push segment-objects{late}"
        main = objects_row(bench, sink, case, argv, data, baseline=False)
        check_bulkctl(main, data.records)
        if not delay:
            argv = [*argv, "--concurrency", "1"]
            single = objects_row(bench, sink, f"{case} -c 1", argv, data, False)
            check_bulkctl(single, data.records)
        argv = [sys.executable, str(HERE / "objects_baseline.py"), str(data.path)]
        argv += ["--endpoint", endpoint]
        case = f"httpx POSTs of 10, one client{late}"
        baseline = objects_row(bench, sink, case, argv, data, True)
        set_ratios([baseline], main)


def run_startup(bench: Bench) -> None:
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"], True),
        ("bulkctl --version", [bench.bulkctl, "--version"], False),
        ("bulkctl --help", [bench.bulkctl, "--help"], False),
    ]
    rows: list[Row] = []
    for case, argv, baseline in cases:
        wall, peak, code = best_of(argv, 5, bench.log(f"startup-{case}"), bench.env)
        row = Row(group="startup", case=case, command=shlex.join(argv), wall_s=wall,
                  peak_rss=peak, baseline=baseline, note="best of 5")  # fmt: skip
        if code != 0:
            row.ok, row.note = False, f"FAILED exit {code}"
        rows.append(row)
        bench.rows.append(row)
        print(f"  startup  {case:34} {wall:8.3f} s", flush=True)
    for row in rows[1:]:
        if rows[0].ok and row.ok:
            row.ratio = row.wall_s / rows[0].wall_s
            row.note = "best of 5; ratio = ÷ python -c pass"


def prepare(size: int, seed: int, groups: list[str]) -> None:
    """Generate (or find) every file the chosen groups need before anything is timed."""
    print("data (generated once, then reused):", flush=True)
    made: list[gen.DataFile] = []
    if {"validate", "push"} & set(groups):
        ndjson = gen.ensure_ndjson(size, seed)
        made.append(ndjson)
        made.append(gen.ensure_json_array(ndjson))
    if "csv" in groups:
        made.append(gen.ensure_csv(size, seed))
    if "objects" in groups:
        made.append(gen.ensure_record_count(OBJECT_RECORDS, seed))
    for data in made:
        print(f"  {data.path.name}: {data.bytes:,} bytes, {data.records:,} records", flush=True)


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def tool_versions(bench: Bench) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if done.stdout or done.stderr
            else ""
        )

    return {
        "bulkctl": first_line([bench.bulkctl, "--version"]),
        "git": first_line(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"]),
        "git_changed_under_bulkctl": first_line(
            [
                "bash",
                "-c",
                f"git -C {shlex.quote(str(HERE.parent))} status --porcelain -- bulkctl | wc -l",
            ]
        ),
        "checks": first_line(
            [sys.executable, "-c", "from bulkctl.native import describe; print(describe())"]
        ),
        "gzip": first_line(["gzip", "--version"]),
        "curl": first_line(["curl", "--version"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bulkctl benchmark (see bench/README.md)")
    parser.add_argument("--size", help="NDJSON/CSV size, e.g. 256MB (default) or 2GB; 10^6 a MB")
    parser.add_argument("--quick", action="store_true", help="a 32 MB smoke run")
    parser.add_argument("--only", choices=GROUPS, action="append", help="repeatable")
    parser.add_argument("--seed", type=int, default=gen.DEFAULT_SEED)
    args = parser.parse_args(argv)
    size = gen.parse_size(args.size or ("32MB" if args.quick else "256MB"))
    groups = args.only or list(GROUPS)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    bench = Bench(size, args.seed, stamp)
    info = machine()
    print(f"bench: {size / 1e6:,.0f} MB, seed {args.seed}, nproc {info['nproc']}, "
          f"load {info['loadavg_at_start']}, "
          f"{bench.bulkctl}; logs in {bench.logs}", flush=True)  # fmt: skip
    versions = tool_versions(bench)
    print(f"bulkctl checks records: {versions['checks']}", flush=True)
    started = time.monotonic()
    prepare(size, args.seed, groups)
    if "validate" in groups:
        run_validate(bench)
    if "push" in groups or "csv" in groups or "objects" in groups:
        pigz = ensure_pigz() if "push" in groups or "csv" in groups else None
        with Sink.start() as sink:
            if "push" in groups:
                run_push(bench, sink, pigz)
            if "csv" in groups:
                run_csv(bench, sink, pigz)
            if "objects" in groups:
                run_objects(bench, sink)
    if "startup" in groups:
        run_startup(bench)
    checks = targets(bench.rows)
    print()
    print_table(bench.rows, checks)
    OUT.mkdir(parents=True, exist_ok=True)
    result = OUT / f"results-{stamp}.json"
    document = {
        "size_bytes": size, "seed": args.seed, "groups": groups, "machine": info,
        "versions": versions, "elapsed_s": round(time.monotonic() - started, 1),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": [row.as_dict() for row in bench.rows], "targets": checks,
    }  # fmt: skip
    result.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {result}")
    return 0 if all(row.ok for row in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""End to end: the installed `bulkctl push` against the installed `bulkctl sandbox`, both as
subprocesses, checked in the sandbox's SQLite warehouse and in what each process printed.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import SandboxProcess, base_env, merged, run_bulkctl, write_ndjson

pytestmark = pytest.mark.slow

KEY = "wk_E2E_sandbox_Key"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "rooms.ndjson"
RETRY = re.compile(r"^retrying (?P<what>.+?) in (?P<delay>[\d.]+) s \((?P<reason>.+); attempt")


def push(path: Path, url: str, *options: str) -> Any:
    """The installed `bulkctl push PATH --endpoint URL` with the sandbox's key."""
    return run_bulkctl(
        ["push", path, "--endpoint", url, *options], env=base_env(BULKCTL_WRITE_KEY=KEY)
    )


def table(db: Path, collection: str) -> dict[str, dict[str, Any]]:
    """A warehouse table as {id: {column: value}}, NULL columns left out."""
    conn = sqlite3.connect(db)
    try:
        cursor = conn.execute(f'SELECT * FROM "{collection}"')
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        conn.close()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        record_id = values.pop("id")
        out[record_id] = {k: v for k, v in values.items() if v is not None}
    return out


def retries(stderr: str) -> list[tuple[str, str]]:
    """(request, reason) of every retry line the push printed."""
    found = (RETRY.match(line) for line in stderr.splitlines())
    return [(m["what"], m["reason"]) for m in found if m]


# -- (a) merge -------------------------------------------------------------------------------


def partial_updates(seed: int = 11) -> list[dict[str, Any]]:
    """Partial objects: a few hot ids updated thousands of times, many ids a few times."""
    rng = random.Random(seed)
    hot = [f"hot_{n}" for n in range(4)]
    warm = [f"room_{n}" for n in range(150)]
    records = []
    for n in range(12_000):
        record_id = rng.choice(hot) if n % 4 else rng.choice(warm)
        props: dict[str, Any] = {f"p{k}": rng.randrange(10_000) for k in rng.sample(range(8), 3)}
        if n % 7 == 0:
            props["label"] = f"v{n}"
        props["blob"] = "".join(rng.choices("abcdefghij", k=rng.randrange(200, 600)))
        records.append({"id": record_id, "collection": "rooms", "properties": props})
    for n in range(30):
        props = {"name": f"host {n}"} if n % 2 else {"superhost": bool(n % 3), "listings": n}
        records.append({"id": f"h{n % 10}", "collection": "hosts", "properties": props})
    return records


def test_partial_updates_merge_row_by_row_across_parts(tmp_path: Path) -> None:
    """Partial updates spread over many parts at -c 4 merge in the warehouse as in the input."""
    records = partial_updates()
    path = write_ndjson(tmp_path / "updates.ndjson", records)
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, write_key=KEY) as sandbox:
        result = push(path, sandbox.url, "--concurrency", "4", "--part-size", "1MB", "--json")
        log = sandbox.stop()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["parts"] >= 6
    assert summary["records"] == summary["valid"] == len(records)
    uploads = [line for line in log if "/v0/upload/" in line]
    assert len(uploads) == summary["parts"]
    assert table(db, "rooms") == merged(records, "rooms")
    assert table(db, "hosts") == merged(records, "hosts")


# -- (b) every fault flag --------------------------------------------------------------------

FAULTS: dict[str, tuple[list[str], list[tuple[str, str]]]] = {
    # flags, the (request, reason) retry lines the push must print
    "fail-uploads": (
        ["--fail-uploads", "2"],
        [("upload of part 1", "HTTP 500"), ("upload of part 1", "HTTP 500")],
    ),
    "status-for upload": (
        ["--status-for", "upload=503,503"],
        [("upload of part 1", "HTTP 503"), ("upload of part 1", "HTTP 503")],
    ),
    "status-for start with retry-after": (
        ["--status-for", "start=429", "--retry-after", "1"],
        [("start of a session", "HTTP 429")],
    ),
    "latency": (["--latency", "50"], []),
    # An upload dropped after its body may land late: not retried, a fresh session instead.
    "drop-connection-on": (["--drop-connection-on", "2"], []),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_flag_is_survived_by_the_clients_retries(tmp_path: Path, fault: str) -> None:
    """Each injected fault: the push retries as it should (its stderr says so) and lands."""
    flags, expected = FAULTS[fault]
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, *flags, write_key=KEY) as sandbox:
        result = push(EXAMPLE, sandbox.url, "--concurrency", "1")
        sandbox.stop()
    assert result.returncode == 0, result.stderr
    seen = retries(result.stderr)
    assert [what for what, _ in seen] == [what for what, _ in expected]
    for (_, reason), (_, want) in zip(seen, expected, strict=True):
        assert want in reason
    statuses = [status for _, _, status in sandbox.request_log()]
    assert statuses[-1] == "202"  # the finish was accepted
    if fault == "status-for start with retry-after":
        # Retry-After chose the delay, plus jitter (not slept: no backoff)
        assert re.search(r"in 1\.[0-5] s", result.stderr), result.stderr
    if fault == "latency":
        assert min(sandbox.request_times()) >= 50
    if fault == "drop-connection-on":
        assert statuses[1] == "dropped"
        assert "sending every part again in a new session" in result.stderr
    else:
        assert statuses.count("201") == 2  # start + the one part, once each
    rooms = table(db, "rooms")
    assert rooms["2561341"]["review_count"] == 48
    assert rooms["2561341"]["location"] == "Lihue, HI"
    assert table(db, "hosts") == {"host_17": {"name": "Kai", "superhost": 1, "listings": 2}}


# -- (c) the 20-requests limit ---------------------------------------------------------------


def test_concurrency_20_never_exceeds_the_sandboxs_limit(tmp_path: Path) -> None:
    """-c 20 against a slow sandbox: 20 parts, all accepted, never a 429."""
    records = [{"id": f"r{n}", "collection": "rooms", "properties": {"n": n}} for n in range(3000)]
    path = write_ndjson(tmp_path / "rooms.ndjson", records)
    db = tmp_path / "warehouse.sqlite3"
    with SandboxProcess(db, "--latency", "300", write_key=KEY) as sandbox:
        result = push(path, sandbox.url, "--concurrency", "20", "--json")
        sandbox.stop()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parts"] == 20
    statuses = Counter(status for _, _, status in sandbox.request_log())
    assert statuses == {"201": 21, "202": 1}  # start + 20 uploads, one finish; no 429
    assert retries(result.stderr) == []
    assert len(table(db, "rooms")) == 3000


def test_twenty_one_simultaneous_requests_get_a_429(tmp_path: Path) -> None:
    """The sandbox serves at most 20 requests at once: the 21st is refused with 429."""
    with SandboxProcess(tmp_path / "w.sqlite3", "--latency", "1000", write_key=KEY) as sandbox:
        clients = [
            httpx.Client(base_url=sandbox.url, auth=(KEY, ""), timeout=30) for _ in range(21)
        ]
        barrier = threading.Barrier(21)
        statuses: list[int] = []

        def call(client: httpx.Client) -> None:
            barrier.wait()
            statuses.append(client.post("/v0/start").status_code)

        threads = [threading.Thread(target=call, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for client in clients:
            client.close()
    assert len(statuses) == 21
    assert statuses.count(429) >= 1
    assert statuses.count(201) + statuses.count(429) == 21


# -- (d) the README's first command ----------------------------------------------------------


def test_readme_first_command_push_sandbox_then_show(isolated_env: Path) -> None:
    """`bulkctl push examples/rooms.ndjson --sandbox`, then `sandbox show rooms --json`."""
    pushed = run_bulkctl(["push", EXAMPLE, "--sandbox"])
    assert pushed.returncode == 0, pushed.stderr
    assert "bulkctl sandbox show rooms" in pushed.stderr
    assert (isolated_env / "sandbox.sqlite3").is_file()

    shown = run_bulkctl(["sandbox", "show", "rooms", "--json"])
    assert shown.returncode == 0, shown.stderr
    rows = {row["id"]: row for row in json.loads(shown.stdout)}
    assert set(rows) == {"2561341", "2561342", "2561343"}
    assert rows["2561341"]["review_count"] == 48
    assert rows["2561341"]["name"] == "Charming Beach Room Facing Ocean"
    assert rows["2561342"]["nightly_price"] == 99.0
    assert rows["2561343"]["review_count"] == 13

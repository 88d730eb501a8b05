"""The sandbox's Segment Objects API (`POST /v1/set`), driven over real HTTP, read in SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulkctl.sandbox import Faults, RunningSandbox, start_sandbox

KEY = "wk_objects"
AUTH = (KEY, "")
JSON = {"Content-Type": "application/json"}
Starter = Callable[..., RunningSandbox]
Cli = Callable[..., Any]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.sqlite3"


@pytest.fixture
def start(db: Path) -> Iterator[Starter]:
    running: list[RunningSandbox] = []

    def starter(**options: Any) -> RunningSandbox:
        running.append(start_sandbox(db, write_key=KEY, **options))
        return running[-1]

    yield starter
    for sandbox in running:
        sandbox.stop()


def rows(db: Path, sql: str = "SELECT * FROM rooms ORDER BY id") -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        try:
            found = conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            found = []  # no such table: nothing was applied
    conn.close()
    return found


def set_(
    sandbox: RunningSandbox, body: Any, *, sync: bool = False, **options: Any
) -> httpx.Response:
    headers = {**JSON, **({"Synchronous": "true"} if sync else {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    options.setdefault("auth", AUTH)
    options["headers"] = {**headers, **options.get("headers", {})}
    return httpx.post(f"{sandbox.url}/v1/set", content=content, **options)


def room(object_id: str, **properties: Any) -> dict[str, Any]:
    return {"id": object_id, "properties": properties}


def test_a_set_is_applied_before_the_answer_and_merges_by_id(start: Starter, db: Path) -> None:
    """The seed's own example: two sets of one id merge, the later value wins."""
    sandbox = start()
    first = room("2561341", name="Charming Beach Room", location="Lihue, HI", review_count=47)
    answer = set_(sandbox, {"collection": "rooms", "objects": [first, room("2", name="Loft")]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True}
    assert rows(db, "SELECT id, review_count FROM rooms ORDER BY id") == [
        ("2", None),
        ("2561341", 47),
    ]
    again = set_(sandbox, {"collection": "rooms", "objects": [room("2561341", review_count=48)]})
    assert again.status_code == 200
    assert rows(db, "SELECT id, name, location, review_count FROM rooms WHERE id = '2561341'") == [
        ("2561341", "Charming Beach Room", "Lihue, HI", 48)
    ]
    booked = rows(db, "SELECT collection, objects, synchronous FROM _sandbox_sets ORDER BY seq")
    assert booked == [("rooms", 2, 0), ("rooms", 1, 0)]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"collection": "rooms", "objects": []}, "objects", "1 to 10"),
        (
            {"collection": "rooms", "objects": [room(str(n), a=1) for n in range(11)]},
            "objects",
            "1 to 10",
        ),
        ({"objects": [room("1", a=1)]}, "collection", "required"),
        ({"collection": "rooms", "objects": [room("1")], "extra": 1}, "extra", "unknown"),
        ({"collection": "Rooms", "objects": [room("1", a=1)]}, "collection", "lowercase"),
        ({"collection": "rooms", "objects": [{"id": "1"}]}, "objects[0].properties", "required"),
        ({"collection": "rooms", "objects": [{"id": 1, "properties": {}}]}, "objects[0].id", ""),
        (
            {"collection": "rooms", "objects": [room("1", a=1), room("2", tags=["x"])]},
            "objects[1].properties.tags",
            "not allowed",
        ),
        (
            {"collection": "rooms", "objects": [room("1", a=1), room("1", a=2)]},
            "objects[1].id",
            "twice",
        ),
        ({"collection": "rooms", "objects": [room("x" * 101)]}, "objects[0].id", "at most 100"),
    ],
)
def test_a_malformed_request_is_refused_whole_naming_the_field(
    start: Starter, db: Path, body: Any, field: str, words: str
) -> None:
    sandbox = start()
    answer = set_(sandbox, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert words in answer.json()["error"]
    assert rows(db) == []


def test_a_key_written_twice_is_refused(start: Starter, db: Path) -> None:
    sandbox = start()
    body = b'{"collection":"rooms","objects":[{"id":"1","properties":{"a":1,"a":2}}]}'
    answer = set_(sandbox, body)
    assert answer.status_code == 400
    assert answer.json()["field"] == "objects[0].properties.a"
    assert rows(db) == []


def test_the_write_key_and_json_content_type_are_required(start: Starter, db: Path) -> None:
    sandbox = start()
    body = {"collection": "rooms", "objects": [room("1", a=1)]}
    assert set_(sandbox, body, auth=("wk_wrong", "")).status_code == 401
    assert set_(sandbox, body, headers={"Content-Type": "text/plain"}).status_code == 400
    assert set_(sandbox, b"not json").status_code == 400
    assert rows(db) == []
    assert set_(sandbox, body).status_code == 200


def test_out_of_order_applies_an_asynchronous_request_after_the_next(
    start: Starter, db: Path
) -> None:
    """--out-of-order: without Synchronous the older version wins; with it, the newer."""
    sandbox = start(faults=Faults(out_of_order=True))
    for version in (1, 2):
        answer = set_(sandbox, {"collection": "rooms", "objects": [room("1", v=version)]})
        assert answer.status_code == 200
    assert rows(db, "SELECT id, v FROM rooms") == [("1", 1)]  # 2 landed first, then 1
    for version in (3, 4):
        answer = set_(
            sandbox, {"collection": "rooms", "objects": [room("1", v=version)]}, sync=True
        )
        assert answer.status_code == 200
    assert rows(db, "SELECT id, v FROM rooms") == [("1", 4)]


def test_a_held_request_is_applied_when_the_sandbox_stops(start: Starter, db: Path) -> None:
    sandbox = start(faults=Faults(out_of_order=True))
    assert set_(sandbox, {"collection": "rooms", "objects": [room("1", v=1)]}).status_code == 200
    assert rows(db) == []  # held: the asynchronous API has not applied it yet
    sandbox.stop()
    assert rows(db, "SELECT id, v FROM rooms") == [("1", 1)]


def test_status_for_set_forces_answers(start: Starter, db: Path) -> None:
    sandbox = start(faults=Faults(status_for={"set": (429,)}, retry_after=1))
    body = {"collection": "rooms", "objects": [room("1", a=1)]}
    refused = set_(sandbox, body)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert rows(db) == []
    assert set_(sandbox, body).status_code == 200


def test_push_with_repeated_ids_keeps_the_last_version_when_the_api_reorders(
    cli: Cli, start: Starter, db: Path, tmp_path: Path
) -> None:
    """Ids repeat, so bulkctl sends Synchronous: true and the last version wins; --no-sync
    against the same reordering API lets an older version win (and warns)."""
    sandbox = start(faults=Faults(out_of_order=True))
    # A request closes at its 11th distinct id: ids 0-9 go in the first, 10 and 0-8 in the
    # second, so nine ids have one version in each. v is the line's number.
    ids = [*range(11), *range(9)]
    lines = [
        f'{{"id":"{i}","collection":"rooms","properties":{{"v":{n}}}}}' for n, i in enumerate(ids)
    ]
    path = tmp_path / "rooms.ndjson"
    path.write_text("\n".join(lines) + "\n")
    env = {"BULKCTL_WRITE_KEY": KEY}
    base = ["push", path, "--target", "segment-objects", "--endpoint", sandbox.url]
    last = [*((str(n), 11 + n) for n in range(9)), ("9", 9), ("10", 10)]
    pushed = cli([*base, "--concurrency", "1", "--json"], env=env)
    assert pushed.exit_code == 0, pushed.stderr
    summary = json.loads(pushed.stdout)
    assert (summary["applied"], summary["requests"]) == (20, 2)
    assert rows(db, "SELECT id, v FROM rooms ORDER BY CAST(id AS INTEGER)") == last
    assert rows(db, "SELECT DISTINCT synchronous FROM _sandbox_sets") == [(1,)]
    wide = cli([*base, "--concurrency", "20", "--json"], env=env)  # one lane an id: same end
    assert wide.exit_code == 0, wide.stderr
    assert rows(db, "SELECT id, v FROM rooms ORDER BY CAST(id AS INTEGER)") == last

    unordered = cli([*base, "--concurrency", "1", "--no-sync"], env=env)
    assert unordered.exit_code == 0, unordered.stderr
    assert "out of order" in unordered.stderr
    # the second request landed before the first: the older versions won
    older = [(str(n), n) for n in range(11)]
    assert rows(db, "SELECT id, v FROM rooms ORDER BY CAST(id AS INTEGER)") == older


def test_push_to_the_embedded_sandbox(cli: Cli, tmp_path: Path) -> None:
    """`push --target segment-objects --sandbox` needs no key and lands the rows."""
    path = tmp_path / "rooms.ndjson"
    path.write_text(
        '{"id": "1", "collection": "rooms", "properties": {"name": "Attic"}}\n'
        '{"id": "2", "collection": "rooms", "properties": {"name": "Loft"}}\n'
    )
    home = tmp_path / "home"
    env = {"BULKCTL_HOME": str(home)}
    pushed = cli(["push", path, "--target", "segment-objects", "--sandbox", "--json"], env=env)
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads(pushed.stdout)["applied"] == 2
    assert "bulkctl sandbox show rooms" in pushed.stderr
    shown = cli(["sandbox", "query", "SELECT id, name FROM rooms ORDER BY id"], env=env)
    assert shown.exit_code == 0, shown.stderr
    assert "Attic" in shown.stdout and "Loft" in shown.stdout

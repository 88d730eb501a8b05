"""Deterministic benchmark data: an NDJSON of realistic records, its JSON-array twin, and a CSV.

Same size and seed → byte-identical files, so figures from different runs and machines compare.
A file is reused when its sidecar `.meta` (JSON) says it was made by this generator version with
the same size and seed and the file still has the recorded length; it is written to a temporary
name and renamed, so an interrupted generation is never mistaken for a finished one.

Run alone: `python bench/gen.py --size 256MB [--seed 7]` prints the three paths.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1
DEFAULT_SEED = 7
DATA_DIR = Path(__file__).resolve().parent / "data"
CSV_COLLECTION = "customers"

FIRST = [
    "Anna", "Ben", "Chloé", "David", "Emma", "François", "Greta", "Hiro", "Ines", "Jonas",
    "Kai", "Łukasz", "María", "Noah", "Olivia", "Søren", "Tomás", "Zoë", "Ahmed", "Yuki",
    "Priya", "Chen", "Olga", "Liam", "Mia", "Lucas", "Sofia", "Mateo", "Ava", "Elias",
]  # fmt: skip
LAST = [
    "Smith", "Müller", "García", "Nguyễn", "Rossi", "Dubois", "Kowalski", "Johansson", "Silva",
    "Tanaka", "O'Brien", "Novák", "Ivanova", "Brown", "Jones", "Taylor", "Wilson", "Schäfer",
    "Martin", "Lee", "Walker", "Hall", "Young", "King", "Wright", "Lopez", "Hill", "Green",
]  # fmt: skip
CITIES = [
    "London", "Paris", "Berlin", "São Paulo", "Zürich", "München", "Kraków", "Reykjavík",
    "東京", "New York", "Austin, TX", "Lihue, HI", "Portland, ME", "Toronto", "Sydney",
    "Mumbai", "Cape Town", "Madrid", "Lisbon", "Oslo", "Praha", "Wien", "Chicago", "Seattle",
]  # fmt: skip
WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "account", "order", "room",
    "ocean", "view", "quiet", "street", "near", "station", "balcony", "garden", "renewal",
    "invoice", "pending", "shipped", "returned", "priority", "support", "ticket", "customer",
    "premium", "monthly", "annual", "trial", "café", "naïve", "résumé", "straße", "smörgåsbord",
    "data", "export", "nightly", "sync", "warehouse", "segment", "bulk", "object", "merge",
    "update",
]  # fmt: skip
PLANS = ["free", "starter", "pro", "business", "enterprise"]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "pl-PL", "sv-SE"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "BRL", "PLN", "SEK"]
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "BR", "JP", "PL", "SE", "CH", "IS", "AU", "IN"]
COLLECTIONS = ["users", "users", "users", "accounts", "orders", "orders", "rooms", "products"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.4.0",
]


@dataclass(frozen=True, slots=True)
class DataFile:
    """A generated file: where it is, its length and how many records it holds."""

    path: Path
    bytes: int
    records: int


def parse_size(text: str) -> int:
    """`256MB` → 256,000,000 (10^6 a MB, as in bulkctl); `1GiB` and plain byte counts also work."""
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    upper = text.strip().upper()
    for suffix, factor in units.items():
        if upper.endswith(suffix):
            return int(float(upper[: -len(suffix)]) * factor)
    return int(upper.rstrip("B"))


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _stamp(rng: random.Random) -> str:
    return (
        f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        f".{rng.randint(0, 999):03d}Z"
    )


Gen = Callable[[random.Random], Any]

# Property name → value maker. Each record takes 10 to 20 of these, in this order.
PROPERTIES: list[tuple[str, Gen]] = [
    ("name", lambda r: f"{r.choice(FIRST)} {r.choice(LAST)}"),
    ("email", lambda r: f"{r.choice(FIRST).lower()}.{r.randint(1, 99999)}@example.com"),
    ("city", lambda r: r.choice(CITIES)),
    ("country_code", lambda r: r.choice(COUNTRIES)),
    ("title", lambda r: _words(r, 2, 4)),
    ("description", lambda r: _words(r, 0, 8)),
    ("age", lambda r: r.randint(18, 90)),
    ("score", lambda r: round(r.random() * 100, 3)),
    ("balance", lambda r: round(r.uniform(-500, 20000), 2)),
    ("login_count", lambda r: r.randint(0, 1_000_000)),
    ("event_total", lambda r: r.randint(0, 2**53)),
    ("is_active", lambda r: r.random() < 0.8),
    ("email_verified", lambda r: r.random() < 0.6),
    ("created_at", _stamp),
    ("updated_at", _stamp),
    ("birth_date", _date),
    ("plan", lambda r: r.choice(PLANS)),
    ("locale", lambda r: r.choice(LOCALES)),
    ("postal_code", lambda r: f"{r.randint(0, 99999):05d}"),
    ("latitude", lambda r: round(r.uniform(-90, 90), 6)),
    ("longitude", lambda r: round(r.uniform(-180, 180), 6)),
    ("rating", lambda r: round(r.uniform(1, 5), 1)),
    ("currency", lambda r: r.choice(CURRENCIES)),
    ("lifetime_value", lambda r: round(r.expovariate(1 / 800), 2)),
    ("user_agent", lambda r: r.choice(AGENTS)),
    ("referrer", lambda r: f"https://example.org/{r.choice(WORDS)}?ref={r.randint(1, 999)}"),
    ("phone", lambda r: f"+{r.randint(1, 99)} {r.randint(100, 999)} {r.randint(1000000, 9999999)}"),
    ("external_ref", lambda r: f"{r.getrandbits(64):016x}"),
]  # fmt: skip


def records(seed: int) -> Iterator[dict[str, Any]]:
    """An endless, seeded stream of canonical `{id, collection, properties}` records."""
    rng = random.Random(seed)
    indexes = range(len(PROPERTIES))
    number = 0
    while True:
        number += 1
        chosen = sorted(rng.sample(indexes, rng.randint(10, 20)))
        properties = {PROPERTIES[i][0]: PROPERTIES[i][1](rng) for i in chosen}
        bits = f"{rng.getrandbits(128):032x}"
        record_id = f"{bits[:8]}-{bits[8:12]}-{bits[12:16]}-{bits[16:20]}-{number:012d}"
        yield {"id": record_id, "collection": rng.choice(COLLECTIONS), "properties": properties}


def csv_rows(seed: int) -> Iterator[list[str]]:
    """An endless, seeded stream of 20-column CSV rows (no header), some cells empty."""
    rng = random.Random(seed)
    number = 1_000_000
    while True:
        number += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        row = [
            str(number),
            first,
            last,
            f"{first.lower()}.{rng.randint(1, 99999)}@example.com",
            rng.choice(CITIES),
            rng.choice(COUNTRIES),
            f"{rng.randint(0, 99999):05d}",  # leading zeros: stays a string
            str(rng.randint(18, 90)),
            _date(rng),
            _stamp(rng),
            rng.choice(["true", "false"]),
            rng.choice(PLANS),
            f"{rng.uniform(-500, 20000):.2f}",
            f"{rng.random() * 100:.3f}",
            str(rng.randint(0, 1_000_000)),
            f"{rng.uniform(1, 5):.1f}",
            f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}",
            rng.choice(LOCALES),
            _words(rng, 0, 12) + rng.choice(["", ', "quoted", too']),
            f"https://www.example.org/{rng.choice(WORDS)}",
        ]
        for column in range(1, 20):
            if rng.random() < 0.04:
                row[column] = ""
        yield row


CSV_HEADER = [
    "id", "first_name", "last_name", "email", "city", "country_code", "postal_code", "age",
    "birth_date", "last_login_at", "is_active", "plan", "balance", "score", "login_count",
    "rating", "phone", "locale", "notes", "referrer",
]  # fmt: skip


def _stem(kind: str, size: int, seed: int) -> str:
    return f"{kind}-{size}-s{seed}-v{GENERATOR_VERSION}"


def _cached(path: Path, meta: dict[str, Any]) -> DataFile | None:
    """The existing file when its sidecar matches `meta` and its length is as recorded."""
    side = path.with_name(path.name + ".meta")
    try:
        stored = json.loads(side.read_text(encoding="utf-8"))
        length = path.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in meta.items()):
        return None
    if stored.get("bytes") != length:
        return None
    return DataFile(path, length, int(stored["records"]))


def _publish(tmp: Path, path: Path, meta: dict[str, Any], records: int) -> DataFile:
    length = tmp.stat().st_size
    tmp.replace(path)
    side = path.with_name(path.name + ".meta")
    side.write_text(json.dumps(meta | {"bytes": length, "records": records}), encoding="utf-8")
    return DataFile(path, length, records)


def ensure_ndjson(size: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR) -> DataFile:
    """An NDJSON file of at least `size` bytes (stops after the record that reaches it)."""
    path = data_dir / f"{_stem('records', size, seed)}.ndjson"
    meta = {"kind": "ndjson", "size": size, "seed": seed, "version": GENERATOR_VERSION}
    return _ensure_records(path, meta, seed, lambda written, count: written >= size)


def ensure_record_count(
    count: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR
) -> DataFile:
    """An NDJSON file of exactly `count` records: the first of the same seeded stream."""
    path = data_dir / f"{_stem('first', count, seed)}.ndjson"
    meta = {"kind": "ndjson-count", "count": count, "seed": seed, "version": GENERATOR_VERSION}
    return _ensure_records(path, meta, seed, lambda written, records: records >= count)


def _ensure_records(
    path: Path, meta: dict[str, Any], seed: int, done: Callable[[int, int], bool]
) -> DataFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    found = _cached(path, meta)
    if found is not None:
        return found
    tmp = path.with_name(path.name + ".tmp")
    written = count = 0
    with tmp.open("wb") as out:
        for record in records(seed):
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            data = line.encode("utf-8")
            out.write(data)
            written += len(data)
            count += 1
            if done(written, count):
                break
    return _publish(tmp, path, meta, count)


def ensure_json_array(source: DataFile, data_dir: Path = DATA_DIR) -> DataFile:
    """The same records as one top-level JSON array, an element a line (streamed, not loaded)."""
    path = source.path.with_suffix(".json")
    meta = {"kind": "json-array", "source": source.path.name, "source_bytes": source.bytes}
    found = _cached(path, meta)
    if found is not None:
        return found
    tmp = path.with_name(path.name + ".tmp")
    with source.path.open("rb") as src, tmp.open("wb") as out:
        out.write(b"[\n")
        first = True
        for line in src:
            if not first:
                out.write(b",\n")
            out.write(line.rstrip(b"\n"))
            first = False
        out.write(b"\n]\n")
    return _publish(tmp, path, meta, source.records)


def ensure_csv(size: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR) -> DataFile:
    """A CSV (header + 20 columns) of at least `size` bytes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{_stem('table', size, seed)}.csv"
    meta = {"kind": "csv", "size": size, "seed": seed, "version": GENERATOR_VERSION}
    found = _cached(path, meta)
    if found is not None:
        return found
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for row in csv_rows(seed):
            writer.writerow(row)
            count += 1
            if count % 1000 == 0 and out.tell() >= size:
                break
    return _publish(tmp, path, meta, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="256MB", help="e.g. 32MB, 256MB, 2GB (10^6 a MB)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    ndjson = ensure_ndjson(size, args.seed)
    for made in (ndjson, ensure_json_array(ndjson), ensure_csv(size, args.seed)):
        print(f"{made.path}  {made.bytes:,} bytes  {made.records:,} records", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

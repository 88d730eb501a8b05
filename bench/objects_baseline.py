"""The Objects API baseline: the same records as plain httpx POSTs of 10, one client, in order.

It reads the NDJSON file with orjson, groups each collection's records ten at a time in input
order (what `/v1/set` takes), and POSTs each body with one keep-alive `httpx.Client`, one at a
time: no validation, no lanes, no job store. Prints `{"records", "requests"}` as JSON.

Usage: BULKCTL_WRITE_KEY=... python bench/objects_baseline.py FILE --endpoint http://HOST:PORT
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx
import orjson

OBJECTS_A_REQUEST = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sequential /v1/set POSTs (benchmark baseline).")
    parser.add_argument("file")
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args(argv)
    url = f"{args.endpoint.rstrip('/')}/v1/set"
    auth = (os.environ["BULKCTL_WRITE_KEY"], "")
    headers = {"Content-Type": "application/json"}
    pending: dict[str, list[dict[str, object]]] = {}
    records = requests = 0
    with httpx.Client(auth=auth, headers=headers) as client:

        def post(collection: str, objects: list[dict[str, object]]) -> None:
            body = orjson.dumps({"collection": collection, "objects": objects})
            client.post(url, content=body).raise_for_status()

        with open(args.file, "rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                records += 1
                batch = pending.setdefault(record["collection"], [])
                batch.append({"id": record["id"], "properties": record["properties"]})
                if len(batch) == OBJECTS_A_REQUEST:
                    post(record["collection"], batch)
                    requests += 1
                    pending[record["collection"]] = []
        for collection, batch in pending.items():
            if batch:
                post(collection, batch)
                requests += 1
    print(orjson.dumps({"records": records, "requests": requests}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The baseline a user would write first: json + gzip + httpx, one record at a time, one thread.

It does what a straightforward script does to push an NDJSON file to the Segment Bulk API:
parse each line with `json`, check that it has an id and a collection, re-serialise it, write
it into an in-memory `gzip.GzipFile` (the module's default level, 9), start a new part before
512 MB of uncompressed NDJSON, and upload each part with httpx. Nothing here is tuned on
purpose: it is the yardstick `bulkctl push` is compared with.

Usage: BULKCTL_WRITE_KEY=... python bench/naive_push.py FILE --endpoint http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys

import httpx

PART_LIMIT = 512_000_000


def upload(client: httpx.Client, endpoint: str, sync_id: str, buffer: io.BytesIO) -> None:
    """POST one gzip part and fail loudly on a non-2xx answer."""
    response = client.post(
        f"{endpoint}/v0/upload/{sync_id}",
        content=buffer.getvalue(),
        headers={"Content-Type": "binary/octet-stream", "Content-Encoding": "gzip"},
    )
    response.raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Naive NDJSON push (benchmark baseline).")
    parser.add_argument("file")
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args(argv)
    endpoint = args.endpoint.rstrip("/")
    auth = (os.environ["BULKCTL_WRITE_KEY"], "")
    records = 0
    with httpx.Client(auth=auth, timeout=600) as client:
        start = client.post(f"{endpoint}/v0/start")
        start.raise_for_status()
        sync_id = start.json()["sync_id"]
        buffer = io.BytesIO()
        packer = gzip.GzipFile(fileobj=buffer, mode="wb")
        raw = 0
        with open(args.file, encoding="utf-8") as source:
            for number, line in enumerate(source, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not record.get("id") or not record.get("collection"):
                    print(f"line {number}: missing id or collection", file=sys.stderr)
                    return 1
                data = (json.dumps(record) + "\n").encode("utf-8")
                if raw + len(data) > PART_LIMIT:
                    packer.close()
                    upload(client, endpoint, sync_id, buffer)
                    buffer = io.BytesIO()
                    packer = gzip.GzipFile(fileobj=buffer, mode="wb")
                    raw = 0
                packer.write(data)
                raw += len(data)
                records += 1
        packer.close()
        upload(client, endpoint, sync_id, buffer)
        client.post(f"{endpoint}/v0/finish/{sync_id}", json={"error": ""}).raise_for_status()
    print(json.dumps({"records": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

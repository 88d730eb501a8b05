"""Types of the C fast path (bulkctl/_native.c)."""

class Scanner:
    def __init__(
        self,
        lanes: int,
        hints: bool,
        small: int,
        max_id: int,
        max_collection: int,
        bufs: list[bytearray],
        collection: bytes | None = None,
        id_field: bytes | None = None,
    ) -> None: ...
    def scan(
        self, data: bytes, pos: int
    ) -> tuple[
        int,
        int,
        list[tuple[str, int]],
        bytes,
        list[tuple[str, list[str]]],
        bytes,
        list[int],
    ]: ...

class KeyTable:
    size: int
    capped: bool
    def __init__(self, limit: int, expected: int = 0) -> None: ...
    def add_all(self, keys: bytes) -> int: ...

def csv_lines(
    data: bytes,
    delimiter: int,
    names: list[bytes],
    id_index: int,
    collection: bytes,
    kinds: bytes,
    longest: int,
) -> bytes | None: ...
def csv_kinds(data: bytes, delimiter: int, width: int, longest: int) -> bytes | None: ...
def value_end(buf: bytes, pos: int) -> int: ...

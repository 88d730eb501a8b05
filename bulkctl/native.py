"""The C fast path (bulkctl/_native.c) when it was built, and the switch that turns it off.

Optional by design: setup.py builds it where a C compiler is available, and without it
bulkctl runs the very same checks in Python, only slower. `BULKCTL_NO_NATIVE=1` forces the
Python path (the tests run both and compare them; a user can rule the C code out).
"""

from __future__ import annotations

import os
from types import ModuleType


def native() -> ModuleType | None:
    """The compiled module, or None when it is missing or turned off."""
    if os.environ.get("BULKCTL_NO_NATIVE"):
        return None
    try:
        from bulkctl import _native
    except ImportError:
        return None
    return _native


def describe() -> str:
    """How records are checked in this run, for `-v` output."""
    if os.environ.get("BULKCTL_NO_NATIVE"):
        return "in Python (BULKCTL_NO_NATIVE is set)"
    if native() is None:
        return "in Python (the C fast path was not built)"
    return "C fast path for plain NDJSON lines, JSON elements and CSV rows; Python for the rest"

"""Target drivers: one module per API, holding only its URLs, payloads and status codes.

The registry maps each `--target` name to "module:class"; nothing is imported until a target
is asked for, so `bulkctl --help` stays fast. An unknown name is a usage error that lists the
known ones, sorted. Adding an API is one module (see `bulkctl.targets.base.Target`), one line
here, an emulator in `bulkctl.sandbox` and a fixture in the contract tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bulkctl.errors import UsageError

if TYPE_CHECKING:
    from bulkctl.targets.base import Target

DEFAULT_TARGET = "segment-bulk"

_REGISTRY: Mapping[str, str] = {
    "segment-bulk": "bulkctl.targets.segment_bulk:SegmentBulkTarget",
    "xandr-bss": "bulkctl.targets.xandr_bss:XandrTarget",
}


def target_names() -> list[str]:
    """Every registered target, sorted."""
    return sorted(_REGISTRY)


def target_class(name: str) -> type[Target]:
    """The class of target `name`, imported now; a UsageError lists the known names."""
    try:
        where = _REGISTRY[name]
    except KeyError:
        known = ", ".join(target_names())
        raise UsageError(f"unknown target {name!r}; known targets: {known}") from None
    module, _, attribute = where.partition(":")
    found: type[Target] = getattr(import_module(module), attribute)
    return found


def get_target(name: str, options: Mapping[str, Any] | None = None) -> Target:
    """Target `name` configured with its options (None values: not given on the command line).

    Raises UsageError for an unknown target, or an option the target does not take.
    """
    from bulkctl.targets.base import check_options

    cls = target_class(name)
    given = dict(options or {})
    check_options(name, cls.options, given)
    accepted = {key: value for key, value in given.items() if key in cls.options}
    return cls(**accepted)

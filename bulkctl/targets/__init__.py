"""Target drivers: one module per API, holding only its URLs, payloads and status codes.

The registry maps each `--target` name to "module:class"; nothing is imported until a target
is asked for, so `bulkctl --help` stays fast. An unknown name is a usage error that lists the
known ones, sorted. Adding an API is one module (see `bulkctl.targets.base.Target`), one line
here, an emulator in `bulkctl.sandbox` and a fixture in the contract tests.

`build` is the one place a target and its remote are made: the CLI, `run/` and `jobs/` all
ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bulkctl.errors import UsageError

if TYPE_CHECKING:
    from bulkctl.send.remote import Remote
    from bulkctl.settings import SandboxCredentials
    from bulkctl.targets.base import ConnectSettings, Target

DEFAULT_TARGET = "segment-bulk"

_REGISTRY: Mapping[str, str] = {
    "segment-bulk": "bulkctl.targets.segment_bulk:SegmentBulkTarget",
    "segment-objects": "bulkctl.targets.segment_objects:SegmentObjectsTarget",
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


@dataclass(frozen=True)
class Built:
    """A target with its options, and its remote when asked for one (None: a dry run)."""

    target: Target
    remote: Remote | None


def build(
    name: str, options: Mapping[str, Any] | None = None, connect: ConnectSettings | None = None
) -> Built:
    """Target `name` with its options (None values: not given), and with `connect`, its remote.

    Raises UsageError for an unknown target or an option it does not take, and what resolving
    the remote's endpoint and credentials raises (CredentialsError: exit 3).
    """
    target = _configured(name, options)
    return Built(target, None if connect is None else target.remote(connect))


def profile_keys() -> frozenset[str]:
    """Every key a `[profiles.NAME]` table may hold: the general ones and every target's."""
    from bulkctl.settings import GENERAL_PROFILE_KEYS

    keys = set(GENERAL_PROFILE_KEYS)
    for name in _REGISTRY:
        for spec in target_class(name).settings:
            keys.update(spec.profile_keys)
    return frozenset(keys)


def sandbox_credentials() -> SandboxCredentials:
    """Throwaway credentials for every setting of every target the embedded sandbox serves."""
    from bulkctl.settings import SandboxCredentials

    return SandboxCredentials.random(
        spec for known in _REGISTRY for spec in target_class(known).settings
    )


def _configured(name: str, options: Mapping[str, Any] | None = None) -> Target:
    from bulkctl.targets.base import check_options

    cls = target_class(name)
    given = dict(options or {})
    check_options(name, cls.options, given)
    accepted = {key: value for key, value in given.items() if key in cls.options}
    return cls(**accepted)

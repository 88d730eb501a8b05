"""What every target declares: its records, its limits, its settings and its remote.

A target is one API. The pipeline asks it these things and nothing else:

* how to read and shape input (`prepare_read`, `records`) and the rules of one record (`check`,
  which also encodes the record's line once, so packing reuses the bytes);
* its `Limits` (`bulkctl.send.remote`): what a part may hold and how parts are sent;
* its public `hosts` and the `settings` it reads (credentials, a member id), which
  `bulkctl.settings` resolves without knowing any target;
* its `Remote` (`bulkctl.send.remote`: the protocol steps), built from `ConnectSettings` by
  `bulkctl.targets.build`, the one place a target and its remote are made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bulkctl.errors import CredentialsError, UsageError
from bulkctl.records import Problem, RawItem, Record, Rejection, ShapeOptions
from bulkctl.send.remote import Limits, Remote
from bulkctl.settings import (
    Profile,
    SandboxCredentials,
    Secret,
    SettingSpec,
    find_value,
    resolve_endpoint,
    resolve_secret,
)

if TYPE_CHECKING:
    from pathlib import Path

    from bulkctl.console import Console
    from bulkctl.read.options import ReadOptions

Shaped = Record | Rejection


@dataclass(frozen=True)
class ConnectSettings:
    """What a target needs to build its `Remote`; the CLI fills in the flags as given."""

    profile: Profile
    console: Console
    endpoint: str | None = None  # --endpoint; else env, profile, the target's public host
    region: str | None = None
    key_file: Path | None = None
    keep_alive: float = 300.0
    sandbox: SandboxCredentials | None = None  # the embedded sandbox's throwaway credentials

    def endpoint_for(self, hosts: dict[str, str]) -> str:
        """The endpoint: --endpoint, env, profile, else the region's public host."""
        return resolve_endpoint(self.endpoint, self.region, self.profile, hosts, self.console)

    def secret(self, spec: SettingSpec) -> Secret:
        """A secret of `spec`: the sandbox's own, else from its sources (exit 3 if none)."""
        if self.sandbox is not None:
            return self.sandbox.get(spec.key)
        key_file = self.key_file if spec.file_flag else None  # one secret a target has a file
        return resolve_secret(spec, key_file, self.profile, self.console)

    def value(self, spec: SettingSpec, flag: object = None) -> str | None:
        """A login or plain value of `spec`: `flag`, env, profile (None: not given).

        A missing login is a CredentialsError (exit 3); in the sandbox, its own login.
        """
        if self.sandbox is not None and spec.credential:
            return self.sandbox.get(spec.key).reveal()
        found = find_value(spec, flag, self.profile)
        if found.value is None and spec.credential:
            raise CredentialsError(f"no {spec.label} found", hint=spec.hint or None)
        if found.value is not None:
            self.console.detail(f"{spec.label}: {found.value!r} (from {found.origin})")
        return found.value


class Target(Protocol):
    """One API: its rules, limits and protocol. Built by `bulkctl.targets.build`."""

    name: ClassVar[str]
    options: ClassVar[frozenset[str]]  # names of the target-specific options it accepts
    remote_jobs: ClassVar[bool]  # the API processes uploads later, as jobs with a status
    hosts: ClassVar[dict[str, str]]  # region -> public host, the first the default ("" if none)
    settings: ClassVar[tuple[SettingSpec, ...]]  # credentials and values, as `config` shows
    limits: Limits
    default_concurrency: int  # --concurrency when not given
    unique_lines: bool  # a line repeated within one run is an error
    object_hints: bool  # naming hints for objects (snake_case properties, plural collections)
    wait_timeout: float  # default seconds for --wait (the API's processing time)

    def prepare_read(self, read: ReadOptions) -> ReadOptions:
        """The reading options this target wants (e.g. no number inference on CSV)."""
        ...

    def records(self, items: Iterable[RawItem], shape: ShapeOptions) -> Iterator[Shaped]:
        """Shape parsed items into records, or rejections carrying their own place."""
        ...

    def check(self, record: Record) -> tuple[list[Problem], bytes | None]:
        """The record's problems and, when it has none, its encoded line."""
        ...

    def remote(self, connect: ConnectSettings) -> Remote:
        """Resolve endpoint and settings (`ConnectSettings`) into a `Remote`."""
        ...


def check_options(name: str, accepted: frozenset[str], given: Mapping[str, Any]) -> None:
    """A UsageError for a target-specific option the target does not take."""
    for option, value in given.items():
        if value is not None and option not in accepted:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} does not apply to --target {name}")

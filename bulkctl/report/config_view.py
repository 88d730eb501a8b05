"""What `bulkctl config` reports: each effective setting, its value and where it came from.

It resolves every setting with the very functions a push uses (`bulkctl.settings`), so what
it shows is what a push would take. A secret's value is never part of the report: only
"set" and its source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkctl.console import Console
from bulkctl.errors import CredentialsError
from bulkctl.paths import config_file, data_dir_path
from bulkctl.settings import (
    NOWHERE,
    Profile,
    Secret,
    SettingSpec,
    Sourced,
    config_origin,
    endpoint_source,
    find_secret,
    find_value,
    load_profile,
    region_source,
)
from bulkctl.targets import DEFAULT_TARGET, profile_keys, target_class


@dataclass(frozen=True)
class Flags:
    """The flags `bulkctl config` takes: the same as push's, to show their effect."""

    target: str | None = None
    profile: str | None = None
    endpoint: str | None = None
    region: str | None = None
    write_key_file: Path | None = None
    member_id: int | None = None


@dataclass(frozen=True)
class Row:
    """One setting: `key` for --json, `label` for people; `value` None means not set."""

    key: str
    label: str
    value: str | None
    origin: str
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        origin = None if self.origin == NOWHERE else self.origin
        shown: dict[str, Any] = {"value": self.value, "from": origin}
        if self.note:
            shown["note"] = self.note
        return shown

    def text(self) -> str:
        if self.value is None:
            return "not set" if self.origin == NOWHERE else f"not set ({self.origin})"
        note = f"; {self.note}" if self.note else ""
        return f"{self.value} (from {self.origin}{note})"


def effective_settings(flags: Flags, console: Console) -> list[Row]:
    """Every setting a push with these flags would use, in the order a person reads them."""
    path = config_file()
    rows = [
        Row(
            "config_file",
            "config file",
            str(path),
            config_origin(),
            None if path.exists() else "no such file",
        )
    ]
    profile = load_profile(flags.profile, console, profile_keys())
    rows.append(Row("profile", "profile", profile.name, _profile_origin(profile)))
    target = _target(flags.target, profile)
    rows.append(Row("target", "target", target.value, target.origin))
    cls = target_class(str(target.value))
    hosts = cls.hosts
    endpoint = endpoint_source(flags.endpoint, flags.region, profile, hosts)
    rows.append(Row("endpoint", "endpoint", endpoint.value, endpoint.origin))
    if "" not in hosts:
        region = region_source(flags.region, profile, hosts)
        rows.append(Row("region", "region", region.value, region.origin))
    rows.extend(_setting_row(spec, flags, profile, console) for spec in cls.settings)
    home = "env BULKCTL_HOME" if os.environ.get("BULKCTL_HOME") else "default"
    rows.append(Row("data_dir", "data directory", str(data_dir_path()), home))
    return rows


def _profile_origin(profile: Profile) -> str:
    if profile.name is None:
        return "no --profile, BULKCTL_PROFILE or [profiles.default]"
    if profile.origin == "default":
        return "default: [profiles.default]"
    return profile.origin


def _target(flag: str | None, profile: Profile) -> Sourced:
    if flag:
        return Sourced(flag, "--target")
    if profile.get("target"):
        return Sourced(str(profile.get("target")), profile.source("target"))
    return Sourced(DEFAULT_TARGET, "default")


def _setting_row(spec: SettingSpec, flags: Flags, profile: Profile, console: Console) -> Row:
    """A target's setting: a secret only as "set" and its source, else its value."""
    if spec.secret:
        key_file = flags.write_key_file if spec.file_flag else None
        found = _secret(lambda: find_secret(spec, key_file, profile, console))
        return Row(spec.key, spec.label, *found)
    flag = getattr(flags, spec.flag.lstrip("-").replace("-", "_"), None) if spec.flag else None
    value = find_value(spec, flag, profile)
    return Row(spec.key, spec.label, value.value, value.origin)


def _secret(find: Any) -> tuple[str | None, str]:
    """("set", origin) for a secret found, (None, "nowhere") for none; never the secret."""
    try:
        found: tuple[Secret, str] | None = find()
    except CredentialsError as exc:
        return "unreadable", str(exc)
    if found is None:
        return None, NOWHERE
    return "set", found[1]

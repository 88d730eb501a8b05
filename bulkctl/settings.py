"""Where push settings come from: flags, then environment, then a config profile.

The only place that merges those sources. Credentials are resolved in one documented order:
`--write-key-file`, then `BULKCTL_WRITE_KEY`, then the profile's `write_key_file` or
`write_key`. Xandr logins: `BULKCTL_XANDR_USERNAME` / `BULKCTL_XANDR_PASSWORD`, then the
profile's `xandr_username` with `xandr_password_file` or `xandr_password`; the member id:
`--member-id`, then `BULKCTL_XANDR_MEMBER_ID`, then the profile's `xandr_member_id`. A secret is
held in a `Secret`, whose repr never shows it, and config parse errors are reported by position
only, because the offending text could be the key.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkctl.console import Console
from bulkctl.errors import CredentialsError, UsageError
from bulkctl.paths import config_file

SEGMENT_BULK_HOSTS = {
    "us": "https://objects-bulk-api.segmentapis.com",
    "eu": "https://objects-bulk-api.euw1.segmentapis.com",
}


class Secret:
    """A credential that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True)
class XandrLogin:
    """A Xandr API user name and password (the password never shown)."""

    username: str
    password: Secret


@dataclass(frozen=True)
class SandboxCredentials:
    """Throwaway credentials for an embedded sandbox: the user's real ones never go there."""

    write_key: Secret
    xandr: XandrLogin

    @classmethod
    def random(cls) -> SandboxCredentials:
        return cls(
            Secret(secrets.token_hex(16)),
            XandrLogin(f"sandbox-{secrets.token_hex(4)}", Secret(secrets.token_hex(16))),
        )


@dataclass(frozen=True)
class Profile:
    """One `[profiles.NAME]` table of the config file."""

    name: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.values.get(key)


def load_profile(name: str | None, console: Console) -> Profile:
    """The chosen profile (`--profile`, `BULKCTL_PROFILE`, else `default` when present)."""
    name = name or os.environ.get("BULKCTL_PROFILE") or None
    path = config_file()
    if not path.exists():
        if name:
            raise UsageError(f"profile {name!r} asked for, but there is no config file at {path}")
        return Profile()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        position = re.search(r"\(at line \d+, column \d+\)", str(exc))
        where = f" {position.group(0)}" if position else ""
        raise UsageError(f"the config file {path} is not valid TOML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise UsageError(f"{path}: `profiles` must be a table of [profiles.NAME] tables")
    if name is None:
        name = "default" if "default" in profiles else None
        if name is None:
            return Profile()
    if name not in profiles or not isinstance(profiles[name], dict):
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no profile {name!r} in {path} (profiles: {known})")
    values = profiles[name]
    if "write_key" in values:
        _warn_if_readable(path, console, "holds a write key")
    elif "xandr_password" in values:
        _warn_if_readable(path, console, "holds a password")
    return Profile(name, dict(values))


def resolve_write_key(key_file: Path | None, profile: Profile, console: Console) -> Secret:
    """The write key, from the first source that has one, or a CredentialsError (exit 3)."""
    if key_file is not None:
        return _read_key_file(key_file, console, "--write-key-file")
    env = os.environ.get("BULKCTL_WRITE_KEY")
    if env:
        return Secret(env.strip())
    if profile.get("write_key_file"):
        return _read_key_file(
            Path(str(profile.get("write_key_file"))).expanduser(),
            console,
            f"profile {profile.name!r}",
        )
    if profile.get("write_key"):
        return Secret(str(profile.get("write_key")).strip())
    raise CredentialsError(
        "no write key found",
        hint="pass --write-key-file PATH, set BULKCTL_WRITE_KEY, or add write_key_file to a "
        "[profiles.NAME] table of the config file",
    )


def _read_key_file(path: Path, console: Console, origin: str, what: str = "write key") -> Secret:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialsError(
            f"cannot read the {what} file {path} ({origin}): {exc.strerror}"
        ) from None
    if not text:
        raise CredentialsError(f"the {what} file {path} ({origin}) is empty")
    _warn_if_readable(path, console, f"holds a {what}")
    return Secret(text)


def _warn_if_readable(path: Path, console: Console, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        console.warn(f"{path} {what} and is readable by others; run: chmod 600 {path}")


def resolve_endpoint(
    flag: str | None,
    region: str | None,
    profile: Profile,
    hosts: dict[str, str] = SEGMENT_BULK_HOSTS,
) -> str:
    """`--endpoint`, then `BULKCTL_ENDPOINT`, then the profile, then the region's public host.

    `hosts` maps the target's regions to its public hosts, the first being the default; a
    target without regions has one entry under "".
    """
    endpoint = flag or os.environ.get("BULKCTL_ENDPOINT") or profile.get("endpoint")
    if endpoint:
        return str(endpoint).rstrip("/")
    if "" in hosts:
        if region:
            raise UsageError(f"--region {region!r}: this target has no regions")
        return hosts[""]
    region = region or profile.get("region") or next(iter(hosts))
    if region not in hosts:
        raise UsageError(f"--region {region!r}: choose one of {', '.join(hosts)}")
    return hosts[str(region)]


def resolve_xandr_login(profile: Profile, console: Console) -> XandrLogin:
    """The Xandr user name and password, from the environment or the profile (exit 3 if none)."""
    username = os.environ.get("BULKCTL_XANDR_USERNAME") or profile.get("xandr_username")
    password: Secret | None = None
    env_password = os.environ.get("BULKCTL_XANDR_PASSWORD")
    if env_password:
        password = Secret(env_password)
    elif profile.get("xandr_password_file"):
        path = Path(str(profile.get("xandr_password_file"))).expanduser()
        password = _read_key_file(path, console, f"profile {profile.name!r}", "password")
    elif profile.get("xandr_password"):
        password = Secret(str(profile.get("xandr_password")))
    if not username or password is None:
        missing = "user name" if not username else "password"
        raise CredentialsError(
            f"no Xandr {missing} found",
            hint="set BULKCTL_XANDR_USERNAME and BULKCTL_XANDR_PASSWORD, or add xandr_username "
            "and xandr_password_file to a [profiles.NAME] table of the config file",
        )
    return XandrLogin(str(username).strip(), password)


def resolve_member_id(flag: int | None, profile: Profile) -> int:
    """`--member-id`, then `BULKCTL_XANDR_MEMBER_ID`, then the profile's `xandr_member_id`."""
    value: object = flag
    origin = "--member-id"
    if value is None and os.environ.get("BULKCTL_XANDR_MEMBER_ID"):
        value, origin = os.environ["BULKCTL_XANDR_MEMBER_ID"].strip(), "BULKCTL_XANDR_MEMBER_ID"
    if value is None and profile.get("xandr_member_id") is not None:
        value, origin = profile.get("xandr_member_id"), f"profile {profile.name!r}"
    if value is None:
        raise UsageError(
            "no Xandr member id",
            hint="pass --member-id N or set BULKCTL_XANDR_MEMBER_ID",
        )
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise UsageError(f"the member id from {origin} must be a positive integer, not {text!r}")
    return int(text)

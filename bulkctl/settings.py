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


# Every key a `[profiles.NAME]` table may hold; any other is a typo worth a warning.
PROFILE_KEYS = frozenset(
    {
        "target",
        "endpoint",
        "region",
        "write_key",
        "write_key_file",
        "xandr_username",
        "xandr_password",
        "xandr_password_file",
        "xandr_member_id",
    }
)


@dataclass(frozen=True)
class Profile:
    """One `[profiles.NAME]` table of the config file."""

    name: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the config file it came from
    origin: str = "none"  # how it was chosen: --profile, env BULKCTL_PROFILE, default

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def source(self, key: str) -> str:
        """Where `key` came from, for `bulkctl config` and `-v`: the profile and its file."""
        return f"profile {self.name!r}: {key} in {self.path}"


def profile_choice(flag: str | None) -> tuple[str | None, str]:
    """The profile asked for and who asked: `--profile`, then `BULKCTL_PROFILE`."""
    if flag:
        return flag, "--profile"
    env = os.environ.get("BULKCTL_PROFILE")
    if env:
        return env, "env BULKCTL_PROFILE"
    return None, "default"


def config_origin() -> str:
    """Where the config file's path came from."""
    return "env BULKCTL_CONFIG" if os.environ.get("BULKCTL_CONFIG") else "default"


def load_profile(name: str | None, console: Console) -> Profile:
    """The chosen profile (`--profile`, `BULKCTL_PROFILE`, else `default` when present).

    Warns about what would otherwise be silently ignored: a `BULKCTL_CONFIG` that names no
    file, and keys no profile can hold (a typo such as `endpont`), naming the key and file.
    """
    name, origin = profile_choice(name)
    path = config_file()
    if not path.exists():
        if name:
            raise UsageError(f"profile {name!r} asked for, but there is no config file at {path}")
        if os.environ.get("BULKCTL_CONFIG"):
            console.warn(f"BULKCTL_CONFIG names {path}, which does not exist: no profile is used")
        console.detail(f"profile: none (no config file at {path})")
        return Profile()
    profiles = _read_profiles(path, console)
    if name is None:
        name = "default" if "default" in profiles else None
        if name is None:
            console.detail(f"profile: none ({path} has no [profiles.default])")
            return Profile(path=path)
    if name not in profiles or not isinstance(profiles[name], dict):
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no profile {name!r} in {path} (profiles: {known})")
    values = profiles[name]
    if "write_key" in values:
        _warn_if_readable(path, console, "holds a write key")
    elif "xandr_password" in values:
        _warn_if_readable(path, console, "holds a password")
    console.detail(f"profile: {name!r} from {path} (chosen by {origin})")
    return Profile(name, dict(values), path, origin)


def _read_profiles(path: Path, console: Console) -> dict[str, Any]:
    """The `profiles` table of the config file, with a warning for each unknown key."""
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
    for key in data:
        if key != "profiles":
            console.warn(
                f"{path}: unknown key {key!r} ignored (settings go in [profiles.NAME] tables)"
            )
    for profile_name, values in profiles.items():
        if not isinstance(values, dict):
            continue
        for key in values:
            if key not in PROFILE_KEYS:
                console.warn(
                    f"{path}: unknown key {key!r} in [profiles.{profile_name}] ignored"
                    f"{_did_you_mean(key)}"
                )
    return profiles


def _did_you_mean(key: str) -> str:
    from difflib import get_close_matches

    close = get_close_matches(key, sorted(PROFILE_KEYS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_write_key(key_file: Path | None, profile: Profile, console: Console) -> Secret:
    """The write key, from the first source that has one, or a CredentialsError (exit 3)."""
    found = find_write_key(key_file, profile, console)
    if found is None:
        raise CredentialsError(
            "no write key found",
            hint="pass --write-key-file PATH, set BULKCTL_WRITE_KEY, or add write_key_file to "
            "a [profiles.NAME] table of the config file",
        )
    key, origin = found
    console.detail(f"write key: from {origin}")
    return key


def find_write_key(
    key_file: Path | None, profile: Profile, console: Console
) -> tuple[Secret, str] | None:
    """The write key and where it came from, or None; an unreadable file is an error."""
    if key_file is not None:
        origin = f"--write-key-file {key_file}"
        return _read_key_file(key_file, console, "--write-key-file"), origin
    env = os.environ.get("BULKCTL_WRITE_KEY")
    if env:
        return Secret(env.strip()), "env BULKCTL_WRITE_KEY"
    if profile.get("write_key_file"):
        path = Path(str(profile.get("write_key_file"))).expanduser()
        key = _read_key_file(path, console, f"profile {profile.name!r}")
        return key, f"{profile.source('write_key_file')}: {path}"
    if profile.get("write_key"):
        return Secret(str(profile.get("write_key")).strip()), profile.source("write_key")
    return None


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


NOWHERE = "nowhere"  # the origin of a setting no source gives


@dataclass(frozen=True)
class Sourced:
    """A setting's value and where it came from: a flag, env VAR, a profile, or default."""

    value: str | None
    origin: str


def resolve_endpoint(
    flag: str | None,
    region: str | None,
    profile: Profile,
    hosts: dict[str, str] = SEGMENT_BULK_HOSTS,
    console: Console | None = None,
) -> str:
    """`--endpoint`, then `BULKCTL_ENDPOINT`, then the profile, then the region's public host.

    `hosts` maps the target's regions to its public hosts, the first being the default; a
    target without regions has one entry under "".
    """
    endpoint = endpoint_source(flag, region, profile, hosts)
    if console is not None:
        console.detail(f"endpoint: {endpoint.value} (from {endpoint.origin})")
    return str(endpoint.value)


def endpoint_source(
    flag: str | None, region: str | None, profile: Profile, hosts: dict[str, str]
) -> Sourced:
    """The endpoint `resolve_endpoint` picks, with its origin."""
    for value, origin in (
        (flag, "--endpoint"),
        (os.environ.get("BULKCTL_ENDPOINT"), "env BULKCTL_ENDPOINT"),
        (profile.get("endpoint"), profile.source("endpoint")),
    ):
        if value:
            return Sourced(str(value).rstrip("/"), origin)
    chosen = region_source(region, profile, hosts)
    if chosen.value is None:
        return Sourced(hosts[""], "default: the target's public host")
    return Sourced(hosts[chosen.value], f"default: the public host for region {chosen.value}")


def region_source(region: str | None, profile: Profile, hosts: dict[str, str]) -> Sourced:
    """`--region`, then the profile's `region`, then the target's first (None: no regions)."""
    if "" in hosts:
        if region:
            raise UsageError(f"--region {region!r}: this target has no regions")
        return Sourced(None, "default: the target has no regions")
    if region:
        chosen = Sourced(region, "--region")
    elif profile.get("region"):
        chosen = Sourced(str(profile.get("region")), profile.source("region"))
    else:
        chosen = Sourced(next(iter(hosts)), "default")
    if chosen.value not in hosts:
        raise UsageError(f"--region {chosen.value!r}: choose one of {', '.join(hosts)}")
    return chosen


def resolve_xandr_login(profile: Profile, console: Console) -> XandrLogin:
    """The Xandr user name and password, from the environment or the profile (exit 3 if none)."""
    username = xandr_username(profile)
    password = find_xandr_password(profile, console)
    if username.value is None or password is None:
        missing = "user name" if username.value is None else "password"
        raise CredentialsError(
            f"no Xandr {missing} found",
            hint="set BULKCTL_XANDR_USERNAME and BULKCTL_XANDR_PASSWORD, or add xandr_username "
            "and xandr_password_file to a [profiles.NAME] table of the config file",
        )
    console.detail(
        f"Xandr login: user {username.value!r} (from {username.origin}), "
        f"password from {password[1]}"
    )
    return XandrLogin(username.value, password[0])


def xandr_username(profile: Profile) -> Sourced:
    """`BULKCTL_XANDR_USERNAME`, then the profile's `xandr_username` (value None: neither)."""
    env = os.environ.get("BULKCTL_XANDR_USERNAME")
    if env:
        return Sourced(env.strip(), "env BULKCTL_XANDR_USERNAME")
    if profile.get("xandr_username"):
        return Sourced(str(profile.get("xandr_username")).strip(), profile.source("xandr_username"))
    return Sourced(None, NOWHERE)


def find_xandr_password(profile: Profile, console: Console) -> tuple[Secret, str] | None:
    """The Xandr password and where it came from, or None."""
    env_password = os.environ.get("BULKCTL_XANDR_PASSWORD")
    if env_password:
        return Secret(env_password), "env BULKCTL_XANDR_PASSWORD"
    if profile.get("xandr_password_file"):
        path = Path(str(profile.get("xandr_password_file"))).expanduser()
        password = _read_key_file(path, console, f"profile {profile.name!r}", "password")
        return password, f"{profile.source('xandr_password_file')}: {path}"
    if profile.get("xandr_password"):
        return Secret(str(profile.get("xandr_password"))), profile.source("xandr_password")
    return None


def resolve_member_id(flag: int | None, profile: Profile) -> int:
    """`--member-id`, then `BULKCTL_XANDR_MEMBER_ID`, then the profile's `xandr_member_id`."""
    found = member_id_source(flag, profile)
    if found.value is None:
        raise UsageError(
            "no Xandr member id",
            hint="pass --member-id N or set BULKCTL_XANDR_MEMBER_ID",
        )
    return int(found.value)


def member_id_source(flag: int | None, profile: Profile) -> Sourced:
    """The member id and its origin (value None: none given); a bad one is a usage error."""
    value: object = flag
    origin = "--member-id"
    if value is None and os.environ.get("BULKCTL_XANDR_MEMBER_ID"):
        value, origin = os.environ["BULKCTL_XANDR_MEMBER_ID"].strip(), "env BULKCTL_XANDR_MEMBER_ID"
    if value is None and profile.get("xandr_member_id") is not None:
        value, origin = profile.get("xandr_member_id"), profile.source("xandr_member_id")
    if value is None:
        return Sourced(None, NOWHERE)
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise UsageError(f"the member id from {origin} must be a positive integer, not {text!r}")
    return Sourced(str(int(text)), origin)

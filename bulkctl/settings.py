"""Where push settings come from: flags, then environment, then a config profile.

The only place that merges those sources, and it names no target: each target declares the
values it reads as `SettingSpec`s (its write key or API key, a login, a member id) and its
public hosts, and the functions here resolve any of them in one documented order. A secret:
its `--…-file` flag, then its environment variable, then the profile's `KEY_file` or `KEY`. A
plain value: its flag, then its environment variable, then the profile's `KEY`. A secret is
held in a `Secret`, whose repr never shows it, and config parse errors are reported by
position only, because the offending text could be the key.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulkctl.console import Console
from bulkctl.errors import CredentialsError, UsageError
from bulkctl.paths import config_file


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
class SettingSpec:
    """One value a target reads from a flag, the environment or the config profile.

    `key` is its name in a `[profiles.NAME]` table and in `bulkctl config`. `kind`: a
    "secret" (never shown; may also be given as a file: `file_flag`, or the profile's
    `KEY_file`), a "login" name (shown; like a secret, missing it is exit 3), or a plain
    "value" (missing it is a usage error). `check` turns a plain value into its canonical
    text or raises ValueError saying what it must be.
    """

    key: str  # "write_key", "xandr_member_id"
    label: str  # "write key", "Xandr member id": how messages name it
    env: str  # "BULKCTL_WRITE_KEY"
    kind: Literal["secret", "login", "value"] = "secret"
    file_flag: str | None = None  # "--write-key-file"
    flag: str | None = None  # "--member-id": a plain value's own option
    hint: str = ""  # where to put it, for the error when none is found
    check: Callable[[str], str] | None = None

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    @property
    def credential(self) -> bool:
        """A secret or a login: what the embedded sandbox replaces with its own."""
        return self.kind != "value"

    @property
    def profile_keys(self) -> tuple[str, ...]:
        return (self.key, f"{self.key}_file") if self.secret else (self.key,)


@dataclass(frozen=True)
class SandboxCredentials:
    """Throwaway values for an embedded sandbox: the user's real credentials never go there."""

    values: dict[str, Secret]

    @classmethod
    def random(cls, specs: Iterable[SettingSpec]) -> SandboxCredentials:
        return cls(
            {
                spec.key: Secret(f"sandbox{secrets.token_hex(16)}")
                for spec in specs
                if spec.credential
            }
        )

    def get(self, key: str) -> Secret:
        return self.values[key]


# The keys of a `[profiles.NAME]` table that belong to no one target; each target adds its
# specs' keys (`bulkctl.targets.profile_keys`), and any other key is a typo worth a warning.
GENERAL_PROFILE_KEYS = frozenset({"target", "endpoint", "region"})


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


def load_profile(
    name: str | None, console: Console, known: frozenset[str] = GENERAL_PROFILE_KEYS
) -> Profile:
    """The chosen profile (`--profile`, `BULKCTL_PROFILE`, else `default` when present).

    Warns about what would otherwise be silently ignored: a `BULKCTL_CONFIG` that names no
    file, and keys no profile can hold (`known`; a typo such as `endpont`), naming the key and
    file.
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
    profiles = _read_profiles(path, console, known)
    if name is None:
        name = "default" if "default" in profiles else None
        if name is None:
            console.detail(f"profile: none ({path} has no [profiles.default])")
            return Profile(path=path)
    if name not in profiles or not isinstance(profiles[name], dict):
        names = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no profile {name!r} in {path} (profiles: {names})")
    values = profiles[name]
    if any(_looks_secret(key) for key in values):
        _warn_if_readable(path, console, "holds a secret")
    console.detail(f"profile: {name!r} from {path} (chosen by {origin})")
    return Profile(name, dict(values), path, origin)


def _looks_secret(key: str) -> bool:
    return key.endswith(("key", "password", "token")) and not key.endswith("_file")


def _read_profiles(path: Path, console: Console, known: frozenset[str]) -> dict[str, Any]:
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
            if key not in known:
                console.warn(
                    f"{path}: unknown key {key!r} in [profiles.{profile_name}] ignored"
                    f"{_did_you_mean(key, known)}"
                )
    return profiles


def _did_you_mean(key: str, known: frozenset[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_secret(
    spec: SettingSpec, key_file: Path | None, profile: Profile, console: Console
) -> Secret:
    """The secret of `spec`, from the first source that has one, or a CredentialsError (exit 3)."""
    found = find_secret(spec, key_file, profile, console)
    if found is None:
        raise CredentialsError(f"no {spec.label} found", hint=spec.hint or None)
    value, origin = found
    console.detail(f"{spec.label}: from {origin}")
    return value


def find_secret(
    spec: SettingSpec, key_file: Path | None, profile: Profile, console: Console
) -> tuple[Secret, str] | None:
    """The secret of `spec` and where it came from, or None; an unreadable file is an error.

    `key_file` is what its `file_flag` gave (None: not given).
    """
    if key_file is not None:
        origin = f"{spec.file_flag} {key_file}"
        return _read_key_file(key_file, console, str(spec.file_flag), spec.label), origin
    env = os.environ.get(spec.env)
    if env:
        return Secret(env.strip()), f"env {spec.env}"
    file_key = f"{spec.key}_file"
    if profile.get(file_key):
        path = Path(str(profile.get(file_key))).expanduser()
        value = _read_key_file(path, console, f"profile {profile.name!r}", spec.label)
        return value, f"{profile.source(file_key)}: {path}"
    if profile.get(spec.key):
        return Secret(str(profile.get(spec.key)).strip()), profile.source(spec.key)
    return None


def find_value(spec: SettingSpec, flag: object, profile: Profile) -> Sourced:
    """A plain value of `spec` and its origin (value None: none given); a bad one: UsageError."""
    value: object = flag
    origin = str(spec.flag)
    if value is None and os.environ.get(spec.env):
        value, origin = os.environ[spec.env].strip(), f"env {spec.env}"
    if value is None and profile.get(spec.key) is not None:
        value, origin = profile.get(spec.key), profile.source(spec.key)
    if value is None:
        return Sourced(None, NOWHERE)
    text = str(value).strip()
    if spec.check is not None:
        try:
            text = spec.check(text if not isinstance(value, bool) else "")
        except ValueError as exc:
            raise UsageError(f"the {spec.label} from {origin} {exc}, not {text!r}") from None
    return Sourced(text, origin)


def _read_key_file(path: Path, console: Console, origin: str, what: str) -> Secret:
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
    hosts: dict[str, str],
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

"""Configuration you can see (issue 11 item 12): warnings for what was silently ignored,
`bulkctl config` with where each setting came from, `-v` naming what a push used — and no
secret ever printed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from helpers import SandboxProcess, write_ndjson

KEY = "wk_Secret_7f3a91"
PASSWORD = "xandr-Pw-55e0c2"
RECORDS = [{"id": "1", "collection": "rooms", "properties": {"beds": 2}}]


def config_path() -> Path:
    return Path(os.environ["BULKCTL_CONFIG"])


def write_config(text: str) -> Path:
    path = config_path()
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def fields(text: str) -> dict[str, str]:
    """`bulkctl config`'s lines as label -> shown value (label and value: two spaces apart)."""
    pairs = (line.split("  ", 1) for line in text.splitlines())
    return {label: value.strip() for label, value in pairs}


def records(tmp_path: Path) -> Path:
    return write_ndjson(tmp_path / "rooms.ndjson", RECORDS)


def test_a_missing_bulkctl_config_file_is_warned_about(cli: Any, tmp_path: Path) -> None:
    """BULKCTL_CONFIG naming no file: the push goes on, with a warning naming the file."""
    missing = tmp_path / "typo" / "config.toml"
    result = cli(["push", records(tmp_path), "--dry-run"], env={"BULKCTL_CONFIG": str(missing)})
    assert result.exit_code == 0, result.stderr
    assert f"warning: BULKCTL_CONFIG names {missing}, which does not exist" in result.stderr


def test_unknown_keys_are_warned_about_with_key_and_file(cli: Any, tmp_path: Path) -> None:
    """`endpont` (and a stray top-level key) get a warning naming key, table, file and a fix."""
    path = write_config('colour = "blue"\n[profiles.default]\nendpont = "http://127.0.0.1:9"\n')
    result = cli(["push", records(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert (
        f"{path}: unknown key 'endpont' in [profiles.default] ignored (did you mean 'endpoint'?)"
        in result.stderr
    )
    assert f"{path}: unknown key 'colour' ignored" in result.stderr
    shown = cli(["config"])
    assert "unknown key 'endpont'" in shown.stderr


def test_config_says_where_each_setting_came_from(cli: Any, tmp_path: Path) -> None:
    """Flag, env, profile and default each show as the origin of the setting they gave."""
    path = write_config(
        '[profiles.ci]\nendpoint = "http://from-profile.test"\nregion = "eu"\n'
        f'write_key = "{KEY}"\n'
    )
    by_profile = cli(["config", "--profile", "ci"])
    assert by_profile.exit_code == 0, by_profile.stderr
    lines = fields(by_profile.stdout)
    assert lines["profile"] == "ci (from --profile)"
    assert lines["target"] == "segment-bulk (from default)"
    assert lines["endpoint"] == f"http://from-profile.test (from profile 'ci': endpoint in {path})"
    assert lines["region"] == f"eu (from profile 'ci': region in {path})"
    assert lines["write key"] == f"set (from profile 'ci': write_key in {path})"

    env = {"BULKCTL_ENDPOINT": "http://from-env.test", "BULKCTL_PROFILE": "ci"}
    by_env = json.loads(cli(["config", "--json"], env=env).stdout)
    assert by_env["endpoint"] == {"value": "http://from-env.test", "from": "env BULKCTL_ENDPOINT"}
    assert by_env["profile"] == {"value": "ci", "from": "env BULKCTL_PROFILE"}

    flags = ["config", "--json", "--endpoint", "http://from-flag.test", "--region", "us"]
    by_flag = json.loads(cli(flags, env=env).stdout)
    assert by_flag["endpoint"] == {"value": "http://from-flag.test", "from": "--endpoint"}
    assert by_flag["region"] == {"value": "us", "from": "--region"}

    write_config("")
    default = json.loads(cli(["config", "--json"]).stdout)
    assert default["endpoint"]["value"] == "https://objects-bulk-api.segmentapis.com"
    assert default["endpoint"]["from"].startswith("default")
    assert default["write_key"] == {"value": None, "from": None}
    assert default["config_file"] == {"value": str(path), "from": "env BULKCTL_CONFIG"}


def test_config_never_shows_a_secret(cli: Any, tmp_path: Path) -> None:
    """Write keys and passwords from env, file and profile: only "set (from …)", text or JSON."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "-file\n")
    key_file.chmod(0o600)
    write_config(
        f'[profiles.default]\nwrite_key = "{KEY}-profile"\nxandr_username = "me"\n'
        f'xandr_password = "{PASSWORD}-profile"\n'
    )
    runs = [
        (["config"], {}),
        (["config", "--json"], {"BULKCTL_WRITE_KEY": KEY + "-env"}),
        (["config", "--write-key-file", key_file], {"BULKCTL_WRITE_KEY": KEY + "-env"}),
        (["config", "--target", "xandr-bss"], {}),
        (["config", "--target", "xandr-bss", "--json"], {"BULKCTL_XANDR_PASSWORD": PASSWORD}),
    ]
    for args, env in runs:
        result = cli(args, env=env)
        assert result.exit_code == 0, (args, result.stderr)
        assert "set (from" in result.stdout or '"value":"set"' in result.stdout, args
        for secret in (KEY, PASSWORD):
            assert secret not in result.stdout + result.stderr, args
    xandr = json.loads(cli(["config", "--target", "xandr-bss", "--json"]).stdout)
    assert xandr["xandr_password"]["value"] == "set"
    assert xandr["xandr_username"]["value"] == "me"


def test_verbose_push_names_profile_endpoint_and_key_source(cli: Any, tmp_path: Path) -> None:
    """`push -v` says which profile, endpoint and key source it used; never the key."""
    with SandboxProcess(tmp_path / "wh.sqlite3", write_key=KEY) as sandbox:
        path = write_config(f'[profiles.ci]\nendpoint = "{sandbox.url}"\nwrite_key = "{KEY}"\n')
        result = cli(["push", records(tmp_path), "--profile", "ci", "-v"])
    assert result.exit_code == 0, result.stderr
    assert f"profile: 'ci' from {path} (chosen by --profile)" in result.stderr
    assert f"endpoint: {sandbox.url} (from profile 'ci': endpoint in {path})" in result.stderr
    assert f"write key: from profile 'ci': write_key in {path}" in result.stderr
    assert KEY not in result.stderr + result.stdout


def test_config_json_on_a_broken_file_is_one_object(cli: Any) -> None:
    """A config file that is not TOML: exit 2, one JSON object naming the file, no secret."""
    path = write_config(f'[profiles.default]\nwrite_key = "{KEY}\n')
    result = cli(["config", "--json"])
    assert result.exit_code == 2
    shown = json.loads(result.stdout)
    assert list(shown) == ["error"]
    assert f"the config file {path} is not valid TOML" in shown["error"]
    assert KEY not in result.stdout + result.stderr

"""The `bulkctl sandbox` banner says which write key to use, and following it literally works.

`push` always wants a write key; a sandbox without `--write-key` takes any, so its banner
prints an `export BULKCTL_WRITE_KEY=…` line beside the endpoint's. A sandbox with `--write-key`
names where the key comes from and never prints the key itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers import SandboxProcess, base_env, run_bulkctl, write_ndjson

ROOMS = [
    {"id": "1", "collection": "rooms", "properties": {"name": "Attic"}},
    {"id": "2", "collection": "rooms", "properties": {"name": "Cellar"}},
]
_EXPORT = re.compile(r"^export (BULKCTL_[A-Z_]+)=(\S+)$")


def exports(lines: list[str]) -> dict[str, str]:
    """The banner's `export NAME=VALUE` lines, as a shell would set them."""
    found = (_EXPORT.match(line) for line in lines)
    return {m[1]: m[2] for m in found if m}


def test_a_push_set_up_from_the_banner_alone_lands(tmp_path: Path) -> None:
    """Without --write-key: the banner's exports are all a push needs; 'any key works'."""
    path = write_ndjson(tmp_path / "rooms.ndjson", ROOMS)
    with SandboxProcess(tmp_path / "warehouse.sqlite3") as sandbox:
        banner = sandbox.wait_for_line("^Ctrl-C to stop$")
        settings = exports(banner)
        result = run_bulkctl(["push", path, "--json"], env=base_env(**settings))
        objects = run_bulkctl(
            ["push", path, "--target", "segment-objects", "--json"], env=base_env(**settings)
        )
    assert f"bulkctl sandbox: Segment Objects API (POST /v1/set) at {sandbox.url}" in banner
    assert objects.returncode == 0, objects.stderr
    assert set(settings) == {"BULKCTL_ENDPOINT", "BULKCTL_WRITE_KEY"}, banner
    assert settings["BULKCTL_ENDPOINT"] == sandbox.url
    assert result.returncode == 0, result.stderr
    assert "auth: any write key works (pass --write-key to require one)" in banner
    assert not any("auth: none" in line for line in banner)


def test_a_required_key_is_named_but_never_printed(tmp_path: Path) -> None:
    """With --write-key: no key export (the banner would leak it); the auth line says which."""
    key = "wk_banner_secret_123"
    with SandboxProcess(tmp_path / "warehouse.sqlite3", write_key=key) as sandbox:
        banner = sandbox.wait_for_line("^Ctrl-C to stop$")
    assert set(exports(banner)) == {"BULKCTL_ENDPOINT"}, banner
    assert any(
        line.startswith("auth: Basic, the --write-key value") and "BULKCTL_WRITE_KEY" in line
        for line in banner
    )
    assert key not in "\n".join(sandbox.stderr_lines)


def test_quiet_keeps_the_key_export(tmp_path: Path) -> None:
    """--quiet prints only what a script needs: the URLs and both exports."""
    with SandboxProcess(tmp_path / "warehouse.sqlite3", "--quiet") as sandbox:
        banner = sandbox.wait_for_line("^export BULKCTL_WRITE_KEY=")
    assert set(exports(banner)) == {"BULKCTL_ENDPOINT", "BULKCTL_WRITE_KEY"}, banner

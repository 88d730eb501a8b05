"""Help fits a terminal (issue 11 item 9): every `--help` at 80 and 120 columns, whole values,
reflowed descriptions, one style of notes, panels, examples and exit codes."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from typer.main import get_command

from bulkctl.cli import app
from bulkctl.cli.helpformat import EXIT_MEANINGS
from bulkctl.errors import ExitStatus

WIDTHS = (80, 120)
# What Typer's own renderer showed: type names, ranges, markup escapes, two env-var styles.
NOT_SHOWN = (
    "…",
    "<bool>",
    "<str>",
    "<int>",
    "<float",
    "<list",
    "<path>",
    " range>",
    "\\[",
    "[env var:",
    "(env ",
    "`",
    "{",
)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, (*path, name)))
    return found


COMMANDS = _commands(get_command(app))
IDS = [" ".join(path) or "bulkctl" for path, _ in COMMANDS]


def render(cli: Any, path: tuple[str, ...], width: int) -> str:
    result = cli([*path, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def rows(panel: str) -> list[str]:
    """The lines inside a panel's box."""
    return [line for line in panel.splitlines() if line.startswith("│")]


def description_lines(text: str) -> list[str]:
    """The lines above the first panel (usage and description), without their padding."""
    head = text.split("╭", 1)[0]
    return [line.strip() for line in head.splitlines()]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_fits_and_shows_values_whole(cli: Any, path: Any, command: Any, width: int) -> None:
    """No line wider than the terminal, nothing cut with "…", no `<type>`, one note style."""
    text = render(cli, path, width)
    for line in text.splitlines():
        assert len(line) <= width, line
    for bad in NOT_SHOWN:
        assert bad not in text, bad
    flat = " ".join(text.replace("│", " ").split())
    for param in command.params:
        for name in (*param.opts, *getattr(param, "secondary_opts", [])):
            if name.startswith("-"):
                assert re.search(rf"(^|[\s,]){re.escape(name)}([\s,]|$)", flat), name
        for bracket in ("env:", "default:"):
            assert f"[{bracket.replace(':', '')} " not in flat


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_descriptions_are_reflowed(cli: Any, path: Any, command: Any, width: int) -> None:
    """A description line ends only where the next word would not have fitted: no hard breaks."""
    lines = description_lines(render(cli, path, width))
    for line, after in itertools.pairwise(lines):
        if line and after and not line.startswith("Usage:"):
            assert len(line) + 1 + len(after.split()[0]) > width - 2, (line, after)


def test_push_help_has_panels_examples_and_exit_codes(cli: Any) -> None:
    """push groups its options (input, target, sending, output) and ends with examples and codes."""
    text = render(cli, ("push",), 80)
    titles = re.findall(r"╭─ (.+?) ─", text)
    assert titles == [
        "Input",
        "Target and credentials",
        "Sending",
        "xandr-bss options",
        "segment-objects options",
        "Output",
        "Examples",
        "Exit codes",
    ]
    panel = dict(zip(titles, re.split(r"╭─ .+? ─+╮", text)[1:], strict=True))
    assert "--format FORMAT" in panel["Input"] and "--on-invalid fail|skip" in panel["Input"]
    assert "--endpoint URL" in panel["Target and credentials"]
    assert "--allow-insecure-http" in panel["Target and credentials"]
    assert "--concurrency N" in panel["Sending"] and "--wait / --no-wait" in panel["Sending"]
    assert "--json" in panel["Output"] and "-h, --help" in panel["Output"]
    examples = [line.strip("│ ").split("  ")[0] for line in rows(panel["Examples"])]
    assert 3 <= len([e for e in examples if e.startswith(("bulkctl", "dump"))]) <= 4
    assert "bulkctl push rooms.ndjson" in examples
    codes = [line.strip("│ ").split()[0] for line in rows(panel["Exit codes"])]
    assert codes == ["0", "1", "2", "3", "4", "5", "6", "130"]
    assert "[env: BULKCTL_ENDPOINT]" in text and "[default: 4; 8 for segment-objects]" in text


def test_every_exit_status_has_a_meaning() -> None:
    """The exit codes the help lists are the contract's (CLI.md), each with its meaning."""
    assert {int(status) for status in ExitStatus} <= set(EXIT_MEANINGS)
    assert set(EXIT_MEANINGS) == {0, 1, 2, 3, 4, 5, 6, 130}


def test_help_is_plain_off_a_terminal_and_coloured_when_forced(cli: Any) -> None:
    """Piped help has no escape codes; FORCE_COLOR gives colour (as before)."""
    plain = render(cli, ("push",), 80)
    assert "\x1b[" not in plain
    forced = cli(["push", "--help"], env={"COLUMNS": "80", "FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[" in forced.stdout


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_is_in_a_named_panel(cli: Any, path: Any, command: Any) -> None:
    """-h/--help closes a panel of options, never the Arguments panel."""
    text = render(cli, path, 120)
    titles = re.findall(r"╭─ (.+?) ─", text)
    panels = dict(zip(titles, re.split(r"╭─ .+? ─+╮", text)[1:], strict=True))
    holding_help = [title for title, body in panels.items() if "-h, --help" in body]
    assert len(holding_help) == 1
    assert holding_help[0] != "Arguments"

"""Start-up stays lean (issue 7): what `--help`, `--version` and plain commands import.

Each check runs in a fresh interpreter and looks at `sys.modules`, never at a clock: the
timings live in `bench/run.py --only startup`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers import base_env
from hypothesis import given, settings
from hypothesis import strategies as st
from typer._coercion import build_runtime_param
from typer.main import get_command

from bulkctl.cli import app
from bulkctl.cli.lean import Command, Group, PlainCoercion

# Run `bulkctl ARGS` in-process, then print the exit status and every module name loaded.
_LOADED = """
import io, json, sys
from contextlib import redirect_stderr, redirect_stdout
from bulkctl.cli import run
with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
    code = run(sys.argv[1:])
print(json.dumps([code, sorted(sys.modules)]))
"""
# Modules no help or version output needs; each costs tens of milliseconds.
HEAVY = (
    "pydantic",
    "pydantic_core",
    "markdown_it",
    "pygments",
    "rich.markdown",
    "rich.traceback",
    "httpx",
    "orjson",
    "bulkctl.sandbox",
    "bulkctl.run.inputs",
)
HELP = [
    ["--help"],
    ["-h"],
    ["push", "--help"],
    ["validate", "--help"],
    ["status", "--help"],
    ["resume", "--help"],
    ["jobs", "--help"],
    ["sandbox", "--help"],
    ["sandbox", "show", "--help"],
    ["config", "--help"],
    ["completion", "--help"],
]


def loaded(args: list[str]) -> tuple[int, set[str]]:
    """Exit status of `bulkctl ARGS` and the modules it loaded, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        capture_output=True,
        text=True,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        check=True,
    )
    code, modules = json.loads(done.stdout)
    return code, set(modules)


def heavy(modules: set[str]) -> list[str]:
    """The HEAVY modules (or their submodules) among `modules`."""
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


@pytest.mark.parametrize("args", HELP, ids=" ".join)
def test_help_loads_no_heavy_module(args: list[str]) -> None:
    """Every `--help` renders without pydantic, markdown/pygments, httpx, orjson or the core."""
    code, modules = loaded(args)
    assert code == 0
    assert heavy(modules) == []


def test_version_loads_neither_rich_nor_pydantic() -> None:
    """`--version` prints from the app alone: no rich, no pydantic."""
    code, modules = loaded(["--version"])
    assert code == 0
    assert sorted(m for m in modules if m.startswith(("rich", "pydantic"))) == []


def test_plain_commands_do_not_load_pydantic(tmp_path: Path) -> None:
    """Running `status`, `jobs` and `validate` with plain values converts them without pydantic."""
    records = tmp_path / "r.ndjson"
    records.write_text('{"id": "1", "collection": "rooms", "properties": {"a": 1}}\n')
    runs = [
        (["status", "--interval", "1.5", "--timeout", "3", "last"], 2),  # no job yet
        (["jobs", "--limit", "3", "--json"], 0),
        (["validate", str(records), "--workers", "1", "--type", "a=int", "--json"], 0),
    ]
    for args, expected in runs:
        code, modules = loaded(args)
        assert code == expected, args
        assert sorted(m for m in modules if m.startswith("pydantic")) == [], args


def test_bad_values_keep_typer_messages(cli: Any) -> None:
    """A value the plain conversion declines gets Typer's own message and exit status 2."""
    bad_number = cli(["status", "--interval", "abc", "last"])
    assert bad_number.exit_code == 2
    assert "Invalid value for '--interval': Input should be a valid number" in bad_number.stderr
    below_bound = cli(["sandbox", "show", "--limit", "-1", "rooms"])
    assert below_bound.exit_code == 2
    assert "Input should be greater than or equal to 0" in below_bound.stderr


def _commands(command: Any) -> list[Any]:
    found = [command]
    for sub in getattr(command, "commands", {}).values():
        found.extend(_commands(sub))
    return found


def test_every_command_and_group_uses_the_lean_classes() -> None:
    """Each group is a lean Group and each command a lean Command (a new one must say cls=)."""
    commands = _commands(get_command(app))
    assert len(commands) >= 9
    for command in commands:
        expected = Group if getattr(command, "commands", None) is not None else Command
        assert isinstance(command, expected), command.name


def test_help_flags_default_to_false() -> None:
    """Every help flag defaults to False, so Typer never converts an absent one (via pydantic)."""
    for command in _commands(get_command(app)):
        option = command.get_help_option(typer.Context(command))
        assert option is not None and option.default is False, command.name


_PARAMS = {
    "int": ("push", "--concurrency"),
    "float": ("status", "--interval"),
    "str": ("push", "--target"),
    "list": ("push", "--type"),
    "bounded int": ("sandbox show", "--limit"),
    "path": ("push", "--rejects"),
}


def _param(where: str, option: str) -> tuple[Any, Any]:
    command: Any = get_command(app)
    for name in where.split():
        command = command.commands[name]
    param = next(p for p in command.params if option in p.opts)
    return param, typer.Context(command)


def _outcome(coercion: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        converted = coercion.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "error", exc.format_message()
    if isinstance(converted, float) and converted != converted:
        return "float", "nan"  # text such as 'nan' converts to a NaN, which equals nothing
    return type(converted).__name__, converted


_NUMERIC_TEXT = st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True)
_VALUES = st.one_of(
    st.none(),
    _NUMERIC_TEXT,
    st.text(max_size=12),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
)


@pytest.mark.parametrize("kind", sorted(_PARAMS))
@settings(max_examples=150, deadline=None)
@given(value=_VALUES)
def test_plain_conversion_matches_typer(kind: str, value: Any) -> None:
    """For any value, the plain conversion returns exactly what Typer's returns, or its error."""
    param, ctx = _param(*_PARAMS[kind])
    if isinstance(value, tuple) != bool(param.multiple or param.nargs == -1):
        return  # a shape Click never hands this parameter
    ours = PlainCoercion(param.type_descriptor, lambda: build_runtime_param(param.type_descriptor))
    typers = build_runtime_param(param.type_descriptor)
    assert _outcome(ours, value, param, ctx) == _outcome(typers, value, param, ctx)


_HELP_TEXT = """
import io, sys
from contextlib import redirect_stdout
if sys.argv[1] == "real":
    import rich.markdown, rich.traceback
from bulkctl.cli import run
out = io.StringIO()
with redirect_stdout(out):
    run(sys.argv[2:])
sys.stdout.write(out.getvalue())
"""


@pytest.mark.parametrize("args", [["--help"], ["push", "--help"]], ids=" ".join)
def test_help_is_the_same_as_with_the_real_rich_modules(args: list[str]) -> None:
    """The stand-ins for rich.markdown/rich.traceback change nothing in the help, colour or not."""
    for extra in ({}, {"FORCE_COLOR": "1", "COLUMNS": "100"}):
        env = base_env(**extra)
        if extra:
            env.pop("NO_COLOR", None)
        texts = [
            subprocess.run(
                [sys.executable, "-c", _HELP_TEXT, how, *args],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            for how in ("lean", "real")
        ]
        assert "Usage" in texts[0]
        assert texts[0] == texts[1]

"""`--help` as bulkctl renders it: two columns that fit 80 columns, panels, examples, exit codes.

Typer's renderer puts long names, short names, negative names, the type and the help in six
columns, so at 80 columns it cut values with "…", showed `<bool>` and `<list[str]>`, kept the
hard line breaks of docstrings and printed rich markup escapes and backticks as typed. Here an
option is one cell (`-f, --format FORMAT`, `--wait / --no-wait`), its help the other:

* Paragraphs are reflowed (single line breaks are spaces); `code` loses its backticks and is
  shown bold. Help is plain text, never markup, so `[default: …]` needs no escaping.
* A flag shows no type; an option its `metavar` (else its name in capitals).
* One style of notes after the help: `[env: VAR]`, `[default: X]`.
* Options are grouped by their `rich_help_panel`, in order of first use; options without one
  go under "Options", and `-h, --help` closes the last panel of options.
* An epilog made by `epilog()` becomes panels of two-column rows (examples, exit codes).

It needs only rich's console, panel, table and text: no markdown, no pygments, no pydantic.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

# What each exit status means (CLI.md); `epilog()` lists the ones a command can end with.
EXIT_MEANINGS = {
    0: "done; no record was rejected",
    1: "invalid input: a record rejected, or an input unreadable",
    2: "usage error (bad option or argument)",
    3: "credentials refused (401/403) or none found",
    4: "the API or the network failed, retries did not help",
    5: "the remote job failed, or the API rejected records later",
    6: "local state unusable (job store, spool directory)",
    130: "interrupted (Ctrl-C, SIGTERM)",
}
DEFAULT_PANEL = "Options"
ARGUMENTS_PANEL = "Arguments"
_CELL = "\t"  # separates the two cells of an epilog row
_CODE = re.compile(r"`([^`]+)`")
_STYLE_NAME = "bold cyan"
_STYLE_METAVAR = "yellow"
_STYLE_NOTE = "dim"
_STYLE_CODE = "bold"
_NAME_SHARE = 0.4  # the names column takes at most this share of the width
_EXAMPLE_ROOM = 32  # an example's command leaves this much of the width to what it does


def epilog(examples: Sequence[tuple[str, str]], exit_codes: Iterable[int]) -> str:
    """An epilog of examples (command, what it does) and exit codes, for `format_help`."""
    lines = ["Examples:", *(f"  {command}{_CELL}{what}" for command, what in examples), ""]
    lines.append("Exit codes:")
    lines.extend(f"  {code}{_CELL}{EXIT_MEANINGS[code]}" for code in exit_codes)
    return "\n".join(lines)


def reflow(text: str) -> list[str]:
    """The paragraphs of a docstring or help text, each on one line."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text).partition("\f")[0])
    return [" ".join(p.split()) for p in paragraphs if p.strip()]


def styled(text: str, style: str = "") -> Text:
    """Plain text (never markup) with `code` shown bold, without its backticks."""
    from rich.text import Text

    out = Text(style=style)
    last = 0
    for match in _CODE.finditer(text):
        out.append(text[last : match.start()])
        out.append(match.group(1), style=_STYLE_CODE)
        last = match.end()
    out.append(text[last:])
    return out


def option_names(param: Any) -> Text:
    """`-f, --format FORMAT`, `--wait / --no-wait`, `PATH...` for one parameter."""
    from rich.text import Text

    names = Text(no_wrap=True)
    if param.param_type_name == "argument":
        metavar = param.metavar or (param.name or "").upper()
        names.append(metavar + ("..." if param.nargs == -1 else ""), style=_STYLE_METAVAR)
        return names
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    names.append(", ".join(opts), style=_STYLE_NAME)
    secondary = getattr(param, "secondary_opts", [])
    if secondary:
        names.append(" / ")
        names.append(", ".join(secondary), style=_STYLE_NAME)
    if not getattr(param, "is_flag", False):
        metavar = param.metavar or (param.name or "").upper().replace("_", "-")
        names.append(f" {metavar}", style=_STYLE_METAVAR)
    return names


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """`[OPTIONS] JOB`, `[OPTIONS] [PATH]...`: a required argument bare, an optional one in [ ]."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            continue
        name = param.metavar or (param.name or "").upper()
        piece = name if param.required else f"[{name}]"
        pieces.append(piece + ("..." if param.nargs == -1 else ""))
    subcommands = getattr(command, "subcommand_metavar", None)
    if subcommands:
        pieces.append(subcommands)
    return pieces


def _default_note(param: Any) -> str | None:
    show = getattr(param, "show_default", None)
    if isinstance(show, str):
        return str(show)
    if show is False or param.default is None or param.required:
        return None
    default = param.default
    if getattr(param, "is_flag", False):
        secondary = getattr(param, "secondary_opts", [])
        if not secondary:
            return None  # a plain flag is off unless given
        return str((param.opts if default else secondary)[0])
    if isinstance(default, (list, tuple)):
        return ", ".join(str(d) for d in default) or None
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def option_help(param: Any) -> Text:
    """The help of one parameter, then `[env: VAR]` and `[default: X]`."""
    text = styled(" ".join(reflow(getattr(param, "help", None) or "")))
    envvar = param.envvar
    if envvar:
        text.append(f" [env: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]")
    default = _default_note(param)
    if default is not None:
        text.append(f" [default: {default}]", style=_STYLE_NOTE)
    if param.required and param.param_type_name != "argument":  # the usage line shows it
        text.append(" [required]", style=_STYLE_NOTE)
    return text


def _panels(params: Sequence[Any], help_option: Any) -> list[tuple[str, list[Any]]]:
    panels: dict[str, list[Any]] = {}
    loose: list[Any] = []
    for param in params:
        if getattr(param, "hidden", False) or param is help_option:
            continue
        panel = getattr(param, "rich_help_panel", None)
        if param.param_type_name == "argument" and not panel:
            panel = ARGUMENTS_PANEL
        if panel:
            panels.setdefault(panel, []).append(param)
        else:
            loose.append(param)
    ordered = list(panels.items())
    if loose:
        ordered.append((DEFAULT_PANEL, loose))
    if help_option is not None:
        if ordered and ordered[-1][0] != ARGUMENTS_PANEL:
            ordered[-1][1].append(help_option)
        else:
            ordered.append((DEFAULT_PANEL, [help_option]))
    return ordered


def _panel(
    title: str, rows: Sequence[tuple[Text, RenderableType]], names_width: int, fold: bool = False
) -> Any:
    from rich import box
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(no_wrap=not fold, overflow="fold", width=names_width)
    table.add_column(ratio=1)
    for names, help_text in rows:
        table.add_row(names, help_text)
    return Panel(table, title=title, title_align="left", border_style="dim", box=box.ROUNDED)


def _epilog_panels(text: str) -> list[tuple[str, list[tuple[Text, Text]]]]:
    panels: list[tuple[str, list[tuple[Text, Text]]]] = []
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            panels.append((line[:-1], []))
        elif line.strip() and panels:
            left, _, right = line.strip().partition(_CELL)
            panels[-1][1].append((styled(left, _STYLE_NAME), styled(right)))
    return panels


def _console() -> Any:
    from rich.console import Console

    width = os.environ.get("TERMINAL_WIDTH")  # as Typer's console: a fixed width if set
    force = bool(os.environ.get("FORCE_COLOR") or os.environ.get("PY_COLORS")) or None
    return Console(highlight=False, width=int(width) if width else None, force_terminal=force)


def format_help(command: Any, ctx: Any) -> None:
    """Print `command`'s help on standard output (the `--help` of every bulkctl command)."""
    from rich.padding import Padding
    from rich.text import Text

    console = _console()
    console.print(Padding(Text(command.get_usage(ctx), style="bold"), (1, 1, 0, 1)))
    paragraphs = reflow(command.help or "")
    for index, paragraph in enumerate(paragraphs):
        style = "" if index == 0 else _STYLE_NOTE
        console.print(Padding(styled(paragraph, style), (1, 1, 0, 1)))
    console.print()

    params = command.get_params(ctx)
    help_option = command.get_help_option(ctx)
    panels = _panels(params, help_option)
    cells = [(option_names(p), option_help(p)) for _, group in panels for p in group]
    widest = max((names.cell_len for names, _ in cells), default=0)
    names_width = min(widest, max(12, int((console.width - 8) * _NAME_SHARE)))
    for title, group in panels:
        option_rows = [(option_names(p), option_help(p)) for p in group]
        # A name wider than its share folds onto a second line rather than lose its end.
        console.print(_panel(title, option_rows, names_width, fold=widest > names_width))

    commands = getattr(command, "commands", None)
    if commands:
        rows: list[tuple[Text, RenderableType]] = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            first = (reflow(sub.help or "") or [""])[0]
            rows.append((Text(name, style=_STYLE_NAME, no_wrap=True), styled(first)))
        console.print(_panel("Commands", rows, max(len(name) for name in commands)))

    if command.epilog:
        for title, epilog_rows in _epilog_panels(command.epilog):
            longest = max(left.cell_len for left, _ in epilog_rows)
            width = min(longest, console.width - _EXAMPLE_ROOM)
            console.print(_panel(title, epilog_rows, width, fold=True))

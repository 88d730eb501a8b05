"""Shell completion scripts, generated from the app rather than written by hand.

`bulkctl completion SHELL` prints one; `python -m bulkctl.cli.completions DIR` writes all three
into DIR (the checked-in completions/), `--check DIR` fails when those copies differ (CI runs
it). The scripts call back into `bulkctl` with `_BULKCTL_COMPLETE` set, so completions follow
the commands and options of the installed version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SHELLS = {"bash": "bulkctl.bash", "zsh": "_bulkctl", "fish": "bulkctl.fish"}


def script(shell: str) -> str:
    """The completion script for one shell."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="bulkctl", complete_var="_BULKCTL_COMPLETE", shell=shell)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bulkctl.cli.completions",
        description="Write the shell completion scripts of bulkctl into DIR "
        f"({', '.join(SHELLS.values())}).",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="e.g. completions")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a script in DIR is missing or differs",
    )
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): argparse has said why
        return int(exc.code or 0)
    out: Path = args.dir
    stale = []
    for shell, name in SHELLS.items():
        path = out / name
        text = script(shell)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.stderr.write(
            f"stale completion scripts: {', '.join(stale)}; "
            "run: python -m bulkctl.cli.completions completions\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

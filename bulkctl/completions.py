"""Shell completion scripts, generated from the app rather than written by hand.

`python -m bulkctl.completions DIR` writes them; `--check DIR` fails when the checked-in
copies differ (CI runs it). The scripts call back into `bulkctl` with `_BULKCTL_COMPLETE`
set, so completions follow the commands and options of the installed version.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHELLS = {"bash": "bulkctl.bash", "zsh": "_bulkctl", "fish": "bulkctl.fish"}


def script(shell: str) -> str:
    """The completion script for one shell."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="bulkctl", complete_var="_BULKCTL_COMPLETE", shell=shell)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        sys.stderr.write("usage: python -m bulkctl.completions [--check] DIR\n")
        return 2
    out = Path(args[0])
    stale = []
    for shell, name in SHELLS.items():
        path = out / name
        text = script(shell)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.stderr.write(
            f"stale completion scripts: {', '.join(stale)}; "
            "run: python -m bulkctl.completions completions\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

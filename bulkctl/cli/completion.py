"""`bulkctl completion bash|zsh|fish`: print the shell completion script (see the README)."""

import sys
from typing import Annotated

import typer

from bulkctl.cli import app, complete
from bulkctl.cli.helpformat import epilog
from bulkctl.cli.lean import Command
from bulkctl.errors import UsageError

EXAMPLES = [
    ('eval "$(bulkctl completion bash)"', "In ~/.bashrc: complete bulkctl in bash."),
    ("bulkctl completion zsh > ~/.zfunc/_bulkctl", "zsh, with ~/.zfunc on $fpath."),
    ("bulkctl completion fish | source", "In ~/.config/fish/config.fish."),
]


@app.command(cls=Command, epilog=epilog(EXAMPLES, (0, 2)))
def completion(
    shell: Annotated[
        str,
        typer.Argument(
            metavar="SHELL",
            help="bash, zsh or fish.",
            show_default=False,
            autocompletion=complete.shells,
        ),
    ],
) -> None:
    """Print the completion script for a shell on standard output.

    The script asks the installed bulkctl for completions, so they follow its commands and
    options, and complete `--target`, `--format`, `--on-invalid` and job ids with their values.
    """
    from bulkctl.cli.completions import SHELLS, script

    if shell not in SHELLS:
        raise UsageError(f"completion {shell!r}: choose one of {', '.join(SHELLS)}")
    sys.stdout.write(script(shell).rstrip("\n") + "\n")
    sys.stdout.flush()

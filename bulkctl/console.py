"""Where words go: logs and progress to standard error, data to standard output.

One object holds the terminal facts (is stderr a terminal, colour, quiet/verbose) so commands
and tests agree on them; rich is imported only when a person is watching.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console as RichConsole


def _stderr() -> TextIO:
    return sys.stderr


@dataclass
class Console:
    """Logs on standard error; `info` is silenced by --quiet, `detail` needs --verbose."""

    quiet: bool = False
    verbose: bool = False
    progress: bool | None = None  # None: only when standard error is a terminal
    stream: TextIO = field(default_factory=_stderr)
    _rich: RichConsole | None = field(default=None, init=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    @property
    def show_progress(self) -> bool:
        if self.quiet:
            return False
        return self.progress if self.progress is not None else self.is_terminal

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(message)

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            self._write(message)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._write(f"bulkctl: warning: {message}")

    def _write(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    def rich(self) -> RichConsole:
        """A rich console on standard error, colourless unless it is a terminal."""
        if self._rich is None:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(
                file=self.stream,
                highlight=False,
                no_color="NO_COLOR" in os.environ or not self.is_terminal,
                force_terminal=self.is_terminal if self.progress else None,
                soft_wrap=False,
            )
        return self._rich

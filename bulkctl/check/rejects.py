"""The `--rejects` file: every rejected record as one NDJSON line, as CLI.md describes."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import IO

import orjson

from bulkctl.check.validate import Rejection
from bulkctl.errors import InputError
from bulkctl.exactjson import dumps


class RejectsFile:
    """Writes rejections as they happen, so a crash still leaves the ones found so far."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self.count = 0

    def __enter__(self) -> RejectsFile:
        if self.path is not None:
            try:
                self._handle = self.path.open("wb")
            except OSError as exc:
                raise InputError(
                    f"cannot write the rejects file {self.path}: {exc.strerror}"
                ) from exc
        return self

    def write(self, rejection: Rejection) -> None:
        self.count += 1
        if self._handle is not None:
            self._handle.write(
                dumps(rejection.as_dict(), default=repr, option=orjson.OPT_APPEND_NEWLINE)
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.close()

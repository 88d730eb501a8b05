"""A fresh session after one whose uploads' outcome stayed unknown (see `bulkctl.send.session`).

An upload sent whole that got no answer may still be applied later, after parts sent since;
so the session is ended with an error and every part goes again in a new one, at most
`MAX_SESSIONS` in all. Parts no longer on disk (`--stream` removes each once sent) cannot go
again: then the run fails, saying how `resume` sends the input in a new session.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from bulkctl.errors import ApiError
from bulkctl.pack.parts import Part
from bulkctl.send.retry import OutcomePending

MAX_SESSIONS = 3  # sessions one run may use when uploads' outcomes stay unknown


def fresh_start(
    exc: OutcomePending, ended: str, again: list[Part], number: int, rest: Iterable[Part]
) -> Iterable[Part]:
    """The parts for a fresh session after `exc`, or the error to raise when there is none."""
    lost = [part for part in again if not part.path.is_file()]
    if number >= MAX_SESSIONS:
        raise ApiError(
            f"{exc.message}, in {number} sessions in a row; each was ended with an error, "
            "so nothing was applied",
            hint="the API is not answering uploads in time: try again later, or with a "
            "smaller --part-size",
            status_code=exc.status_code,
            attempts=exc.attempts,
        ) from None
    if lost:
        raise ApiError(
            f"{exc.message}; session {ended} was ended with an error, so nothing of it is "
            f"applied; it cannot be sent again in a new session, because {len(lost)} part(s) "
            "already sent were removed from the spool (--stream removes each once sent)",
            hint="`bulkctl resume JOB` reads the input again and sends it in a new session",
            status_code=exc.status_code,
            attempts=exc.attempts,
        ) from None
    for part in again:  # what the fresh session learns about them starts afresh
        part.part_id = None
        part.attempts = 0
    ordered = sorted(again, key=lambda p: (p.lane, p.lane_seq))
    return itertools.chain(ordered, rest)

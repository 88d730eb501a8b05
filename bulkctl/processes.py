"""Is a process still running? Used to tell a killed push (or sandbox) from a live one.

A process id alone is not enough: after a push died, the system may give its id to another
process. So a push records its `owner()` — id, start time and host — and `owner_running` asks
whether *that* process still runs. The start time is the kernel's (Linux `/proc/PID/stat`
field 22, ticks since boot, with the boot id), so a reused id, or one from before a reboot, does
not match. Where `/proc` is missing (macOS) only the id is compared. A job recorded on another
host (a shared `BULKCTL_HOME`) cannot be checked from here: `owner_running` answers None.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys/kernel/random/boot_id"
_STARTTIME_FIELD = 22  # 1-based, in proc(5)


def pid_alive(pid: int | None) -> bool:
    """True when a process with this id exists (ours or another user's) and is not a zombie."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours
        pass
    stat = _stat_fields(pid)
    return not (stat is not None and stat[0] in ("Z", "X"))  # ended, not yet reaped


def start_token(pid: int) -> str | None:
    """`BOOT_ID:TICKS` naming one process for the life of the system; None without /proc."""
    stat = _stat_fields(pid)
    if stat is None:
        return None
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{stat[_STARTTIME_FIELD - 3]}"


def owner() -> dict[str, Any]:
    """This process, as a job records its owner: `pid`, `pid_start`, `host`."""
    pid = os.getpid()
    return {"pid": pid, "pid_start": start_token(pid), "host": socket.gethostname()}


def owner_running(options: Mapping[str, Any]) -> bool | None:
    """Whether the process a job's options name (see `owner`) still runs.

    None when nothing can be told: no process id was recorded (an older bulkctl), or it was
    recorded on another host.
    """
    pid = options.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return None
    host = options.get("host")
    if isinstance(host, str) and host != socket.gethostname():
        return None
    if not pid_alive(pid):
        return False
    recorded = options.get("pid_start")
    if isinstance(recorded, str):
        current = start_token(pid)
        if current is not None and current != recorded:
            return False  # the id now belongs to another process
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of `/proc/PID/stat` (after the command name, which may hold spaces)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()

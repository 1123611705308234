"""Named points where the reliability tests kill, pause or break a sync (inert unless a test sets it).

`REVAL_TEST_FAULT` is a comma-separated list of `<point>[#<nth hit>]:<action>`; the first to fire wins.
Actions: `kill` (SIGKILL itself), `oserror=<ERRNO>` (e.g. `oserror=ENOSPC`), or `pause=<file>` (write its
pid to <file>, then wait until the test deletes it, so the test can signal it or drop its connection).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

_hits: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(*names: str) -> None:
    """One place in the code, known by one or more names (`write` and `write/<folder>`)."""
    specs = os.environ.get("REVAL_TEST_FAULT")
    if not specs:
        return
    with _lock:  # points are hit from worker threads too (a PostgreSQL load runs on two)
        for name in names:
            _hits[name] = _hits.get(name, 0) + 1
        hits = {name: _hits[name] for name in names}
    for spec in specs.split(","):
        target, _, action = spec.strip().partition(":")
        point, _, nth = target.partition("#")
        if point in names and hits[point] == int(nth or 1):
            _fire(f"{point}#{hits[point]}", action)


def _fire(where: str, action: str) -> None:
    log = os.environ.get("REVAL_TEST_FAULT_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{where} {action.partition('=')[0]} {os.getpid()}\n")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("oserror="):
        code = getattr(errno, action.removeprefix("oserror="))
        raise OSError(code, f"{os.strerror(code)} (fault injected at {where})")
    elif action.startswith("pause="):
        marker = Path(action.removeprefix("pause="))
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

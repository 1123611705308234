"""`make ui`: become `dagster dev` with SIGINT and SIGTERM at their defaults, so either one stops it.

Started without a terminal in a script's background (`make ui &`), a process inherits SIGINT ignored, and
`dagster dev` maps SIGTERM onto SIGINT's handler, so it would ignore both and outlive a `kill` of make.
This resets the two signals, then execs `dagster dev ARGS` (same process: make's recipe runs it with
`exec`, so the SIGTERM make forwards to its recipe reaches dagster dev, which stops its webserver and
daemon). No Dagster import: it is only a launcher.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    script = Path(sys.executable).with_name("dagster")
    command = [str(script), "dev"] if script.exists() else [sys.executable, "-m", "dagster", "dev"]
    sys.stdout.flush()
    os.execv(command[0], [*command, *args])


if __name__ == "__main__":
    main()

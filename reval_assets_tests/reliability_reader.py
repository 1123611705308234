"""A reader process for test_reliability: its own connection, ONE statement per read, until told to stop.

Run as `python -m reval_assets_tests.reliability_reader BACKEND TARGET READY STOP OUT`, TARGET being
the SQLite file or a libpq connection string. It touches READY after its first read, reads until STOP
exists, then writes every result (live pointer and the four views' row counts) and every error to OUT.

A separate process, as a real reader is, and also because SQLite must not be used through two
libraries in one process (Python's sqlite3 and the copy inside the ADBC driver the live store loads
with): POSIX locks are per process, so one library closing the file drops the other's locks
(https://www.sqlite.org/howtocorrupt.html, 2.2.1).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

READ_VIEWS = ("doctors", "connections", "recommendations", "discrepancies")  # the screens' lists
READ = ("SELECT (SELECT version FROM reval_live WHERE id = 1), "
        + ", ".join(f"(SELECT COUNT(*) FROM {view})" for view in READ_VIEWS))


def connect(backend: str, target: str):  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    import psycopg

    return psycopg.connect(target, autocommit=True)


def main(backend: str, target: str, ready: str, stop: str, out: str) -> None:
    conn = connect(backend, target)
    reads: list[list] = []
    errors: list[str] = []
    stop_path = Path(stop)
    try:
        while True:
            try:
                reads.append(list(conn.execute(READ).fetchone()))
            except Exception as error:  # noqa: BLE001 - every error is a failure, counted by the test
                errors.append(repr(error))
            if len(reads) + len(errors) == 1:
                Path(ready).touch()
            if stop_path.exists():
                break
    finally:
        conn.close()
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors}))


if __name__ == "__main__":
    main(*sys.argv[1:6])

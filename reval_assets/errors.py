"""The one error type of the core: `RevalError`, carrying its exit code and metadata.

Every failure the project raises on purpose is a `RevalError` (`SourceError`, `GuardRefused`,
`PublishError`, ...: each module's own class subclasses it, so every `except` keeps working).
The `reval` command turns one into its message and exit code (`cli._explain`); the Dagster layer
turns one into a `dg.Failure` with the same message and metadata (`assets.failures`). No Dagster here.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import ClassVar

import sqlalchemy as sa

# The contract's exit codes (`reval` command).
OK, FAILED, UNKNOWN_VERSION, BLOCKED, REFUSED, CORRUPT = 0, 1, 2, 3, 4, 5


class RevalError(Exception):
    """A failure with a message for people, the exit code `reval` ends with, and metadata for the run.

    `kind` names the failure in metadata and alerts; `retryable` says whether running the same step
    again could succeed (only a database that could not be reached: see `is_transient`).
    """

    exit_code: ClassVar[int] = FAILED
    kind: ClassVar[str] = "failed"
    retryable: bool = False

    def __init__(self, *args: object, metadata: Mapping[str, object] | None = None):
        super().__init__(*args)
        self.metadata: dict[str, object] = dict(metadata or {})

    def explained(self) -> str:
        """The message a person reads: on the command line, in the run's failure and in alerts."""
        return str(self)


class ReleaseBlocked(RevalError):
    """A candidate's blocking checks failed: it stays staged, blocked, and live is unchanged.

    The same summary and next step wherever the sync ran: `reval sync`'s message, and the failure of the
    release_candidate step in the Dagster UI."""

    exit_code = BLOCKED
    kind = "blocked"

    def __init__(self, failed: list[tuple[str, str]], *, live: str | None, version: str | None):
        names = [name for name, _ in failed]
        look = f"`reval diff {live} {version}` shows what would change, " if live and version else ""
        drift_only = (" (or, for a known and intended change, `reval sync --allow-drift \"why\"`)."
                      if names == ["drift"] else ".")
        super().__init__(
            f"release blocked by {', '.join(names)}: " + "; ".join(f"{n}: {text}" for n, text in failed)
            + f". Live is unchanged ({live or 'no version yet'}). Next: {look}the release_candidate checks in the "
            "Dagster UI (`make ui`) show the figures; fix the source and run `reval sync` again" + drift_only,
            metadata={"blocked_by": ", ".join(names), "version": version or "", "live_version": live or ""})


class DatabaseFailed(RevalError):
    """The live store's database failed under a step (e.g. its connection dropped mid-transaction)."""

    kind = "database"

    def __init__(self, error: Exception):
        cause = " ".join(str(error).split("(Background on this error at")[0].split())
        super().__init__(f"the live store's database failed ({cause}); its transaction was rolled back. Check the "
                         "database, then run `reval sync` again: the batch files and tables finished are reused",
                         metadata={"database_error": type(getattr(error, "orig", None) or error).__name__})
        self.retryable = is_transient(error)


# The database errors that mean the store failed under a step, not that the step is wrong: SQLAlchemy's, and
# a driver's own (PEP 249 names them alike: the ADBC and COPY loads raise those of adbc_driver_manager, psycopg).
DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError, sa.exc.DatabaseError)
_DBAPI_ERRORS = {"OperationalError", "InterfaceError", "InternalError", "DatabaseError"}


def is_database_error(error: BaseException) -> bool:
    return isinstance(error, DATABASE_ERRORS) or (
        not isinstance(error, sa.exc.SQLAlchemyError) and type(error).__name__ in _DBAPI_ERRORS)
# Refused at connect for good: retrying cannot help.
_NOT_TRANSIENT = ("password authentication failed", "access denied", "does not exist", "unknown database")


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a server database that could not be reached when a connection was opened (down,
    restarting, too many clients): safe to retry, as nothing ran on it. A connection dropped mid-transaction
    is not (its transaction was rolled back, but a commit in flight may have landed: one clean failure)."""
    if not isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError) or error.statement is not None:
        return False
    if type(error.orig).__module__.startswith("sqlite3"):  # a local file: its errors do not pass
        return False
    if any(text in str(error.orig).lower() for text in _NOT_TRANSIENT):
        return False
    # Raised by the dialect's connect() (the DBAPI's connect call), not by a statement or a commit
    return any(frame.name == "connect" and frame.filename.endswith("sqlalchemy/engine/default.py")
               for frame in traceback.extract_tb(error.__traceback__))


def as_reval_error(error: Exception) -> RevalError | None:
    """`error` as the core's error type: itself, the database failure it is, or None (unexpected)."""
    if isinstance(error, RevalError):
        return error
    if is_database_error(error):
        return DatabaseFailed(error)
    return None

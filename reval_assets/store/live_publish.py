"""Publish and rollback: re-point the live views, the `reval_live` pointer and an audit row in one transaction.

Part of `LiveStore` (see `reval_assets.store.live` for the two layouts the re-point works on).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reval_assets.domain.enums import VersionStatus
from reval_assets.store.catalog import (
    CatalogAccess,
    ConcurrentPublishError,
    PublishError,
    live_table,
    now,
    versions_table,
)
from reval_assets.store.faults import fault_point
from reval_assets.store.views import LIVE_VIEWS, _entity_of, union_sql, version_view


class StagedAgainst:
    """`LiveStore.publish`'s default expectation: live is still the version the candidate was staged against."""


STAGED_AGAINST = StagedAgainst()


class PublishMixin(CatalogAccess):
    """`LiveStore`'s publish, rollback and recovery re-points."""

    # -- publish and rollback --------------------------------------------------------------
    def publish(self, version: str, *, actor: str, reason: str, env: str,
                expected_live: str | None | StagedAgainst = STAGED_AGAINST) -> None:
        """Make a staged version live, provided its checks passed and live is still `expected_live`:
        by default the version it was staged against (its parent), read in the same transaction."""
        with self._repointing() as conn:
            row = self._version_row(conn, version)
            if row.status != VersionStatus.STAGED.value:
                raise PublishError(f"version {version} is {row.status}, not staged; only a staged candidate "
                                   "whose checks passed can be published")
            if row.checks_passed is not True:
                state = "did not pass" if row.checks_passed is False else "have not run"
                raise PublishError(f"refusing to publish {version}: its blocking checks {state}")
            current = self._live_version(conn)
            if isinstance(expected_live, StagedAgainst):
                expected_live = row.parent
            if current != expected_live:
                raise ConcurrentPublishError(
                    f"live moved from {expected_live or 'nothing'} to {current} while {version} was being "
                    "prepared (another publish or rollback won); re-run the sync to stage a fresh candidate")
            self._repoint(conn, version, current, action="publish", actor=actor, reason=reason, env=env)

    def rollback(self, version: str, *, actor: str, reason: str, env: str) -> str | None:
        """Re-point live to a version that was published before; returns the version it replaced."""
        with self._repointing() as conn:
            row = self._version_row(conn, version)
            if row.published_at is None or row.checks_passed is not True:
                raise PublishError(f"version {version} was never published (status {row.status}); "
                                   "rollback only goes to a version that was live before: "
                                   "`reval versions` lists them (status live or retired)")
            current = self._live_version(conn)
            self._repoint(conn, version, current, action="rollback", actor=actor, reason=reason, env=env)
            return current

    def restore_outcome(self, version: str, *, checks_passed: bool | None, failed: list[str],
                        published_at: datetime | None) -> None:
        """`reval recover`: what the lost catalog had decided about a version, from the home's journal."""
        values: dict = {"checks_passed": checks_passed, "published_at": published_at}
        if checks_passed is False:
            values["status"] = VersionStatus.BLOCKED.value
            values["checks"] = json.dumps([{"name": name, "passed": False, "blocking": True,
                                            "description": "failed (recovered from the journal)"} for name in failed])
        elif published_at is not None:
            values["status"] = VersionStatus.RETIRED.value
        with self.engine.begin() as conn:
            conn.execute(versions_table.update().where(versions_table.c.version == version).values(**values))

    def restore_live(self, version: str, *, actor: str, reason: str, env: str) -> None:
        """`reval recover`: point the views and the pointer at `version` (audited as `recover`)."""
        with self._repointing() as conn:
            self._version_row(conn, version)
            self._repoint(conn, version, self._live_version(conn), action="recover", actor=actor, reason=reason,
                          env=env)

    @contextmanager
    def _repointing(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # A long reader delays a publish (up to the timeout) rather than queueing every
                    # later reader behind the publish's lock. The timeout bounds the WHOLE re-point, not
                    # each view's wait (see `_bound_lock_wait`).
                    conn.info["lock_deadline"] = time.monotonic() + self.lock_timeout_seconds
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_timeout_seconds * 1000)}ms'")
                    try:
                        conn.execute(sa.select(live_table.c.version).where(live_table.c.id == 1)
                                     .with_for_update(nowait=True))
                    except sa.exc.OperationalError as error:
                        raise ConcurrentPublishError(
                            "another publish or rollback is in progress; try again when it has finished") from error
                yield conn
        except sa.exc.OperationalError as error:
            # By error code, not message text: the message quotes the SQL, and `SET LOCAL lock_timeout`
            # failing for a dropped connection is no lock timeout.
            if getattr(error.orig, "sqlstate", None) == "55P03" or "database is locked" in str(error.orig):
                raise ConcurrentPublishError(self._lock_timeout_message()) from error
            raise

    def _lock_timeout_message(self) -> str:
        return (f"could not take the publish lock within {self.lock_timeout_seconds:g}s "
                "(a long-running reader or another publish holds it); live is unchanged, try again")

    def _bound_lock_wait(self, conn: Connection) -> None:
        """Give the next lock wait only what is left of the timeout, so four views waited on in turn
        cannot hold readers up for four timeouts."""
        remaining = conn.info["lock_deadline"] - time.monotonic()
        if remaining < 0.001:
            raise ConcurrentPublishError(self._lock_timeout_message())
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(remaining * 1000))}ms'")

    def _repoint(self, conn: Connection, version: str, current: str | None, *,
                 action: str, actor: str, reason: str, env: str) -> None:
        tables = self._version_tables(conn, version) if self.dialect == "sqlite" else {}
        for view in LIVE_VIEWS:
            if self.dialect == "postgresql" and self._has_view(conn, version_view(version, view)):
                self._bound_lock_wait(conn)
                conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {version_view(version, view)}")
            elif self.dialect == "postgresql":  # a version staged before the entity existed: none of it
                self._bound_lock_wait(conn)
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
                conn.exec_driver_sql(f"CREATE VIEW {view} AS {union_sql(view, [])}")
            else:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
                conn.exec_driver_sql(f"CREATE VIEW {view} AS {union_sql(view, tables[_entity_of(view)])}")
            fault_point("repoint_view")
        at = now()
        conn.execute(live_table.update().where(live_table.c.id == 1)
                     .values(version=version, published_at=at, published_by=actor, reason=reason))
        if current and current != version:
            conn.execute(versions_table.update().where(versions_table.c.version == current)
                         .values(status=VersionStatus.RETIRED.value))
        conn.execute(versions_table.update().where(versions_table.c.version == version)
                     .values(status=VersionStatus.LIVE.value, published_at=at,
                             **({"actor": actor, "reason": reason} if action == "publish" else {})))
        self._audit(conn, action, version, actor, env, reason, {"previous": current})
        fault_point("publish")  # everything re-pointed, not yet committed

    @staticmethod
    def _has_view(conn: Connection, name: str) -> bool:
        return conn.exec_driver_sql(f"SELECT to_regclass('{name}') IS NOT NULL").scalar()

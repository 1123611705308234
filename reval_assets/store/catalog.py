"""The live store's catalog: the `reval_*` tables that record versions, their batch tables, live and the audit.

`CatalogAccess` makes the catalog (and adds the row-count columns an older catalog lacks), and
holds what every part of `LiveStore` shares: its engines, and the catalog rows read or written
inside another operation's transaction (the live pointer, a version's row and tables, an audit row).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reval_assets.domain.schemas import ENTITIES
from reval_assets.errors import RevalError
from reval_assets.store.snapshots import UnknownVersionError
from reval_assets.store.views import LATER_ENTITIES

metadata = sa.MetaData()
versions_table = sa.Table(
    "reval_versions",
    metadata,
    sa.Column("version", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parent", sa.String(40)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("published_at", sa.DateTime),
    sa.Column("actor", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("env", sa.String(16)),
    sa.Column("source", sa.Text),
    sa.Column("run_id", sa.String(64)),
    sa.Column("rows_doctors", sa.BigInteger),
    sa.Column("rows_connections", sa.BigInteger),
    sa.Column("rows_recommendations", sa.BigInteger),
    sa.Column("rows_hidden_discrepancies", sa.BigInteger),
    sa.Column("checks_passed", sa.Boolean),
    sa.Column("checks", sa.Text),
    sa.Column("manifest_sha256", sa.String(64)),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
)
audit_table = sa.Table(
    "reval_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("version", sa.String(40)),
    sa.Column("actor", sa.Text),
    sa.Column("env", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("detail", sa.Text),
)
live_table = sa.Table(
    "reval_live",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.String(40)),
    sa.Column("published_at", sa.DateTime),
    sa.Column("published_by", sa.Text),
    sa.Column("reason", sa.Text),
    sa.CheckConstraint("id = 1", name="reval_live_single_row"),
)
version_files = sa.Table(
    "reval_version_files",
    metadata,
    sa.Column("version", sa.String(40), primary_key=True),
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("table_name", sa.String(40), nullable=False),
)
# The store's identity, written at its first sync: which snapshot home serves it, its environment
# and its batch count (see `reval_assets.pipeline.gate`).
store_table = sa.Table(
    "reval_store",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("store_id", sa.String(36), nullable=False),
    sa.Column("env", sa.String(16), nullable=False),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.CheckConstraint("id = 1", name="reval_store_single_row"),
)
file_tables = sa.Table(
    "reval_file_tables",
    metadata,
    sa.Column("table_name", sa.String(40), primary_key=True),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
)


class PublishError(RevalError):
    """A publish or rollback that cannot go ahead; live is unchanged."""

    kind = "publish"


class ConcurrentPublishError(PublishError):
    pass


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class CatalogAccess:
    """The catalog's schema and the catalog helpers `LiveStore` and its parts (`reval_assets.store.live_publish`,
    `reval_assets.store.live_gc`) share; `LiveStore.__init__` sets the attributes."""

    url: str
    dialect: str
    engine: Engine
    reader: Engine
    lock_timeout_seconds: float
    _has_catalog: bool
    _has_every_table: bool  # every table of `metadata` was seen or made by this store (never unset)
    made_catalog: bool  # `create_catalog` ran on this store: its tables and the live row are there

    def create_catalog(self) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(live_table.c.id)).first() is None:
                conn.execute(live_table.insert().values(id=1, version=None))
        self._has_catalog = self._has_every_table = self.made_catalog = True

    def _add_count_columns(self, present: set[str]) -> None:
        """A catalog from before an entity existed gains its row-count column (null for the older versions).
        `present`: the columns `reval_versions` has."""
        missing = [c.name for c in versions_table.columns if c.name.startswith("rows_") and c.name not in present]
        if not missing:  # the usual case: no write transaction at all (it would wait behind another writer)
            return
        with self.engine.begin() as conn:
            for name in missing:
                conn.exec_driver_sql(f"ALTER TABLE {versions_table.name} ADD COLUMN {name} BIGINT")

    @property
    def has_catalog(self) -> bool:
        if not self._has_catalog:
            self._has_catalog = self._is_catalog(self._table_names())
        return self._has_catalog

    @staticmethod
    def _is_catalog(table_names: set[str]) -> bool:
        """Whether these tables make a catalog: its versions and its live pointer."""
        return {versions_table.name, live_table.name} <= table_names

    def _table_names(self, inspector: sa.Inspector | None = None) -> set[str]:
        if self.dialect == "sqlite" and not self._sqlite_file_exists():
            return set()
        return set((inspector or sa.inspect(self.reader)).get_table_names())

    def _sqlite_file_exists(self) -> bool:
        database = sa.engine.make_url(self.url).database
        return bool(database) and database != ":memory:" and Path(database).exists()

    # -- catalog rows read or written inside another operation's transaction ---------------
    def _live_version(self, conn: Connection) -> str | None:
        return conn.execute(sa.select(live_table.c.version).where(live_table.c.id == 1)).scalar()

    def _version_tables(self, conn: Connection, version: str) -> dict[str, list[str]]:
        rows = conn.execute(sa.select(version_files.c.entity, version_files.c.table_name)
                            .where(version_files.c.version == version)
                            .order_by(version_files.c.entity, version_files.c.position))
        tables: dict[str, list[str]] = {}
        for entity, table in rows:
            tables.setdefault(entity, []).append(table)
        if set(tables) | set(LATER_ENTITIES) != set(ENTITIES):
            raise PublishError(f"version {version} has no tables recorded for "
                               f"{', '.join(sorted(set(ENTITIES) - set(tables)))}, so it cannot be made live (it was "
                               "staged before reval_version_files existed); publish a fresh sync instead")
        return {entity: tables.get(entity, []) for entity in ENTITIES}

    def _version_row(self, conn: Connection, version: str) -> sa.Row:
        row = conn.execute(sa.select(versions_table).where(versions_table.c.version == version)).first()
        if row is None:
            raise UnknownVersionError(version)
        return row

    def _audit(self, conn: Connection, action: str, version: str | None, actor: str, env: str, reason: str,
               detail: dict | None) -> None:
        conn.execute(audit_table.insert().values(at=now(), action=action, version=version, actor=actor, env=env,
                                                 reason=reason, detail=json.dumps(detail or {}, default=str)))

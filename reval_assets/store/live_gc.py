"""Garbage collection: dropping versions, batch tables no version reads, and stray per-version views.

Part of `LiveStore`; `reval_assets.pipeline.operations` decides what to drop.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import sqlalchemy as sa

from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.store.bulk import identifier
from reval_assets.store.catalog import CatalogAccess, PublishError, file_tables, version_files, versions_table
from reval_assets.store.faults import fault_point
from reval_assets.store.snapshots import FileRef
from reval_assets.store.views import _entity_of, file_table, union_sql, version_view


class GarbageCollectMixin(CatalogAccess):
    """`LiveStore`'s reads and drops for `reval gc` (and the table fingerprints `reval verify` compares)."""

    # -- garbage collection ----------------------------------------------------------------
    def drop_version(self, version: str, *, actor: str = "reval", env: str = "", reason: str = "gc") -> None:
        """Drop a version from the catalog; audited as `gc_drop` in the same transaction."""
        with self.engine.begin() as conn:
            if self._live_version(conn) == version:
                raise PublishError(f"refusing to drop the live version {version}")
            if self.dialect == "postgresql":
                for view in ("discrepancies", *ENTITIES):
                    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {version_view(version, view)}")
            conn.execute(version_files.delete().where(version_files.c.version == version))
            conn.execute(versions_table.delete().where(versions_table.c.version == version))
            self._audit(conn, "gc_drop", version, actor, env, reason, None)
            fault_point("gc_drop")

    def table_fingerprint(self, entity: str, ref: FileRef) -> tuple[int, ...]:
        """What `fingerprint(table)` gives for the rows now in the table that `ref` was loaded into."""
        schema = ENTITY_SPECS[entity].schema
        sums = [f"COUNT({identifier(f.name)})" for f in schema]
        sums += [f"COALESCE(SUM(LENGTH({identifier(f.name)})), 0)" for f in schema if pa.types.is_string(f.type)]
        with self.reader.connect() as conn:
            row = conn.exec_driver_sql(f"SELECT COUNT(*), {', '.join(sums)} FROM {file_table(ref)}").one()
        return tuple(int(v) for v in row)

    def loaded_tables(self) -> set[str]:
        with self.reader.connect() as conn:
            return set(conn.execute(sa.select(file_tables.c.table_name)).scalars())

    def drop_tables(self, names: Iterable[str], *, actor: str = "reval", env: str = "", reason: str = "gc") -> int:
        """Drop batch tables no version reads; audited (with how many) in the same transaction."""
        names = list(names)
        if not names:
            return 0
        with self.engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {identifier(name)}")
                conn.execute(file_tables.delete().where(file_tables.c.table_name == name))
            self._audit(conn, "gc_tables", None, actor, env, reason, {"tables": len(names)})
        return len(names)

    def stray_version_views(self) -> list[str]:
        """Per-version views no version owns: on SQLite every one (stores made before
        `reval_version_files` kept them), on PostgreSQL those of versions gc has dropped. Never the
        live version's (a store whose live version an older release published still reads them)."""
        views = [v for v in sa.inspect(self.reader).get_view_names() if v.startswith("rv")]
        with self.reader.connect() as conn:
            keep = {self._live_version(conn)}
            if self.dialect == "postgresql":
                keep |= set(conn.execute(sa.select(versions_table.c.version)).scalars())
        # a version's discrepancies view may read its connections view: drop it first
        return sorted((v for v in views if v[1:24] not in keep), key=lambda v: (not v.endswith("_discrepancies"), v))

    def version_query(self, version: str, view: str) -> str:
        """The SELECT of one version's rows of a live view (what that view shows while it is live)."""
        with self.reader.connect() as conn:
            tables = self._version_tables(conn, version)
        return union_sql(view, tables[_entity_of(view)])

    def drop_views(self, names: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {identifier(name)}")

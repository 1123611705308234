"""The live store: versioned tables beside the live ones, and views re-pointed in one transaction.

Each immutable snapshot file is loaded once into its own table `rb_<sha>`; a version is a
list of those tables per entity (`reval_version_files`), so versions share the tables of the
batches they share. Readers query `doctors`, `connections`, `recommendations` and
`discrepancies`: views, each a UNION ALL over the live version's tables of its entity.
Publish and rollback re-create those four views, the `reval_live` pointer and an audit row in
ONE transaction, and readers see the old version or the new one, never a mix and never a
missing view.

Publish must cost the same with 1 or 1,000 versions kept, and the two databases need opposite
layouts for that (measured in bench/RESULTS.md). SQLite re-parses its whole schema on every
connection, so there a version adds rows, not schema objects, and publish builds the live
views straight over the version's tables. PostgreSQL keeps its catalog parsed but records a
dependency per column of every table a view reads (a 16-table UNION ALL view is ~3 ms to
replace), so there staging also creates the version's own views `r<version>_<view>`, and
publish re-points each live view to one of them.

`LiveStore` is here (engines, identity, staging, reading); its parts live beside it:
`catalog` (the `reval_*` tables), `views` (view names and SQL), `live_publish` (publish,
rollback, recovery re-points) and `live_gc` (dropping versions, tables and views). This module
re-exports their public names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reval_assets.domain.enums import VersionStatus
from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.parallel import map_in_threads
from reval_assets.spans import span
from reval_assets.store.bulk import adbc_connection, dialect_of, identifier, load_table
from reval_assets.store.catalog import (
    ConcurrentPublishError,
    PublishError,
    audit_table,
    file_tables,
    live_table,
    metadata,
    now,
    store_table,
    version_files,
    versions_table,
)
from reval_assets.store.faults import fault_point
from reval_assets.store.files import private_file
from reval_assets.store.live_gc import GarbageCollectMixin
from reval_assets.store.live_publish import STAGED_AGAINST, PublishMixin, StagedAgainst
from reval_assets.store.snapshots import FileRef, Manifest
from reval_assets.store.views import LATER_ENTITIES, LIVE_VIEWS, _entity_of, file_table, union_sql, version_view
from reval_assets.store.writer_lock import writer_lock

__all__ = [
    "LATER_ENTITIES", "LIVE_VIEWS", "LOAD_CONNECTIONS", "STAGED_AGAINST", "ConcurrentPublishError", "LiveStore",
    "LoadReport", "PublishError", "StagedAgainst", "audit_table", "file_table", "file_tables", "fingerprint",
    "live_table", "metadata", "now", "store_table", "union_sql", "version_files", "version_view", "versions_table",
]

# Connections a staging load uses at once. PostgreSQL encodes and COPYs on two backends in parallel;
# SQLite has one writer (and a second ADBC connection in the process would be a second copy of SQLite).
LOAD_CONNECTIONS = {"sqlite": 1, "postgresql": 2}


@dataclass(frozen=True)
class LoadReport:
    tables_loaded: int
    tables_reused: int
    rows_loaded: int


class LiveStore(PublishMixin, GarbageCollectMixin):
    def __init__(self, url: str, *, lock_timeout_seconds: float = 5.0, create: bool = True):
        """`create`: make the catalog tables if they are missing; without it a store with no catalog
        reads as empty and nothing is created (read-only commands must not make an empty catalog)."""
        self.url = url
        self.dialect = dialect_of(url)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.engine = self._make_engine(url, create=create)
        # Reads begin a plain (deferred) transaction on SQLite: they never wait behind a publish's write lock.
        self.reader = self.engine.execution_options(reval_read=True)
        self._has_catalog = self._has_every_table = self.made_catalog = False
        if create:
            columns = self._catalog_columns()
            if columns is None:
                self.create_catalog()
            else:
                self._has_catalog = self._has_every_table = True
                self._add_count_columns(columns)

    def _catalog_columns(self) -> set[str] | None:
        """The columns of `reval_versions` when every catalog table is there, else None; one connection."""
        with self.reader.connect() as conn:
            inspector = sa.inspect(conn)
            if not set(metadata.tables) <= self._table_names(inspector):
                return None
            return {c["name"] for c in inspector.get_columns(versions_table.name)}

    def writer_lock(self, action: str) -> AbstractContextManager[None]:
        """The store's writer lock (see `reval_assets.store.writer_lock`)."""
        return writer_lock(self.engine, action)

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict | None:
        """The store's identity row (store_id, env, batches, created_at), or None."""
        if not self._has_every_table:  # one look at the tables: is there a catalog, with reval_store?
            names = self._table_names()
            self._has_catalog = self._has_catalog or self._is_catalog(names)
            if not self._has_catalog or store_table.name not in names:
                return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(store_table)).mappings().first()
            return None if row is None else dict(row)

    def set_identity(self, store_id: str, env: str, batches: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(store_table.insert().values(id=1, store_id=store_id, env=env, batches=batches,
                                                     created_at=now()))

    def _make_engine(self, url: str, *, create: bool) -> Engine:
        if self.dialect == "postgresql":
            return sa.create_engine(url, pool_pre_ping=True)
        database = sa.engine.make_url(url).database
        if database and create and database != ":memory:":
            private_file(Path(database))  # 0600 before SQLite creates it; its -wal and -shm take its mode
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # pysqlite would otherwise not BEGIN before DDL, making view swaps non-atomic.
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout = 30000")
            dbapi_connection.execute("PRAGMA journal_mode = WAL")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("reval_read") else "BEGIN IMMEDIATE")

        return engine

    def close(self) -> None:
        self.engine.dispose()

    # -- staging ---------------------------------------------------------------------------
    def load_files(self, refs: Iterable[tuple[str, FileRef]], read: Callable[[FileRef], pa.Table]) -> LoadReport:
        """Bulk-load every file not yet loaded into its own table, one transaction per table.

        `read(ref)` returns the file's Arrow table (verified against its sha256 by the caller).
        A table and its registry row are committed together, so a registered table is complete, and
        a sync stopped half-way through the load keeps the tables it finished: the next one reuses them.
        PostgreSQL loads over two connections at once (1.5-1.75x on 2 cores); SQLite has one writer.
        """
        with self.reader.connect() as conn:
            loaded = set(conn.execute(sa.select(file_tables.c.table_name)).scalars())
        todo: dict[str, tuple[str, FileRef]] = {}
        reused = 0
        for entity, ref in refs:
            name = file_table(ref)
            if name in loaded:
                reused += 1
            else:
                todo.setdefault(name, (entity, ref))
        tables = list(todo.items())
        connections = LOAD_CONNECTIONS[self.dialect]
        shares = [tables[i::connections] for i in range(connections) if tables[i::connections]]
        rows = sum(map_in_threads(lambda share: self._load_tables(share, read), shares, workers=len(shares)))
        return LoadReport(tables_loaded=len(todo), tables_reused=reused, rows_loaded=rows)

    def _load_tables(self, tables: list[tuple[str, tuple[str, FileRef]]], read: Callable[[FileRef], pa.Table]
                     ) -> int:
        """Load `tables` over one ADBC connection, each in its own transaction with its registry row."""
        rows = 0
        with adbc_connection(self.url) as adbc, adbc.cursor() as cursor:
            for name, (entity, ref) in tables:
                data: pa.Table = read(ref).cast(ENTITY_SPECS[entity].schema)
                load_table(cursor, self.dialect, name, data)
                with span("index_build"):
                    for i, column in enumerate(ENTITY_SPECS[entity].indexed):
                        cursor.execute(f"CREATE INDEX {identifier(f'{name}_{i}')} ON {name} ({identifier(column)})")
                cursor.execute(
                    f"INSERT INTO reval_file_tables (table_name, entity, sha256, rows) "
                    f"VALUES ('{name}', '{identifier(entity)}', '{_hex(ref.sha256)}', {int(data.num_rows)})"
                )
                rows += data.num_rows
                fault_point("load_table")  # inside this table's transaction, before its commit
                adbc.commit()
        return rows

    def stage(self, manifest: Manifest, manifest_sha256: str, *, recovered: bool = False) -> None:
        """Record the version (its batch tables, already loaded) as staged; no schema changes.
        `recovered`: re-recorded from its manifest by `reval recover`, with the manifest's parent."""
        with self.engine.begin() as conn:
            live = manifest.parent if recovered else self._live_version(conn)
            loaded = set(conn.execute(sa.select(file_tables.c.table_name)).scalars())
            tables = {entity: [file_table(ref) for ref in refs] for entity, refs in manifest.files.items()}
            missing = sorted({t for names in tables.values() for t in names} - loaded)
            if missing:
                raise PublishError(f"cannot stage {manifest.version}: {len(missing)} of its files are not loaded "
                                   f"({', '.join(missing[:3])}); run the sync again to load them")
            conn.execute(version_files.insert(), [
                {"version": manifest.version, "entity": entity, "position": i, "table_name": name}
                for entity, names in tables.items() for i, name in enumerate(names)])
            if self.dialect == "postgresql":
                for view in LIVE_VIEWS:
                    conn.exec_driver_sql(f"CREATE VIEW {version_view(manifest.version, view)} AS "
                                         f"{union_sql(view, tables[_entity_of(view)])}")
            rows = manifest.rows()
            conn.execute(
                versions_table.insert().values(
                    version=manifest.version,
                    status=VersionStatus.STAGED.value,
                    parent=live,
                    created_at=datetime.fromisoformat(manifest.created_at).replace(tzinfo=None),
                    actor=manifest.actor,
                    reason=manifest.reason,
                    env=manifest.env,
                    source=manifest.source,
                    run_id=manifest.run_id,
                    manifest_sha256=manifest_sha256,
                    **{f"rows_{e}": rows.get(e, 0) for e in ENTITIES},
                )
            )
            self._audit(conn, "stage", manifest.version, manifest.actor, manifest.env, manifest.reason,
                        {"rows": rows, "parent": live})
            fault_point("stage")

    def record_checks(self, version: str, results: list[dict], *, actor: str, env: str,
                      changed_thresholds: dict | None = None) -> bool:
        """Store check results of a staged or blocked version: a failed blocking check marks it blocked, and
        a blocked one that passes (checked again, say with other thresholds) is staged again, audited as
        `unblock` with the `changed_thresholds`. A published version's record is never changed."""
        passed = all(r["passed"] for r in results if r.get("blocking", True))
        fault_point("checks")
        with self.engine.begin() as conn:
            status = self._version_row(conn, version).status
            if status not in (VersionStatus.STAGED.value, VersionStatus.BLOCKED.value):
                raise PublishError(f"version {version} is {status}: only a staged or blocked candidate is checked")
            values: dict = {"checks_passed": passed, "checks": json.dumps(results, default=str),
                            "status": (VersionStatus.STAGED if passed else VersionStatus.BLOCKED).value}
            conn.execute(versions_table.update().where(versions_table.c.version == version).values(**values))
            if not passed:
                failed = [r["name"] for r in results if not r["passed"] and r.get("blocking", True)]
                self._audit(conn, "block", version, actor, env, "blocking checks failed", {"failed": failed})
            elif status == VersionStatus.BLOCKED.value:
                self._audit(conn, "unblock", version, actor, env, "blocking checks passed when checked again",
                            {"thresholds": changed_thresholds or {}})
        return passed

    # -- reading the catalog ---------------------------------------------------------------
    def live_version(self) -> str | None:
        if not self.has_catalog:
            return None
        with self.reader.connect() as conn:
            return self._live_version(conn)

    def live_row(self) -> dict:
        if not self.has_catalog:
            return {"id": 1, "version": None, "published_at": None, "published_by": None, "reason": None}
        with self.reader.connect() as conn:
            return dict(conn.execute(sa.select(live_table)).mappings().one())

    def versions(self) -> list[dict]:
        if not self.has_catalog:
            return []
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(versions_table).order_by(versions_table.c.created_at)).mappings()
            return [dict(r) for r in rows]

    def version(self, version: str) -> dict | None:
        if not self.has_catalog:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(versions_table).where(versions_table.c.version == version)).mappings()
            found = row.first()
            return None if found is None else dict(found)

    def candidate_for_run(self, run_id: str) -> str | None:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(versions_table.c.version).where(versions_table.c.run_id == run_id)
                                .order_by(versions_table.c.created_at.desc())).scalars().first()

    def audit_rows(self) -> list[dict]:
        if not self.has_catalog:
            return []
        with self.reader.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(audit_table).order_by(audit_table.c.id)).mappings()]

    def read_view(self, view: str) -> pa.Table:
        """All rows of a live view (or a version view) as Arrow, through ADBC."""
        with adbc_connection(self.url) as adbc, adbc.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {identifier(view)}")
            return cursor.fetch_arrow_table()

    def audit(self, action: str, version: str | None, actor: str, env: str, reason: str,
              detail: dict | None = None) -> None:
        with self.engine.begin() as conn:
            self._audit(conn, action, version, actor, env, reason, detail)

    def set_pinned(self, version: str, pinned: bool, *, actor: str, env: str, reason: str) -> None:
        """Pin VERSION (gc keeps it, whatever its --keep) or unpin it; audited in the same transaction."""
        with self.engine.begin() as conn:
            self._version_row(conn, version)
            conn.execute(versions_table.update().where(versions_table.c.version == version).values(pinned=pinned))
            self._audit(conn, "pin" if pinned else "unpin", version, actor, env, reason, None)


def fingerprint(table: pa.Table) -> tuple[int, ...]:
    """A cheap checksum of a table: its rows, each column's non-null count, each text column's total length.
    A loaded table must give the same as its snapshot file (`reval verify`)."""
    counts = [table.num_rows - table[f.name].null_count for f in table.schema]
    lengths = [pc.sum(pc.utf8_length(table[f.name])).as_py() or 0 for f in table.schema if pa.types.is_string(f.type)]
    return (table.num_rows, *counts, *lengths)


def _hex(text: str) -> str:
    if not all(c in "0123456789abcdef" for c in text):
        raise ValueError(f"not a hex digest: {text!r}")
    return text

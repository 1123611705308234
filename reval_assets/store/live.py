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
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reval_assets.domain.enums import VersionStatus
from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.parallel import map_in_threads
from reval_assets.store.bulk import adbc_connection, dialect_of, identifier, load_table
from reval_assets.store.faults import fault_point
from reval_assets.store.files import private_file
from reval_assets.store.snapshots import VERSION_ID, FileRef, Manifest, UnknownVersionError
from reval_assets.store.writer_lock import writer_lock

LIVE_VIEWS: tuple[str, ...] = (*ENTITIES, "discrepancies")
# Entities added after the first versions were staged: a version without them shows them empty.
LATER_ENTITIES: tuple[str, ...] = ("hidden_discrepancies",)
# Connections a staging load uses at once. PostgreSQL encodes and COPYs on two backends in parallel;
# SQLite has one writer (and a second ADBC connection in the process would be a second copy of SQLite).
LOAD_CONNECTIONS = {"sqlite": 1, "postgresql": 2}

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


class PublishError(Exception):
    """A publish or rollback that cannot go ahead; live is unchanged."""


class ConcurrentPublishError(PublishError):
    pass


class StagedAgainst:
    """`LiveStore.publish`'s default expectation: live is still the version the candidate was staged against."""


STAGED_AGAINST = StagedAgainst()


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def file_table(ref: FileRef) -> str:
    return identifier(f"rb_{ref.sha256[:32]}")


def version_view(version: str, view: str) -> str:
    if not VERSION_ID.match(version):
        raise ValueError(f"not a generated version id: {version!r}")
    return identifier(f"r{version}_{view}")


def _entity_of(view: str) -> str:
    return "connections" if view == "discrepancies" else view


def union_sql(view: str, tables: list[str]) -> str:
    """The SELECT behind a live view over one version's batch tables of its entity."""
    where = " WHERE is_discrepancy" if view == "discrepancies" else ""
    fields = ENTITY_SPECS[_entity_of(view)].schema
    if not tables:  # an entity a version staged before it existed: its view is empty
        return "SELECT " + ", ".join(f"CAST(NULL AS {_sql_type(f.type)}) AS {identifier(f.name)}"
                                     for f in fields) + " WHERE 1 = 0"
    columns = ", ".join(identifier(f.name) for f in fields)
    return " UNION ALL ".join(f"SELECT {columns} FROM {identifier(t)}{where}" for t in tables)


def _sql_type(arrow: pa.DataType) -> str:
    for test, name in ((pa.types.is_date, "DATE"), (pa.types.is_timestamp, "TIMESTAMP"),
                       (pa.types.is_integer, "BIGINT"), (pa.types.is_boolean, "BOOLEAN")):
        if test(arrow):
            return name
    return "TEXT"


@dataclass(frozen=True)
class LoadReport:
    tables_loaded: int
    tables_reused: int
    rows_loaded: int


class LiveStore:
    def __init__(self, url: str, *, lock_timeout_seconds: float = 5.0, create: bool = True):
        """`create`: make the catalog tables if they are missing; without it a store with no catalog
        reads as empty and nothing is created (read-only commands must not make an empty catalog)."""
        self.url = url
        self.dialect = dialect_of(url)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.engine = self._make_engine(url, create=create)
        # Reads begin a plain (deferred) transaction on SQLite: they never wait behind a publish's write lock.
        self.reader = self.engine.execution_options(reval_read=True)
        self._has_catalog = False
        if create and not set(metadata.tables) <= self._table_names():
            self.create_catalog()
        elif create:
            self._add_count_columns()

    def create_catalog(self) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(live_table.c.id)).first() is None:
                conn.execute(live_table.insert().values(id=1, version=None))
        self._has_catalog = True

    def _add_count_columns(self) -> None:
        """A catalog from before an entity existed gains its row-count column (null for the older versions)."""
        present = {c["name"] for c in sa.inspect(self.reader).get_columns(versions_table.name)}
        missing = [c.name for c in versions_table.columns if c.name.startswith("rows_") and c.name not in present]
        if not missing:  # the usual case: no write transaction at all (it would wait behind another writer)
            return
        with self.engine.begin() as conn:
            for name in missing:
                conn.exec_driver_sql(f"ALTER TABLE {versions_table.name} ADD COLUMN {name} BIGINT")

    @property
    def has_catalog(self) -> bool:
        if not self._has_catalog:
            self._has_catalog = {versions_table.name, live_table.name} <= self._table_names()
        return self._has_catalog

    def _table_names(self) -> set[str]:
        if self.dialect == "sqlite" and not self._sqlite_file_exists():
            return set()
        return set(sa.inspect(self.reader).get_table_names())

    def _sqlite_file_exists(self) -> bool:
        database = sa.engine.make_url(self.url).database
        return bool(database) and database != ":memory:" and Path(database).exists()

    def writer_lock(self, action: str) -> AbstractContextManager[None]:
        """The store's writer lock (see `reval_assets.store.writer_lock`)."""
        return writer_lock(self.engine, action)

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict | None:
        """The store's identity row (store_id, env, batches, created_at), or None."""
        if not self.has_catalog or store_table.name not in self._table_names():
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

    def record_checks(self, version: str, results: list[dict], *, actor: str, env: str) -> bool:
        """Store check results; a failed blocking check marks the version blocked."""
        passed = all(r["passed"] for r in results if r.get("blocking", True))
        fault_point("checks")
        with self.engine.begin() as conn:
            values: dict = {"checks_passed": passed, "checks": json.dumps(results, default=str)}
            if not passed:
                values["status"] = VersionStatus.BLOCKED.value
            conn.execute(versions_table.update().where(versions_table.c.version == version).values(**values))
            if not passed:
                failed = [r["name"] for r in results if not r["passed"] and r.get("blocking", True)]
                self._audit(conn, "block", version, actor, env, "blocking checks failed", {"failed": failed})
        return passed

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

    def set_pinned(self, version: str, pinned: bool) -> None:
        with self.engine.begin() as conn:
            self._version_row(conn, version)
            conn.execute(versions_table.update().where(versions_table.c.version == version).values(pinned=pinned))

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

    # -- helpers ---------------------------------------------------------------------------
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

"""The sync's core steps timed one by one, in one process, without Dagster (same code, same data).

Timing wrappers are put around the core's own functions (module attributes in this process
only), so every stage is the real code path of `reval sync`:

| stage | what is timed |
|---|---|
| source | `SyntheticSource.extract()`: the four wire tables, generated |
| transforms | `conform` + `split_by_batch` (landing) and `build_entities` per batch |
| snapshot_write | `SnapshotStore.put_table`: Parquet encode + sha256 + fsync'd write (raw and entities) |
| snapshot_read | reading files back (raw inputs for the build, sha256-verified; manifest composition) |
| staging_load | `CREATE TABLE` + ADBC bulk ingest of every batch table, and the COMMIT |
| index_build | the `CREATE INDEX` statements on the batch tables |
| views | the version's views and its catalog row (`LiveStore.stage`) |
| checks | `check_candidate`: reading the candidate back, the blocking checks, recording them |
| publish | `operations.publish`: re-point 4 views + pointer + audit in one transaction |

After the sync, `loader_ceiling` loads the same batch tables again, already in memory and already
typed as the load hands them to the driver, into an empty database: the bulk loader's own rate on
this machine, which no code of ours can beat (and, on PostgreSQL, a second bulk path beside it).
"""

from __future__ import annotations

import functools
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import STAGES

if TYPE_CHECKING:
    import pyarrow as pa

    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.store.snapshots import Manifest


class _Clock:
    """Wall seconds per stage: the union of the intervals in which some thread was in that stage.

    Some work runs on threads (raw-file writes; PostgreSQL's two load connections), so summing each
    call's time would count overlapping calls twice. Where two stages overlap (one connection loading
    while the other builds an index), the shared time counts once, for the first in `_FIRST`.
    """

    def __init__(self) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self._thread = threading.local()  # nested timed calls count once, in the outermost stage

    def add(self, key: str, started: float, ended: float) -> None:
        with self._lock:
            self.intervals.setdefault(key, []).append((started, ended))

    def wrap(self, key: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            if getattr(self._thread, "active", None):
                return fn(*args, **kwargs)
            self._thread.active = key
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._thread.active = None
                self.add(key, started, time.perf_counter())

        return timed

    def seconds(self) -> dict[str, float]:
        counted: list[tuple[float, float]] = []
        out: dict[str, float] = {}
        for key in sorted(self.intervals, key=lambda k: _FIRST.index(k) if k in _FIRST else len(_FIRST)):
            merged = _union(self.intervals[key])
            out[key] = _length(merged) - _length(_intersection(merged, counted))
            counted = _union(counted + merged)
        return out


_FIRST = ("staging_load", "index_build")


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b if max(s1, s2) < min(e1, e2)]


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


class _TimedCursor:
    def __init__(self, cursor: object, clock: _Clock):
        self._cursor, self._clock = cursor, clock

    def __enter__(self) -> _TimedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def execute(self, sql: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith("CREATE INDEX"):
            started = time.perf_counter()
            try:
                return self._cursor.execute(sql, *args, **kwargs)
            finally:
                self._clock.add("index_build", started, time.perf_counter())
        return self._cursor.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._cursor, name)


class _TimedConnection:
    def __init__(self, connection: object, clock: _Clock):
        self._connection, self._clock = connection, clock

    def cursor(self) -> _TimedCursor:
        return _TimedCursor(self._connection.cursor(), self._clock)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._connection, name)


def _timed_adbc(original: Callable, clock: _Clock) -> Callable:
    @contextmanager
    def adbc_connection(url):  # type: ignore[no-untyped-def]
        with original(url) as connection:
            yield _TimedConnection(connection, clock)
            started = time.perf_counter()
            connection.commit()  # the original commits again: a no-op on an empty transaction
            clock.add("staging_load", started, time.perf_counter())

    return adbc_connection


@contextmanager
def instrumented() -> Iterator[_Clock]:
    """Wrap the core's functions with timers for the duration of the block."""
    from reval_assets.pipeline import steps
    from reval_assets.store import live, snapshots

    clock = _Clock()
    patches = [
        (steps, "conform", clock.wrap("transforms_conform", steps.conform)),
        (steps, "split_by_batch", clock.wrap("transforms_split", steps.split_by_batch)),
        (steps, "build_entities", clock.wrap("transforms_build", steps.build_entities)),
        (snapshots.SnapshotStore, "put_table", clock.wrap("snapshot_write", snapshots.SnapshotStore.put_table)),
        (snapshots.SnapshotStore, "read_table", clock.wrap("snapshot_read", snapshots.SnapshotStore.read_table)),
        (snapshots.SnapshotStore, "read_bytes", clock.wrap("snapshot_read", snapshots.SnapshotStore.read_bytes)),
        (live, "load_table", clock.wrap("staging_load", live.load_table)),
        (live.LiveStore, "stage", clock.wrap("views", live.LiveStore.stage)),
        (live, "adbc_connection", _timed_adbc(live.adbc_connection, clock)),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield clock
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def run_stages(*, url: str, home: str, doctors: int, seed: int = 0) -> dict:
    """One full sync through the core steps on a fresh store, each stage timed."""
    from reval_assets.pipeline import operations
    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.pipeline.steps import build_batch, land, land_batch, stage_candidate
    from reval_assets.settings import Settings
    from reval_assets.sources.synthetic import SyntheticSource

    settings = Settings(home=Path(home), live_url=url, doctors=doctors, seed=seed, batches=16)
    runtime = Runtime(settings)
    source = SyntheticSource(doctors=doctors, seed=seed)
    started = time.perf_counter()
    with instrumented() as clock:
        clock.wrap("source", source.extract)()
        landing = land(source, runtime.snapshots, settings.batches)
        for b in range(settings.batches):
            land_batch(runtime.snapshots, landing, b)
            build_batch(runtime.snapshots, b)
        candidate = stage_candidate(runtime, actor="bench", reason="bench stages", run_id=None)
        load_total = candidate.seconds["load"]
        results = clock.wrap("checks", operations.check_candidate)(runtime, candidate.manifest)
        if not all(r.passed for r in results):
            raise RuntimeError(f"bench candidate blocked: {[r.name for r in results if not r.passed]}")
        clock.wrap("publish", operations.publish)(
            runtime, candidate.manifest.version, actor="bench", reason="bench stages"
        )
    total = time.perf_counter() - started
    # What `reval rollback` adds before its transaction: re-hashing every file of the target version.
    t0 = time.perf_counter()
    for ref in candidate.manifest.all_files():
        runtime.snapshots.read_bytes(ref)
    verify_seconds = time.perf_counter() - t0
    rows = candidate.manifest.rows()
    timed = clock.seconds()
    detail = {k: timed.get(k, 0.0) for k in ("transforms_conform", "transforms_split", "transforms_build")}
    timed["transforms"] = sum(detail.values())
    seconds = {k: timed.get(k, 0.0) for k in STAGES}
    seconds["other"] = max(0.0, total - sum(seconds.values()))
    result = {
        "doctors": doctors,
        "rows": rows,
        "rows_total": sum(rows.values()),
        "rows_loaded": candidate.load.rows_loaded,
        "seconds": seconds,
        "transforms_detail": detail,
        "load_files_seconds": load_total,
        "rollback_verify_seconds": verify_seconds,
        "snapshot_bytes": sum(ref.bytes for ref in candidate.manifest.all_files()),
        "total_seconds": total,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    result["loader_ceiling"] = loader_ceiling(runtime, candidate.manifest, home=Path(home))  # after the peak is read
    runtime.close()
    return result


def loader_ceiling(runtime: Runtime, manifest: Manifest, *, home: Path) -> dict:
    """Rows/s of bare bulk loads of the candidate's batch tables into an empty database.

    The tables are read, cast and (for SQLite) formatted before the clock starts; then each is a
    `CREATE TABLE`, the ingest and a commit, over as many connections as the staging load uses. No
    indexes, no registry rows. PostgreSQL also gets psycopg's `COPY ... FROM STDIN (FORMAT csv)` of
    the CSV that Arrow writes, another bulk path, to show that ADBC's binary COPY is not the limit.
    """
    from reval_assets.domain.schemas import ENTITY_SPECS
    from reval_assets.parallel import map_in_threads
    from reval_assets.store import bulk
    from reval_assets.store.live import LOAD_CONNECTIONS

    dialect = runtime.live.dialect
    tables = []
    for entity, refs in manifest.files.items():
        for ref in refs:
            data = runtime.snapshots.read_table(ref, verify=False).cast(ENTITY_SPECS[entity].schema)
            tables.append(bulk.as_sqlite_text(data) if dialect == "sqlite" else data)
    rows = sum(t.num_rows for t in tables)
    connections = LOAD_CONNECTIONS[dialect]
    numbered = list(enumerate(tables))
    shares = [numbered[i::connections] for i in range(connections)]
    if dialect == "sqlite":
        url = f"sqlite:///{home / 'loader_ceiling.db'}"
        schema = None
    else:
        url, schema = runtime.settings.live_url, "loader_ceiling"
        _recreate_schema(url, schema)

    def adbc_share(share: list) -> None:
        with bulk.adbc_connection(url) as connection, connection.cursor() as cursor:
            for i, data in share:
                _create_table(cursor, dialect, schema, f"t{i}", data)
                cursor.adbc_ingest(f"t{i}", data, mode="append", db_schema_name=schema)
                connection.commit()

    out = {"rows": rows, "connections": connections}
    started = time.perf_counter()
    map_in_threads(adbc_share, shares, workers=connections)
    out["adbc_rows_per_second"] = rows / (time.perf_counter() - started)
    if dialect == "postgresql":
        _recreate_schema(url, schema)
        started = time.perf_counter()
        map_in_threads(lambda share: _copy_csv(url, schema, share), shares, workers=connections)
        out["psycopg_csv_copy_rows_per_second"] = rows / (time.perf_counter() - started)
        _recreate_schema(url, schema, create=False)
    return out


def _create_table(cursor: object, dialect: str, schema: str | None, name: str, data: pa.Table) -> None:
    """The staging load's `CREATE TABLE` for `data`, in `schema` where one is given (PostgreSQL)."""
    from reval_assets.store import bulk

    ddl = bulk.create_table_sql(dialect, name, data.schema)
    cursor.execute(ddl.replace("CREATE TABLE ", f"CREATE TABLE {schema}.", 1) if schema else ddl)


def _psycopg(url: str, **kwargs: object):  # type: ignore[no-untyped-def]
    import psycopg

    from reval_assets.store.bulk import adbc_uri

    return psycopg.connect(adbc_uri(url), **kwargs)


def _recreate_schema(url: str, schema: str, *, create: bool = True) -> None:
    with _psycopg(url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            connection.execute(f"CREATE SCHEMA {schema}")


def _copy_csv(url: str, schema: str, share: list) -> None:
    import io

    import pyarrow.csv as pcsv

    with _psycopg(url) as connection, connection.cursor() as cursor:
        for i, data in share:
            _create_table(cursor, "postgresql", schema, f"t{i}", data)
            text = io.BytesIO()
            pcsv.write_csv(data, text, pcsv.WriteOptions(include_header=False))
            with cursor.copy(f"COPY {schema}.t{i} FROM STDIN (FORMAT csv)") as copy:
                copy.write(text.getbuffer())
            connection.commit()

"""Peers on the same data, machine and run: the original one-doctor-at-a-time design, dlt, Delta, Iceberg.

Every peer gets the same three entity tables, built by the core's own steps (untimed): only its part is timed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import pg_url, seconds_of, summary
from bench.stages import land_and_build
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.bulk import adbc_connection, dialect_of, load_table
from reval_assets.store.snapshots import SnapshotStore

ENTITIES = ("doctors", "connections", "recommendations")
KEYS = {"doctors": "gmc_reference_number", "connections": "gmc_reference_number",
        "recommendations": "recommendation_id"}


def entity_tables(doctors: int, workdir: str, seed: int = 0) -> dict[str, pa.Table]:
    """The three entities of a synthetic population, through the core's land and build steps."""
    root = Path(workdir) / "peer-snapshots"
    store = SnapshotStore(root)
    builds = land_and_build(store, SyntheticSource(doctors=doctors, seed=seed))
    parts = {e: [store.read_table(build.refs[e]) for build in builds] for e in ENTITIES}
    shutil.rmtree(root, ignore_errors=True)
    return {e: pa.concat_tables(parts[e]).combine_chunks() for e in ENTITIES}


# -- the original design: delete live, then one transaction per doctor -------------------------


def peer_legacy(*, url: str, home: str, doctors: int, sample: int) -> dict:
    """Delete the live tables, then upsert doctors one at a time, one transaction each (sampled)."""
    tables = entity_tables(doctors, home)
    dialect = dialect_of(url)
    _fill_legacy_tables(url, dialect, tables)
    db, placeholder = _legacy_connection(url, dialect)
    doctor_rows, conn_rows, by_doctor, recs = _legacy_sample(tables, sample)
    sql = {e: _upsert_sql(e, tables[e], placeholder) for e in ENTITIES}
    insert_rec = (f"INSERT INTO legacy_recommendations ({', '.join(recs.column_names)}) "
                  f"VALUES ({', '.join([placeholder] * len(recs.column_names))})")
    delete_rec = f"DELETE FROM legacy_recommendations WHERE gmc_reference_number = {placeholder}"

    def delete_live() -> None:  # the incident's first step: the live data is gone from here on
        db.execute("BEGIN")
        for e in ENTITIES:
            db.execute(f"DELETE FROM legacy_{e}")
        db.execute("COMMIT")

    def upsert_sample() -> None:
        for row in doctor_rows:
            number = row[0]
            db.execute("BEGIN")
            db.execute(sql["doctors"], row)
            if number in conn_rows:
                db.execute(sql["connections"], conn_rows[number])
            db.execute(delete_rec, (number,))
            for rec in by_doctor.get(number, ()):
                db.execute(insert_rec, rec)
            db.execute("COMMIT")

    delete_seconds, sample_seconds = seconds_of(delete_live), seconds_of(upsert_sample)
    db.close()
    per_doctor = sample_seconds / len(doctor_rows)
    return {"doctors": doctors, "sample_doctors": len(doctor_rows),
            "sample_rows": len(doctor_rows) + len(conn_rows) + recs.num_rows, "delete_seconds": delete_seconds,
            "sample_seconds": sample_seconds, "seconds_per_doctor": per_doctor,
            "extrapolated_seconds": delete_seconds + per_doctor * doctors}


def _fill_legacy_tables(url: str, dialect: str, tables: dict[str, pa.Table]) -> None:
    """The live tables before the resync, with their key indexes."""
    with adbc_connection(url) as adbc, adbc.cursor() as cursor:
        for e in ENTITIES:
            load_table(cursor, dialect, f"legacy_{e}", tables[e])
            cursor.execute(f"CREATE UNIQUE INDEX legacy_{e}_key ON legacy_{e} ({KEYS[e]})")
        cursor.execute("CREATE INDEX legacy_rec_gmc ON legacy_recommendations (gmc_reference_number)")


def _legacy_connection(url: str, dialect: str):  # type: ignore[no-untyped-def]
    """One open DB-API connection in autocommit (transactions are explicit), and its placeholder."""
    if dialect == "sqlite":
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")  # as the live store has it
        return db, "?"
    return psycopg.connect(pg_url(url.rsplit("/", 1)[1], driver=""), autocommit=True), "%s"


def _legacy_sample(tables: dict[str, pa.Table], sample: int) -> tuple[list[tuple], dict, dict, pa.Table]:
    """The first `sample` doctors' rows, their connections by doctor and their recommendations by doctor."""
    chosen = tables["doctors"].slice(0, sample)
    numbers = chosen["gmc_reference_number"]
    connections = tables["connections"].filter(pc.is_in(tables["connections"]["gmc_reference_number"], numbers))
    recs = tables["recommendations"].filter(pc.is_in(tables["recommendations"]["gmc_reference_number"], numbers))
    by_doctor: dict[str, list[tuple]] = {}
    for row in _rows(recs):
        by_doctor.setdefault(row[recs.column_names.index("gmc_reference_number")], []).append(row)
    return _rows(chosen), {row[0]: row for row in _rows(connections)}, by_doctor, recs


def _upsert_sql(entity: str, table: pa.Table, placeholder: str) -> str:
    columns = table.column_names
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != KEYS[entity])
    return (f"INSERT INTO legacy_{entity} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))}) "
            f"ON CONFLICT ({KEYS[entity]}) DO UPDATE SET {updates}")


def _rows(table: pa.Table) -> list[tuple]:
    """Rows as tuples of DB-API values (dates and times as ISO text, which both stores accept)."""
    columns = []
    for column in table.columns:
        values = column.to_pylist()
        if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
            values = [v.isoformat() if v is not None else None for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


# -- dlt: write_disposition="replace" ---------------------------------------------------------


def peer_dlt(*, url: str, home: str, doctors: int, runs: int) -> dict:
    """`dlt` replace of the three tables, its default strategy (truncate-and-insert): run 1 creates, later runs
    replace."""
    tables = entity_tables(doctors, home)
    pipeline = _dlt_pipeline(url, home)
    runs_out = [_dlt_run(pipeline, tables) for _ in range(runs)]
    return {"doctors": doctors, "rows_total": sum(t.num_rows for t in tables.values()), "first_run": runs_out[0],
            "replace_runs": runs_out[1:], "replace_seconds": summary([r["seconds"] for r in runs_out[1:]])}


def _dlt_pipeline(url: str, workdir: str):  # type: ignore[no-untyped-def]
    import dlt

    if dialect_of(url) == "sqlite":
        destination = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{Path(workdir) / 'dlt.db'}")
    else:  # dlt insists on a password; the bench server trusts local connections and ignores it
        credentials = pg_url(url.rsplit("/", 1)[1], driver="").replace("postgres@", "postgres:trust@", 1)
        destination = dlt.destinations.postgres(credentials=credentials)
    return dlt.pipeline(pipeline_name="bench_dlt", destination=destination, dataset_name="dlt_replace",
                        pipelines_dir=str(Path(workdir) / "dlt-pipelines"))


def _dlt_run(pipeline, tables: dict[str, pa.Table]) -> dict:  # type: ignore[no-untyped-def]
    import dlt

    resources = [dlt.resource(tables[e], name=e, write_disposition="replace") for e in ENTITIES]
    started = time.perf_counter()
    info = pipeline.run(resources)
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    return {"seconds": seconds, "steps": {step.step: (step.finished_at - step.started_at).total_seconds()
                                          for step in pipeline.last_trace.steps
                                          if step.started_at and step.finished_at}}


# -- Delta Lake and Iceberg: a version per overwrite, restore/rollback to the previous ---------


def peer_lake(*, lake: str, doctors: int, milestones: list[int], samples: int, workdir: str,
              budget_seconds: float = 1800) -> dict:
    """Write versions up to each milestone (within the budget), then time `samples` rollbacks there."""
    write_version, prepare_rollback = LAKES[lake](entity_tables(doctors, workdir), Path(workdir) / lake)
    write_seconds: list[float] = []
    out: dict = {"doctors": doctors, "milestones": {}}
    deadline = time.perf_counter() + budget_seconds
    for milestone in milestones:
        while len(write_seconds) < milestone and time.perf_counter() < deadline:
            write_seconds.append(seconds_of(write_version))
        if (written := len(write_seconds)) < milestone:
            out["stopped"] = f"building versions took longer than {budget_seconds:.0f} s; measured at {written}"
            milestone = written
        rollback = prepare_rollback()
        times = [seconds_of(rollback, i) for i in range(samples)]
        out["milestones"][str(milestone)] = {"versions": milestone,
                                             "rollback_ms": summary([t * 1000 for t in times], percentiles=True)}
    out["write_version_seconds"] = summary(write_seconds)
    return out


# A lake's (write_version(), prepare_rollback()); `prepare_rollback()` (untimed) returns `rollback(i)`: back one
# version when `i` is even, forward again when odd.
Lake = tuple[Callable[[], None], Callable[[], Callable[[int], None]]]


def _delta(tables: dict[str, pa.Table], root: Path) -> Lake:
    from deltalake import DeltaTable, write_deltalake

    def write_version() -> None:
        for e in ENTITIES:
            write_deltalake(str(root / e), tables[e], mode="overwrite")

    def prepare_rollback() -> Callable[[int], None]:
        handles = {e: DeltaTable(str(root / e)) for e in ENTITIES}
        latest = {e: handles[e].version() for e in ENTITIES}

        def rollback(i: int) -> None:
            for e in ENTITIES:  # three restores: Delta has no transaction across tables
                handles[e].restore(latest[e] - 1 if i % 2 == 0 else latest[e])

        return rollback

    return write_version, prepare_rollback


def _iceberg(tables: dict[str, pa.Table], root: Path) -> Lake:
    from pyiceberg.catalog.sql import SqlCatalog

    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{root / 'warehouse'}")
    catalog.create_namespace("reval")
    handles = {e: catalog.create_table(f"reval.{e}", schema=tables[e].schema) for e in ENTITIES}
    snapshots: dict[str, list[int]] = {e: [] for e in ENTITIES}

    def write_version() -> None:
        for e in ENTITIES:
            handles[e].overwrite(tables[e])
            snapshots[e].append(handles[e].current_snapshot().snapshot_id)

    def rollback(i: int) -> None:
        for e in ENTITIES:  # one commit per table: no transaction across tables
            manage = handles[e].manage_snapshots()
            if i % 2 == 0:
                manage.rollback_to_snapshot(snapshots[e][-2]).commit()
            else:  # forward again: the newest is no ancestor of the rolled-back state
                manage.set_current_snapshot(snapshots[e][-1]).commit()

    return write_version, lambda: rollback


LAKES: dict[str, Callable[[dict[str, pa.Table], Path], Lake]] = {"delta": _delta, "iceberg": _iceberg}

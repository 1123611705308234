"""Bulk loads of Arrow tables through ADBC: SQLite inserts in one transaction, PostgreSQL COPY."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import URL, make_url

from reval_assets.spans import timed
from reval_assets.store.files import private_file

SAFE_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_SQL_TYPES = {
    "sqlite": {"string": "TEXT", "int64": "INTEGER", "int32": "INTEGER", "date32[day]": "TEXT",
               "timestamp[us]": "TEXT", "bool": "INTEGER", "double": "REAL"},
    "postgresql": {"string": "TEXT", "int64": "BIGINT", "int32": "INTEGER", "date32[day]": "DATE",
                   "timestamp[us]": "TIMESTAMP", "bool": "BOOLEAN", "double": "DOUBLE PRECISION"},
}


def identifier(name: str) -> str:
    """`name` if it is one of our generated identifiers; user text never reaches SQL as a name."""
    if not SAFE_IDENTIFIER.match(name):
        raise ValueError(f"refusing unsafe SQL identifier {name!r}")
    return name


def dialect_of(url: str | URL) -> str:
    name = make_url(url).get_backend_name()
    if name not in _SQL_TYPES:
        raise ValueError(f"the live store must be SQLite or PostgreSQL, not {name!r}: set REVAL_LIVE_URL to "
                         "sqlite:///PATH or postgresql+psycopg://USER@HOST:5432/DB")
    return name


def create_table_sql(dialect: str, table: str, schema: pa.Schema) -> str:
    columns = []
    for f in schema:
        sql_type = _SQL_TYPES[dialect][str(f.type)]
        columns.append(f"{identifier(f.name)} {sql_type}{'' if f.nullable else ' NOT NULL'}")
    return f"CREATE TABLE {identifier(table)} ({', '.join(columns)})"


def adbc_uri(url: str | URL) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def adbc_connection(url: str | URL) -> Iterator[object]:
    """An ADBC DB-API connection to the live store, committed on success, rolled back otherwise."""
    uri = adbc_uri(url)
    if dialect_of(url) == "sqlite":
        import adbc_driver_sqlite.dbapi as driver

        if uri != ":memory:":
            private_file(Path(uri))  # as LiveStore makes it: 0600 before SQLite creates it
    else:
        import adbc_driver_postgresql.dbapi as driver
    connection = driver.connect(uri)
    try:
        if dialect_of(url) == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 30000")
        yield connection
        connection.commit()
    except BaseException:
        try:
            connection.rollback()
        except Exception:  # noqa: BLE001 - connection gone: the server rolled back; report the first error
            pass
        raise
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - same: closing a dead connection must not hide why it died
            pass


@timed("staging_load")
def load_table(cursor: object, dialect: str, table: str, data: pa.Table) -> None:
    """Create `table` with types from `data`'s schema and bulk-load it."""
    cursor.execute(create_table_sql(dialect, table, data.schema))
    if data.num_rows:
        cursor.adbc_ingest(identifier(table), as_sqlite_text(data) if dialect == "sqlite" else data, mode="append")


def as_sqlite_text(data: pa.Table) -> pa.Table:
    """Dates and timestamps as the exact text the SQLite driver would store, formatted by Arrow.

    SQLite has no date type, so the driver formats each value itself, row by row; Arrow does it
    columnar, which makes the whole ingest ~1.6x faster. Same text: `2023-01-02`, `2023-01-02T03:04:05.000000`.
    """
    for i, f in enumerate(data.schema):
        if pa.types.is_date32(f.type):
            data = data.set_column(i, f.name, pc.cast(data.column(i), pa.string()))
        elif pa.types.is_timestamp(f.type):  # cast gives `2023-01-02 03:04:05.000000`
            text = pc.replace_substring(pc.cast(data.column(i), pa.string()), " ", "T", max_replacements=1)
            data = data.set_column(i, f.name, text)
    return data


def unreachable(url: str | URL, timeout_seconds: int = 3) -> str | None:
    """None if a database answers at `url`, else the first line of why not."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": timeout_seconds})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return str(error).splitlines()[0]

"""TIS trainees read straight from the TIS (TCS) MySQL/MariaDB database, as TCS's ConnectionInfo query gives them.

The query follows the rules of TCS `traineeInfoForConnection.sql` and its row mapper (written here from those
rules, in the real TCS table and column names):

- every person with ContactDetails and a GMC number, except NULL, UNKNOWN, NA and N/A (any case) and numbers
  holding a non-breaking space; any other GMC number (blank, short, shared) is passed through, since the sync
  quarantines it downstream;
- people whose `Person.role` mentions "dummy" or "placeholder" are left out;
- `programmeName`: the names of the current programme memberships (start <= today <= end), joined with " | ";
- with exactly one current membership: its owner, type, start and end dates, and the max curriculum end date of
  its curriculum memberships; with more than one, all of those are null. Start, end and curriculum end are
  nulled together when any one of them is null (the row mapper's rule);
- `placementGrade`: the distinct grade ids of the current placements, joined with " | ";
- `tcsDesignatedBody`: the owner's designated body (TCS `DesignatedBodyMapper`), mapped here per distinct owner.

The result is streamed with a server-side cursor, one bounded chunk at a time, each chunk made into Arrow text
columns at once, so a national extract is never held both as rows and as a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from reval_assets.domain.designated_bodies import designated_body_of_owner
from reval_assets.domain.schemas import RAW_SPECS, RECORD_COLUMN
from reval_assets.sources.base import Source, SourceError, WireInput
from reval_assets.sources.overlay import Overlay

SYSTEM = "TCS database"
_DRIVER = "mysql+pymysql"
_BACKENDS = ("mysql", "mariadb")
_NBSP = "\u00a0"
_CONNECT_TIMEOUT_SECONDS = 15
_UNREACHABLE = {2002, 2003, 2005, 2006, 2013}  # client errors: no server, unknown host, gone away, lost
_LOGIN_REFUSED = {1044, 1045, 1698}
_NO_SCHEMA = {1049: "database", 1054: "column", 1146: "table"}

# The TCS tables and columns the query reads (names as in TIS-TCS's Flyway migrations and queries).
TCS_COLUMNS: dict[str, tuple[str, ...]] = {
    "Person": ("id", "role"),
    "ContactDetails": ("id", "forenames", "surname"),
    "GmcDetails": ("id", "gmcNumber"),
    "Programme": ("id", "programmeName", "owner"),
    "ProgrammeMembership": ("id", "uuid", "personId", "programmeId", "programmeMembershipType",
                            "programmeStartDate", "programmeEndDate"),
    "CurriculumMembership": ("programmeMembershipUuid", "curriculumEndDate"),
    "Placement": ("traineeId", "gradeId", "dateFrom", "dateTo"),
}

# Derived tables rather than CTEs: TCS runs on MySQL 5.7-compatible servers as well as MariaDB.
CONNECTION_INFO_QUERY = sa.text("""
SELECT
  cd.id AS tcsPersonId,
  gmc.gmcNumber AS gmcReferenceNumber,
  cd.forenames AS doctorFirstName,
  cd.surname AS doctorLastName,
  cur.programmeNames AS programmeName,
  one.programmeMembershipType AS programmeMembershipType,
  oneProgramme.owner AS programmeOwner,
  one.programmeStartDate AS programmeMembershipStartDate,
  one.programmeEndDate AS programmeMembershipEndDate,
  curriculum.curriculumEndDate AS curriculumEndDate,
  grades.gradeIds AS placementGrade
FROM ContactDetails cd
JOIN GmcDetails gmc ON gmc.id = cd.id
LEFT JOIN Person p ON p.id = cd.id
LEFT JOIN (
  SELECT pm.personId, COUNT(*) AS currentCount,
         GROUP_CONCAT(prg.programmeName ORDER BY pm.programmeStartDate, pm.id SEPARATOR ' | ') AS programmeNames
  FROM ProgrammeMembership pm
  LEFT JOIN Programme prg ON prg.id = pm.programmeId
  WHERE pm.programmeStartDate <= :today AND pm.programmeEndDate >= :today
  GROUP BY pm.personId
) cur ON cur.personId = cd.id
LEFT JOIN ProgrammeMembership one
  ON one.personId = cd.id AND cur.currentCount = 1
  AND one.programmeStartDate <= :today AND one.programmeEndDate >= :today
LEFT JOIN Programme oneProgramme ON oneProgramme.id = one.programmeId
LEFT JOIN (
  SELECT programmeMembershipUuid, MAX(curriculumEndDate) AS curriculumEndDate
  FROM CurriculumMembership
  GROUP BY programmeMembershipUuid
) curriculum ON curriculum.programmeMembershipUuid = one.uuid
LEFT JOIN (
  SELECT traineeId,
         GROUP_CONCAT(DISTINCT CAST(gradeId AS CHAR) ORDER BY gradeId SEPARATOR ' | ') AS gradeIds
  FROM Placement
  WHERE dateFrom <= :today AND dateTo >= :today
  GROUP BY traineeId
) grades ON grades.traineeId = cd.id
WHERE gmc.gmcNumber IS NOT NULL
  AND LOWER(gmc.gmcNumber) NOT IN ('unknown', 'na', 'n/a')
  AND gmc.gmcNumber NOT LIKE :nbsp
  AND LOWER(COALESCE(p.role, '')) NOT LIKE '%dummy%'
  AND LOWER(COALESCE(p.role, '')) NOT LIKE '%placeholder%'
ORDER BY cd.id
""")

_DATES = ("programmeMembershipStartDate", "programmeMembershipEndDate", "curriculumEndDate")


def tcs_url(url: str) -> URL:
    """`url` on the pymysql driver (`mysql://` and `mariadb://` accepted); the sync installs no other driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise SourceError(f"{SYSTEM} URL is not a database URL "
                          "(expected mysql+pymysql://user:password@host/db)") from None
    if parsed.get_backend_name() not in _BACKENDS:
        raise SourceError(f"{SYSTEM} URL must be mysql://, mariadb:// or mysql+pymysql://, "
                          f"not {parsed.drivername}://")
    if not parsed.database:
        raise SourceError(f"{SYSTEM} URL {_shown(parsed)} names no database (add /<database>)")
    return parsed.set(drivername=_DRIVER)


def _shown(url: URL) -> str:
    """The URL as people may read it: never the password, nor query options."""
    return url.set(password=None, query={}).render_as_string(hide_password=False)


def _address(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 3306}"


def tis_trainees_input(url: str, *, designated_bodies: Iterable[str], chunk_rows: int = 10_000,
                       today: date | None = None) -> tuple[WireInput, dict]:
    """The `tis_trainees` input read from the TCS database at `url`, and how the read went (rows, seconds, chunks).

    `today` decides which memberships and placements are current; by default the database server's date, as in TCS.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows}")
    target = tcs_url(url)
    started = time.perf_counter()
    engine = sa.create_engine(target, poolclass=NullPool,
                              connect_args={"connect_timeout": _CONNECT_TIMEOUT_SECONDS})
    try:
        with _guarded(target), engine.connect() as conn:
            _check_schema(conn, target)
            table, chunks, as_of = _read(conn, _body_mapper(designated_bodies), chunk_rows, today)
    finally:
        engine.dispose()
    origin = f"{SYSTEM} {_shown(target)}"
    read_as = f"{table.num_rows:,} ConnectionInfo rows from the {SYSTEM}"
    meta = {"rows": table.num_rows, "seconds": round(time.perf_counter() - started, 3), "chunks": chunks,
            "as_of": as_of.isoformat(), "origin": origin}
    return WireInput(table, origin, read_as=read_as), meta


def _body_mapper(designated_bodies: Iterable[str]) -> Callable[[str | None], str | None]:
    codes, known = tuple(designated_bodies), {}

    def body_of(owner: str | None) -> str | None:
        if owner not in known:
            known[owner] = designated_body_of_owner(owner, codes)
        return known[owner]

    return body_of


def _read(conn: Connection, body_of: Callable, chunk_rows: int, today: date | None) -> tuple[pa.Table, int, date]:
    as_of = today or conn.execute(sa.text("SELECT CURRENT_DATE")).scalar_one()
    # Programme names of many current memberships must not be cut at the server's default 1,024 bytes.
    conn.execute(sa.text("SET SESSION group_concat_max_len = 1048576"))
    streamed = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
    result = streamed.execute(CONNECTION_INFO_QUERY, {"today": as_of, "nbsp": f"%{_NBSP}%"})
    names = list(result.keys())
    parts = [_chunk_table(names, rows, body_of) for rows in result.partitions(chunk_rows)]
    table = pa.concat_tables(parts) if parts else _chunk_table(names, [], body_of)
    return table.append_column(RECORD_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64))), len(parts), as_of


def _chunk_table(names: list[str], rows: Sequence[Sequence], body_of: Callable) -> pa.Table:
    """One chunk of result rows as the wire table's text columns (without `_record`)."""
    got = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else dict.fromkeys(names, ())
    dated = [all(values) for values in zip(*(got[name] for name in _DATES), strict=True)]
    text = {
        **{name: [_text(v) for v in values] for name, values in got.items() if name not in _DATES},
        **{name: [_day(v) if ok else None for v, ok in zip(got[name], dated, strict=True)] for name in _DATES},
        "tcsDesignatedBody": [body_of(owner) for owner in got["programmeOwner"]],
    }
    spec = RAW_SPECS["tis_trainees"]
    return pa.table({c.wire: pa.array(text[c.wire], pa.string()) for c in spec.columns})


def _day(value: object) -> str:
    # pymysql gives a zero or invalid date ("0000-00-00") as its text: passed on, for conform to quarantine.
    return value.isoformat() if isinstance(value, date) else str(_text(value))


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_schema(conn: Connection, url: URL) -> None:
    """Every table and column the query reads is there, or a SourceError naming the first missing one."""
    found = conn.execute(
        sa.text("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :tables").bindparams(
            sa.bindparam("tables", expanding=True)),
        {"tables": list(TCS_COLUMNS)},
    ).all()
    columns: dict[str, set[str]] = {}
    for table, column in found:
        columns.setdefault(table.casefold(), set()).add(column.casefold())
    for table, needed in TCS_COLUMNS.items():
        have = columns.get(table.casefold())
        if have is None:
            raise SourceError(f"{SYSTEM} at {_address(url)} has no table {table} in database {url.database}: "
                              "is this a TCS database?")
        missing = next((c for c in needed if c.casefold() not in have), None)
        if missing:
            raise SourceError(f"{SYSTEM} at {_address(url)} has no column {missing} in table {table}: "
                              "is this a TCS database?")


@contextmanager
def _guarded(url: URL) -> Iterator[None]:
    """Turns a driver failure into a SourceError naming the system and what went wrong, never the password."""
    try:
        yield
    except sa.exc.DBAPIError as error:
        raise _failure(error, url) from None


def _failure(error: sa.exc.DBAPIError, url: URL) -> SourceError:
    args = getattr(error.orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1] if len(args) > 1 else error.orig)
    if url.password:
        message = message.replace(str(url.password), "***")
    where = f"{SYSTEM} at {_address(url)}"
    if code in _UNREACHABLE:
        return SourceError(f"{where} is unreachable: {message}")
    if code in _LOGIN_REFUSED:
        return SourceError(f"{where} refused the login of user {url.username!r}: {message}")
    if code in _NO_SCHEMA:
        return SourceError(f"{where} has no such {_NO_SCHEMA[code]}: {message}: is this a TCS database?")
    return SourceError(f"{where} failed the ConnectionInfo query: {message}")


def TcsTraineesSource(base: Source, url: str, *, designated_bodies: Iterable[str],  # noqa: N802 - a source
                      chunk_rows: int = 10_000) -> Overlay:
    """`base`'s inputs, with `tis_trainees` read from the TCS database instead (once per instance)."""
    parsed, bodies = tcs_url(url), tuple(designated_bodies)
    return Overlay(base, "tis_trainees", lambda: tis_trainees_input(
        parsed.render_as_string(hide_password=False), designated_bodies=bodies, chunk_rows=chunk_rows),
        description=f"TIS trainees from the {SYSTEM} {_shown(parsed)}", tag="reval-tcs-v1")

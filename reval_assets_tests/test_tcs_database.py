"""The TCS-database source against a real MariaDB: TCS's ConnectionInfo rules, streaming, and failures named."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from reval_assets.domain.conform import conform
from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.domain.schemas import RAW_SPECS, RECORD_COLUMN
from reval_assets.sources import documents
from reval_assets.sources.base import SourceError
from reval_assets.sources.files import wire_table
from reval_assets.sources.json_documents import decode
from reval_assets.sources.tcs_database import TcsTraineesSource, tis_trainees_input

MARIADB_URL = os.environ.get("REVAL_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE_MARIADB = os.environ.get("REVAL_REQUIRE_MARIADB") == "1"
SPEC = RAW_SPECS["tis_trainees"]

# The subset of the TCS schema the source reads, in TCS's table and column names.
SCHEMA = {
    "Person": "id BIGINT PRIMARY KEY, role VARCHAR(255)",
    "ContactDetails": "id BIGINT PRIMARY KEY, surname VARCHAR(255), forenames VARCHAR(255)",
    "GmcDetails": "id BIGINT PRIMARY KEY, gmcNumber VARCHAR(255)",
    "Programme": "id BIGINT PRIMARY KEY, programmeName VARCHAR(255), owner VARCHAR(255)",
    "ProgrammeMembership": "id BIGINT PRIMARY KEY, uuid VARCHAR(36), personId BIGINT, programmeId BIGINT, "
                           "programmeMembershipType VARCHAR(255), programmeStartDate DATE, programmeEndDate DATE",
    "CurriculumMembership": "id BIGINT PRIMARY KEY, programmeMembershipUuid VARCHAR(36), personId BIGINT, "
                            "curriculumEndDate DATE",
    "Placement": "id BIGINT PRIMARY KEY, traineeId BIGINT, gradeId BIGINT, dateFrom DATE, dateTo DATE",
}

# (id, role, forenames, surname, gmcNumber or None for no GmcDetails row, or ... for a NULL gmcNumber)
PEOPLE = [
    (1001, "DR in Training", "Ada", "One", "1234567"),  # one current membership, a past one, placements
    (1002, "DR in Training", "Ben", "Unknown", "UNKNOWN"),
    (1003, "DR in Training", "Cy", "Na", "N/A"),
    (1004, "DR in Training", "Di", "Na", "na"),
    (1005, None, "Ed", "Blank", ""),
    (1006, "DR in Training", "Flo", "Spaces", "   "),
    (1007, "DR in Training", "Gus", "Short", "12345"),
    (1008, "DR in Training", "Hal", "SharedA", "7654321"),
    (1009, "DR in Training", "Ivy", "SharedB", "7654321"),
    (1010, "DR in Training", "Jo", "TwoCurrent", "2222222"),
    (1011, "Dummy Record", "Kit", "Dummy", "3333333"),
    (1012, "DR in Training,Placeholder", "Lu", "Placeholder", "4444444"),
    (1013, "DR in Training", "Mo", "PastOnly", "5555555"),
    (1014, "DR in Training", "Ned", "London", "6666666"),  # current, but no curriculum membership
    (1015, "DR in Training", "Oz", "Wessex", "7777777"),
    (1016, "DR in Training", "Pip", "Nbsp", "12\u00a034567"),
    (1017, "DR in Training", "Quin", "NullGmc", ...),
    (1018, "DR in Training", "Ray", "NoGmcRow", None),
    (1019, "DR in Training", "Sam", "NoProgramme", "8888888"),
]

PROGRAMMES = [
    (1, "General Practice", "Health Education England North West"),
    (2, "Old Surgery", "Health Education England Wessex"),
    (3, "Cardiology", "Health Education England West Midlands"),
    (4, "Acute Medicine", "West Midlands"),
    (5, "Paediatrics", "London LETBs"),
    (6, "Anaesthetics", "Wessex"),
]


def _memberships(today: date) -> list[tuple]:
    """(id, person, programme, type, start, end): current ones span today; 3002 and 3003 ended long ago."""
    past, future = today - timedelta(days=400), today + timedelta(days=400)
    return [
        (3001, 1001, 1, "SUBSTANTIVE", today - timedelta(days=30), future),
        (3002, 1001, 2, "SUBSTANTIVE", past - timedelta(days=400), past),
        (3003, 1013, 2, "ACADEMIC", past - timedelta(days=400), past),
        (3004, 1010, 3, "LAT", today - timedelta(days=60), future),
        (3005, 1010, 4, "FTSTA", today - timedelta(days=10), future),
        (3006, 1014, 5, "LAT", today - timedelta(days=5), future),
        (3007, 1015, 6, "MILITARY", today, today),
        (3008, 1007, 6, "VISITOR", today - timedelta(days=1), today + timedelta(days=1)),
        (3009, 1011, 1, "SUBSTANTIVE", today - timedelta(days=30), future),
    ]


def _curricula(today: date) -> list[tuple]:
    """(id, membership, curriculumEndDate): 3001's max is the later one; 3006 has none."""
    return [
        (4001, 3001, today + timedelta(days=100)),
        (4002, 3001, today + timedelta(days=900)),
        (4003, 3002, today + timedelta(days=5000)),
        (4004, 3004, today + timedelta(days=50)),
        (4005, 3007, today + timedelta(days=70)),
        (4006, 3008, today + timedelta(days=30)),
    ]


def _placements(today: date) -> list[tuple]:
    """(id, trainee, grade, from, to): 1001 has two current at grade 279 and a past one at 300."""
    soon, ago = today + timedelta(days=90), today - timedelta(days=90)
    return [
        (5001, 1001, 279, ago, soon),
        (5002, 1001, 279, today, today),
        (5003, 1001, 300, ago - timedelta(days=200), ago),
        (5004, 1010, 281, ago, soon),
        (5005, 1010, 279, ago, soon),
        (5006, 1015, 45, today + timedelta(days=1), soon),
    ]


def _expected(today: date) -> list[dict]:
    """The ConnectionInfo records TCS gives for the seed, as wire text."""
    day = date.isoformat

    def record(pid: int, gmc: str, first: str, last: str, **fields: str | None) -> dict:
        blank = {c.wire: None for c in SPEC.columns}
        return {**blank, "tcsPersonId": str(pid), "gmcReferenceNumber": gmc, "doctorFirstName": first,
                "doctorLastName": last, **fields}

    future = day(today + timedelta(days=400))
    return [
        record(1001, "1234567", "Ada", "One", programmeName="General Practice", programmeMembershipType="SUBSTANTIVE",
               programmeOwner="Health Education England North West", tcsDesignatedBody="1-1RSSQ2H",
               placementGrade="279", programmeMembershipStartDate=day(today - timedelta(days=30)),
               programmeMembershipEndDate=future, curriculumEndDate=day(today + timedelta(days=900))),
        record(1005, "", "Ed", "Blank"),
        record(1006, "   ", "Flo", "Spaces"),
        record(1007, "12345", "Gus", "Short", programmeName="Anaesthetics", programmeMembershipType="VISITOR",
               programmeOwner="Wessex", tcsDesignatedBody="1-1RUZUSF",
               programmeMembershipStartDate=day(today - timedelta(days=1)),
               programmeMembershipEndDate=day(today + timedelta(days=1)),
               curriculumEndDate=day(today + timedelta(days=30))),
        record(1008, "7654321", "Hal", "SharedA"),
        record(1009, "7654321", "Ivy", "SharedB"),
        record(1010, "2222222", "Jo", "TwoCurrent", programmeName="Cardiology | Acute Medicine",
               placementGrade="279 | 281"),
        record(1013, "5555555", "Mo", "PastOnly"),
        record(1014, "6666666", "Ned", "London", programmeName="Paediatrics", programmeMembershipType="LAT",
               programmeOwner="London LETBs", tcsDesignatedBody="1-1RUZV1D"),
        record(1015, "7777777", "Oz", "Wessex", programmeName="Anaesthetics", programmeMembershipType="MILITARY",
               programmeOwner="Wessex", tcsDesignatedBody="1-1RUZUSF", programmeMembershipStartDate=day(today),
               programmeMembershipEndDate=day(today), curriculumEndDate=day(today + timedelta(days=70))),
        record(1019, "8888888", "Sam", "NoProgramme"),
    ]


def _insert(conn: sa.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    names = columns.split(", ")
    marks = ", ".join(f":{name}" for name in names)
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"),
                 [dict(zip(names, row, strict=True)) for row in rows])


def _create_schema(conn: sa.Connection, *, without: tuple[str, str] | None = None) -> None:
    for table, columns in SCHEMA.items():
        if without and without[0] == table:
            columns = ", ".join(c for c in columns.split(", ") if not c.startswith(f"{without[1]} "))
        conn.execute(sa.text(f"CREATE TABLE {table} ({columns})"))


def _seed(conn: sa.Connection, today: date) -> None:
    _insert(conn, "Person", "id, role", [(pid, role) for pid, role, *_ in PEOPLE])
    _insert(conn, "ContactDetails", "id, forenames, surname", [(pid, f, s) for pid, _, f, s, _ in PEOPLE])
    _insert(conn, "GmcDetails", "id, gmcNumber",
            [(pid, None if gmc is ... else gmc) for pid, *_, gmc in PEOPLE if gmc is not None])
    _insert(conn, "Programme", "id, programmeName, owner", PROGRAMMES)
    memberships = _memberships(today)
    _insert(conn, "ProgrammeMembership",
            "id, uuid, personId, programmeId, programmeMembershipType, programmeStartDate, programmeEndDate",
            [(mid, f"pm-{mid}", *rest) for mid, *rest in memberships])
    person_of = {mid: person for mid, person, *_ in memberships}
    _insert(conn, "CurriculumMembership", "id, programmeMembershipUuid, personId, curriculumEndDate",
            [(cid, f"pm-{mid}", person_of[mid], end) for cid, mid, end in _curricula(today)])
    _insert(conn, "Placement", "id, traineeId, gradeId, dateFrom, dateTo", _placements(today))


@pytest.fixture(scope="module")
def server() -> Iterator[sa.Engine]:
    engine = sa.create_engine(sa.make_url(MARIADB_URL).set(database=None), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as error:
        engine.dispose()
        shown = sa.make_url(MARIADB_URL).render_as_string(hide_password=True)
        reason = f"MariaDB at {shown} is unreachable ({error.orig})"
        if REQUIRE_MARIADB:
            pytest.fail(f"REVAL_REQUIRE_MARIADB=1 but {reason}")
        pytest.skip(f"{reason}; set REVAL_TEST_MARIADB_URL or start MariaDB")
    yield engine
    engine.dispose()


def _private_database(server: sa.Engine, build) -> Iterator[str]:
    """A database of its own (random name), built by `build(conn)`, dropped afterwards; yields its URL."""
    name = f"reval_tcs_{uuid.uuid4().hex[:12]}"
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        with server.begin() as conn:
            conn.execute(sa.text(f"USE `{name}`"))
            build(conn)
        yield sa.make_url(MARIADB_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="module")
def today(server: sa.Engine) -> date:
    with server.connect() as conn:
        return conn.execute(sa.text("SELECT CURRENT_DATE")).scalar_one()


@pytest.fixture(scope="module")
def tcs_url(server: sa.Engine, today: date) -> Iterator[str]:
    def build(conn: sa.Connection) -> None:
        _create_schema(conn)
        _seed(conn, today)

    yield from _private_database(server, build)


def _rows(table) -> list[dict]:
    return table.drop_columns([RECORD_COLUMN]).to_pylist()


def test_rows_match_the_connection_info_records(tcs_url: str, today: date) -> None:
    wire, meta = tis_trainees_input(tcs_url, designated_bodies=PROD_CODES)
    assert _rows(wire.table) == _expected(today)
    assert wire.table.column_names == [*(c.wire for c in SPEC.columns), RECORD_COLUMN]
    assert wire.table[RECORD_COLUMN].to_pylist() == list(range(wire.table.num_rows))
    assert wire.origin.startswith("TCS database mysql+pymysql://root@127.0.0.1")
    assert wire.read_as == "11 ConnectionInfo rows from the TCS database"
    assert (meta["rows"], meta["chunks"], meta["as_of"]) == (11, 1, today.isoformat())
    assert meta["seconds"] >= 0


def test_streaming_in_small_chunks_gives_the_same_rows(tcs_url: str, today: date) -> None:
    cursors: list[type] = []

    def seen(conn, cursor, statement, *_) -> None:
        if "FROM ContactDetails" in statement:
            cursors.append(type(cursor))

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    try:
        wire, meta = tis_trainees_input(tcs_url, designated_bodies=PROD_CODES, chunk_rows=3)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)
    assert [c.__name__ for c in cursors] == ["SSCursor"]  # server-side: rows come as they are read
    assert meta["chunks"] == 4
    assert _rows(wire.table) == _expected(today)
    assert wire.table[RECORD_COLUMN].to_pylist() == list(range(11))


def test_mysql_and_mariadb_urls_use_the_pymysql_driver(tcs_url: str) -> None:
    for scheme in ("mysql", "mariadb"):
        wire, _ = tis_trainees_input(tcs_url.replace("mysql+pymysql", scheme, 1), designated_bodies=PROD_CODES)
        assert wire.table.num_rows == 11
        assert wire.origin.startswith("TCS database mysql+pymysql://")


def test_a_url_for_another_database_is_refused() -> None:
    with pytest.raises(SourceError, match="TCS database URL must be mysql://"):
        tis_trainees_input("postgresql://reval:pw@localhost/tcs", designated_bodies=PROD_CODES)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_named_without_the_password() -> None:
    port = _closed_port()
    with pytest.raises(SourceError) as raised:
        tis_trainees_input(f"mysql://reval:Sekr3t-pw@127.0.0.1:{port}/tcs", designated_bodies=PROD_CODES)
    assert str(raised.value).startswith(f"TCS database at 127.0.0.1:{port} is unreachable: ")
    assert "Sekr3t-pw" not in str(raised.value)


def test_a_wrong_password_is_named_without_the_password(server: sa.Engine, tcs_url: str) -> None:
    wrong = sa.make_url(tcs_url).set(password="Not-The-Pw-91")
    with pytest.raises(SourceError) as raised:
        tis_trainees_input(wrong.render_as_string(hide_password=False), designated_bodies=PROD_CODES)
    assert f"TCS database at {wrong.host}:{wrong.port} refused the login of user {wrong.username!r}" in str(
        raised.value)
    assert "Not-The-Pw-91" not in str(raised.value)


@pytest.fixture
def no_grade_url(server: sa.Engine) -> Iterator[str]:
    yield from _private_database(server, lambda conn: _create_schema(conn, without=("Placement", "gradeId")))


def test_a_schema_without_a_column_names_table_and_column(no_grade_url: str) -> None:
    with pytest.raises(SourceError, match=r"has no column gradeId in table Placement: is this a TCS database\?"):
        tis_trainees_input(no_grade_url, designated_bodies=PROD_CODES)


@pytest.fixture
def empty_url(server: sa.Engine) -> Iterator[str]:
    yield from _private_database(server, lambda conn: None)


def test_a_database_without_the_tables_is_named(empty_url: str) -> None:
    with pytest.raises(SourceError, match=r"has no table Person in database reval_tcs_\w+: is this a TCS database"):
        tis_trainees_input(empty_url, designated_bodies=PROD_CODES)


def _connection_info_json(records: list[dict]) -> bytes:
    """The records as TCS exports them: ConnectionInfoDto JSON, tcsPersonId a number, closed by syncEnd."""
    dtos = [{**r, "tcsPersonId": int(r["tcsPersonId"]), "designatedBody": None, "submissionDate": None,
             "dataSource": "TCS", "syncEnd": None} for r in records]
    return orjson.dumps([*dtos, {"syncEnd": True}])


def test_the_database_gives_the_same_trainees_as_the_connection_info_json(
        tcs_url: str, today: date, tmp_path: Path) -> None:
    export = tmp_path / "trainee_info.json"
    export.write_bytes(_connection_info_json(_expected(today)))
    content, layout = decode(export.read_bytes(), str(export))
    read = documents.tis_trainees(content, layout, str(export))
    from_file = conform(SPEC, wire_table(SPEC, read.records, str(export)), str(export))
    wire, _ = tis_trainees_input(tcs_url, designated_bodies=PROD_CODES, chunk_rows=4)
    from_db = conform(SPEC, wire.table, wire.origin)
    assert from_db.table.equals(from_file.table)
    assert from_db.table.num_rows == 6
    # The blank, blank-spaced, short and shared GMC numbers: quarantined alike, with the same evidence.
    assert from_db.quarantine.num_rows == 5
    assert from_db.quarantine.drop_columns(["origin"]).equals(from_file.quarantine.drop_columns(["origin"]))


class _Base:
    description = "files: /export"

    def fingerprint(self) -> str:
        return "base-fingerprint"

    def extract(self) -> dict:
        return {"gmc_doctors": "doctors", "tis_trainees": "from the file"}


def test_the_wrapping_source_takes_trainees_from_the_database(tcs_url: str, today: date) -> None:
    source = TcsTraineesSource(_Base(), tcs_url, designated_bodies=PROD_CODES)
    inputs = source.extract()
    assert inputs["gmc_doctors"] == "doctors"
    assert _rows(inputs["tis_trainees"].table) == _expected(today)
    assert source.fingerprint() == source.fingerprint() == TcsTraineesSource(
        _Base(), tcs_url, designated_bodies=PROD_CODES).fingerprint()
    assert source.description.startswith("files: /export; TIS trainees from the TCS database mysql+pymysql://")
    assert source.exported_at() <= datetime.now(UTC)


def test_the_fingerprint_changes_with_the_trainees(server: sa.Engine, tcs_url: str) -> None:
    before = TcsTraineesSource(_Base(), tcs_url, designated_bodies=PROD_CODES).fingerprint()
    database = sa.make_url(tcs_url).database
    rename = f"UPDATE `{database}`.ContactDetails SET surname = :name WHERE id = 1001"
    with server.begin() as conn:
        conn.execute(sa.text(rename), {"name": "Renamed"})
    try:
        after = TcsTraineesSource(_Base(), tcs_url, designated_bodies=PROD_CODES).fingerprint()
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(rename), {"name": "One"})
    assert after != before

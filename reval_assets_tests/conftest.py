"""Shared fixtures: an isolated REVAL_HOME, and live stores on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.store.bulk import unreachable

PG_URL = os.environ.get("REVAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("REVAL_REQUIRE_PG") == "1"


@pytest.fixture(autouse=True)
def no_developer_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the developer's Dagster instance (make or a shell may export DAGSTER_HOME)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = unreachable(PG_URL)
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"REVAL_REQUIRE_PG=1 but PostgreSQL at {PG_URL} is unreachable: {problem}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable ({problem}); set REVAL_TEST_PG_URL or start it")
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database of its own on the test server, dropped afterwards."""
    name = f"reval_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def live_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'live.db'}"
    return request.getfixturevalue("pg_url")


def isolate_reval_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Only the test's own REVAL_* settings: a private home and 1500 synthetic doctors, seed 7."""
    for name in list(os.environ):
        if name.startswith("REVAL_") and name not in ("REVAL_TEST_PG_URL", "REVAL_REQUIRE_PG"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("REVAL_HOME", str(home))
    monkeypatch.setenv("REVAL_DOCTORS", "1500")
    monkeypatch.setenv("REVAL_SEED", "7")


@pytest.fixture
def reval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private REVAL_HOME with a small synthetic population; returns the home folder."""
    home = tmp_path / "reval-home"
    isolate_reval_env(monkeypatch, home)
    return home


@pytest.fixture
def instance(reval_env: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance with in-memory storage (fast); test_postgres_instance.py covers PostgreSQL storage."""
    dagster_instance = dg.DagsterInstance.ephemeral()
    try:
        yield dagster_instance
    finally:
        dagster_instance.dispose()


@pytest.fixture
def runtime(reval_env: Path, live_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("REVAL_LIVE_URL", live_url)
    rt = Runtime(Settings.from_env())
    yield rt
    rt.close()


@pytest.fixture
def open_runtime() -> Iterator[Callable[[], Runtime]]:
    """Runtimes built from the environment as it is when called; all closed at the end."""
    opened: list[Runtime] = []

    def make() -> Runtime:
        opened.append(Runtime(Settings.from_env()))
        return opened[-1]

    yield make
    for runtime in opened:
        runtime.close()

"""One error type (`errors.RevalError`), one translation into Dagster (`assets.failures`), and the retry of
a live store that could not be reached: retried a few times with backoff; everything else fails once."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

import reval_assets.resources as resources_module
from reval_assets import dagster_home
from reval_assets.assets import failures
from reval_assets.assets import release as release_module
from reval_assets.cli import _explain
from reval_assets.errors import (
    CORRUPT,
    FAILED,
    REFUSED,
    UNKNOWN_VERSION,
    DatabaseFailed,
    RevalError,
    as_reval_error,
    is_transient,
)
from reval_assets.pipeline.gate import StoreMismatch
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.operations import GcError
from reval_assets.pipeline.room import DiskFull
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import MissingBatchError
from reval_assets.resources import RevalResource
from reval_assets.run import run_sync
from reval_assets.settings import SettingsError
from reval_assets.sources.base import SourceError
from reval_assets.store.live import PublishError
from reval_assets.store.snapshots import CorruptFileError, UnknownVersionError
from reval_assets.store.writer_lock import StoreBusy

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/reval"  # nothing listens on port 1


def connect_error(url: str = UNREACHABLE) -> sa.exc.DBAPIError:
    """A real failure to connect, raised by SQLAlchemy with its own traceback."""
    engine = sa.create_engine(url)
    try:
        engine.connect().close()
    except sa.exc.DBAPIError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"{url} connected")


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failures, "TRANSIENT_RETRY", dg.RetryPolicy(max_retries=3, delay=0.01,
                                                                     backoff=dg.Backoff.EXPONENTIAL))


def unreachable_for(monkeypatch: pytest.MonkeyPatch, calls: int) -> list[int]:
    """The live store cannot be reached by the first `calls` steps that open it; returns the attempts."""
    real, attempts = resources_module.check_store, []

    def check_store(runtime: Runtime, *, writing: bool) -> list[str]:
        attempts.append(1)
        if len(attempts) <= calls:
            raise connect_error()
        return real(runtime, writing=writing)

    monkeypatch.setattr(resources_module, "check_store", check_store)
    return attempts


def step_events(runtime: Runtime, run_ids: list[str], kind: dg.DagsterEventType) -> list[str]:
    instance = dg.DagsterInstance.from_config(str(dagster_home.dagster_home(runtime.settings)))
    try:
        return [record.step_key or "" for run_id in run_ids for record in instance.all_logs(run_id, of_type=kind)]
    finally:
        instance.dispose()


# --- the error type -----------------------------------------------------------------------------


def test_every_error_of_the_core_is_a_reval_error_carrying_its_exit_code() -> None:
    cases = [
        (GuardRefused("REFUSED: no"), REFUSED, "REFUSED: no"),
        (UnknownVersionError("v1"), UNKNOWN_VERSION, "unknown version 'v1'; `reval versions` lists the retained ones"),
        (CorruptFileError(Path("/x.parquet"), "truncated"), CORRUPT, None),
        (SourceError("bad date", file="a.json", record=3, field="d"), FAILED,
         "bad source: bad date (file a.json, record 3, field d). Fix the export (or REVAL_SOURCE_DIR) and run "
         "`reval sync` again; live is unchanged."),
        (SettingsError("REVAL_ENV: nope"), FAILED, "configuration: REVAL_ENV: nope"),
        (PublishError("no"), FAILED, "no"), (StoreBusy("pid 1"), FAILED, None), (StoreMismatch("m"), FAILED, "m"),
        (GcError("g"), FAILED, "g"), (DiskFull("d"), FAILED, "d"), (MissingBatchError("b"), FAILED, "b"),
    ]
    for error, code, message in cases:
        assert isinstance(error, RevalError) and error.exit_code == code, error
        assert _explain(error) == (code, message or str(error)), error  # the command says what the run says
        failure = failures.failure_of(error)
        assert failure.description == (message or str(error)) and failure.allow_retries is False
        assert failure.metadata[failures.EXIT_CODE].value == code
        assert failure.metadata[failures.KIND].value == error.kind
    # the classes each module's callers catch still catch them
    assert isinstance(UnknownVersionError("v1"), KeyError) and isinstance(GcError("g"), ValueError)
    assert SourceError("x", file="f").metadata == {"file": "f"}


def test_an_unexpected_error_fails_with_its_own_text_and_never_retries() -> None:
    failure = failures.failure_of(ZeroDivisionError("division by zero"))
    assert failure.description == "division by zero" and failure.allow_retries is False
    assert failure.metadata[failures.KIND].value == "unexpected"
    assert failure.metadata["error_class"].value == "ZeroDivisionError"
    assert as_reval_error(ValueError("x")) is None


def test_only_a_server_database_that_could_not_be_reached_on_connect_is_transient(
        tmp_path: Path, pg_server: str) -> None:
    refused = connect_error()
    assert is_transient(refused) and as_reval_error(refused).retryable
    assert "Connection refused" in DatabaseFailed(refused).explained() or "connection" in str(refused).lower()
    # a local SQLite file that cannot be opened fails the same way every time
    assert not is_transient(connect_error(f"sqlite:///{tmp_path}/no/such/folder/live.db"))
    # a connection dropped mid-transaction: one clean failure (a commit in flight may have landed)
    engine = sa.create_engine(pg_server)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
    except sa.exc.DBAPIError as dropped:
        assert not is_transient(dropped) and not as_reval_error(dropped).retryable
        assert as_reval_error(dropped).kind == "database"
    else:
        raise AssertionError("the backend was not terminated")
    finally:
        engine.dispose()
    assert not is_transient(PublishError("no")) and not is_transient(OSError("disk"))


def test_a_drivers_own_database_error_is_a_database_failure_said_on_one_line() -> None:
    import adbc_driver_manager  # the PostgreSQL bulk load's driver raises its own PEP 249 errors

    dropped = as_reval_error(adbc_driver_manager.OperationalError(
        "IO: [libpq] Failed to commit: FATAL:  terminating connection due to administrator command\nserver closed",
        status_code=adbc_driver_manager.AdbcStatusCode.IO))
    assert dropped is not None and dropped.kind == "database" and not dropped.retryable
    assert dropped.explained().startswith("the live store's database failed (IO: [libpq] Failed to commit: FATAL: "
                                          "terminating connection due to administrator command server closed)")


# --- the retry policy, through `reval sync`'s runs -----------------------------------------------


def test_a_store_unreachable_when_a_step_connects_is_retried_then_the_sync_publishes(
        reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch,
        fast_retries: None) -> None:
    attempts = unreachable_for(monkeypatch, calls=2)
    runtime = open_runtime()
    outcome = run_sync(runtime, batches=list(range(16)), reason="flaky db", actor="tester", confirm=None)
    assert outcome.published and outcome.error is None, outcome.error
    assert len(attempts) >= 4  # raw_inputs three times, then every other step once
    retried = step_events(runtime, outcome.run_ids, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert retried == ["raw_inputs", "raw_inputs"], retried
    assert [r["action"] for r in runtime.live.audit_rows()].count("publish") == 1


def test_a_store_that_stays_unreachable_fails_once_after_the_retries_saying_so(
        reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch,
        fast_retries: None) -> None:
    attempts = unreachable_for(monkeypatch, calls=1000)
    runtime = open_runtime()
    outcome = run_sync(runtime, batches=list(range(16)), reason="db down", actor="tester", confirm=None)
    assert not outcome.published and not outcome.refused
    assert len(attempts) == 1 + failures.TRANSIENT_RETRY.max_retries
    assert outcome.error.startswith("the live store's database failed (") and "Live is unchanged" in outcome.error
    failed = step_events(runtime, outcome.run_ids, dg.DagsterEventType.STEP_FAILURE)
    assert failed == ["raw_inputs"], failed


def test_a_refusal_is_not_retried_and_is_audited_once(
        reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch,
        fast_retries: None) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    runtime = open_runtime()
    outcome = run_sync(runtime, batches=list(range(16)), reason="no confirm", actor="tester", confirm=None)
    assert outcome.refused and outcome.error.startswith("REFUSED") and not outcome.published
    assert step_events(runtime, outcome.run_ids, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert step_events(runtime, outcome.run_ids, dg.DagsterEventType.STEP_FAILURE) == ["live_release"]
    refusals = [r for r in runtime.live.audit_rows() if r["action"] == "refuse"]
    assert len(refusals) == 1 and json.loads(refusals[0]["detail"])["action"] == "publishing"


def test_a_publish_retried_after_its_commit_publishes_once(
        reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch,
        fast_retries: None) -> None:
    real, calls = release_module.publish, []

    def publish_then_lose_the_store(runtime: Runtime, version: str, **kwargs: object) -> None:
        calls.append(version)
        real(runtime, version, **kwargs)
        if len(calls) == 1:  # committed; then the next connection cannot be opened
            raise connect_error()

    monkeypatch.setattr(release_module, "publish", publish_then_lose_the_store)
    runtime = open_runtime()
    outcome = run_sync(runtime, batches=list(range(16)), reason="lost after commit", actor="tester", confirm=None)
    assert outcome.published and outcome.error is None, outcome.error
    assert len(calls) == 1  # the retry saw its version live and did not publish again
    assert step_events(runtime, outcome.run_ids, dg.DagsterEventType.STEP_UP_FOR_RETRY) == ["live_release"]
    assert [r["action"] for r in runtime.live.audit_rows() if r["version"] == outcome.version].count("publish") == 1


# --- the resource and the instance patch ---------------------------------------------------------


def test_the_resource_knows_its_load_time_batches_as_a_typed_field(reval_env: Path) -> None:
    assert RevalResource().batches == 16
    with pytest.raises(dg.Failure, match="REVAL_BATCHES is 16 but the code location was loaded with 4 partitions"):
        RevalResource(batches=4).runtime()


def test_the_create_engine_patch_is_applied_only_on_the_dagster_releases_it_was_tested_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert dagster_home.engines_tunable(dg.__version__)  # the pinned release
    assert not dagster_home.engines_tunable("1.14.0") and not dagster_home.engines_tunable("2.0.0")
    originals = {name: importlib.import_module(name).create_engine for name in dagster_home.SQLITE_STORAGE_MODULES}
    with dagster_home._sqlite_engines_tuned():
        assert all(getattr(importlib.import_module(name).create_engine, "reval_tuned", False) for name in originals)
    monkeypatch.setattr(dagster_home, "engines_tunable", lambda: False)
    with dagster_home._sqlite_engines_tuned():
        assert {name: importlib.import_module(name).create_engine for name in originals} == originals

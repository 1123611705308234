"""Nothing lost: one writer at a time per store, a lost catalog is refused and recovered, a store knows
its environment, batch count and snapshot home, gc audits every drop and `verify` reads the tables too.

Every test runs real `reval` processes on a sandbox (reliability_kit) with export `a` published, on
SQLite and on a PostgreSQL database of its own; the concurrency tests run a Dagster job beside the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from reval_assets.definitions import defs
from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.run import QUIET
from reval_assets.settings import Settings
from reval_assets_tests.reliability_kit import CLI, Sandbox, create_database, drop_database, new_sandbox, remove_tree

pytestmark = pytest.mark.slow


def _open(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Sandbox:
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    return new_sandbox(tmp_path, create_database(server) if server else None, backend)


def _close(box: Sandbox) -> None:
    if box.backend == "postgresql":  # type: ignore[attr-defined]
        drop_database(box.live_url)
    remove_tree(box.root)


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    """Export `a` published on a fresh store."""
    sandbox = _open(request, tmp_path, request.param)
    sandbox.base = sandbox.sync("a").data["version"]  # type: ignore[attr-defined]
    yield sandbox
    _close(sandbox)


def run_job(box: Sandbox, monkeypatch: pytest.MonkeyPatch, job: str, op: str, config: dict
            ) -> dg.ExecuteInProcessResult:
    """A Dagster job of the code location, as the launchpad runs it, on the sandbox's store."""
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def(job).execute_in_process(
            instance=instance, run_config={**QUIET, "ops": {op: {"config": config}}}, raise_on_error=False)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    data = [e.step_failure_data for e in result.get_step_failure_events()]
    return " ".join(d.user_failure_data.description if d.user_failure_data else d.error.to_string() for d in data)


def audit(box: Sandbox) -> list[dict]:
    with box.runtime() as rt:
        return rt.live.audit_rows()


# --- one writer at a time ----------------------------------------------------------------------------


def test_dagster_gc_job_during_a_cli_sync_is_refused_and_live_stays_whole(box: Sandbox, monkeypatch) -> None:
    proc, marker, started = box.paused("sync", "--json", source="b", point="checks")  # staged, not yet checked
    try:
        gc = run_job(box, monkeypatch, "gc", "gc_op", {"keep": 0})
        assert not gc.success
        assert "another sync, publish, rollback or gc is running on this live store (sync by pid" in failure_text(gc)
        cli_gc = box.reval("gc", "--keep", "0", "--json")
        assert cli_gc.code == 1 and "another sync, publish, rollback or gc is running" in cli_gc.message
    finally:
        marker.unlink()
    ran = box.finish(proc, started)
    assert ran.code == 0 and ran.data["published"], str(ran)
    box.remember(ran.data["version"])
    box.check_whole(expected_live=ran.data["version"])


def test_dagster_rollback_during_a_cli_sync_is_refused(box: Sandbox, monkeypatch) -> None:
    proc, marker, started = box.paused("sync", "--json", source="b", point="repoint_view#2")  # mid-publish
    try:
        rolled = run_job(box, monkeypatch, "rollback", "rollback_op", {"version": box.base, "reason": "race"})
        assert not rolled.success and "is running on this live store" in failure_text(rolled)
    finally:
        marker.unlink()
    ran = box.finish(proc, started)
    assert ran.code == 0 and ran.data["published"], str(ran)


def test_gc_keep_0_spares_a_candidate_younger_than_the_grace_period(box: Sandbox) -> None:
    staged = box.reval("sync", "--no-publish", "--json", source="b")
    assert staged.code == 0, str(staged)
    candidate = staged.data["version"]
    assert box.reval("gc", "--keep", "0").code == 0
    with box.runtime() as rt:
        assert rt.live.version(candidate)["status"] == "staged"
        assert operations.verify(rt, candidate)["problems"] == []
        operations.gc(rt, keep=0, grace_seconds=0)  # old enough now: no running sync can own it
        assert rt.live.version(candidate) is None


def test_a_file_a_sync_reuses_is_young_again_for_gc(tmp_path: Path) -> None:
    from reval_assets.domain.schemas import ENTITY_SPECS
    from reval_assets.store.snapshots import SnapshotStore

    store = SnapshotStore(tmp_path / "snapshots")
    table = ENTITY_SPECS["doctors"].schema.empty_table()
    ref, _ = store.put_table("doctors", 0, table)
    path = store.root / ref.path
    os.utime(path, (1_000_000, 1_000_000))
    _, existed = store.put_table("doctors", 0, table)
    assert existed and path.stat().st_mtime > 1_000_000


def test_each_gc_drop_is_audited_even_when_gc_is_killed(box: Sandbox) -> None:
    for source in ("b", "a", "b"):
        box.sync(source)
    with box.runtime() as rt:
        before = {r["version"] for r in rt.live.versions()}
    killed = box.reval("gc", "--keep", "0", fault="gc_drop#3:kill")
    assert killed.code != 0
    with box.runtime() as rt:
        gone = before - {r["version"] for r in rt.live.versions()}
    drops = [r for r in audit(box) if r["action"] == "gc_drop"]
    assert len(gone) == 2 and {r["version"] for r in drops} == gone


# --- the catalog is precious ----------------------------------------------------------------------------


def lose_catalog(box: Sandbox) -> None:
    if box.backend == "sqlite":  # type: ignore[attr-defined]
        for path in box.home.glob("live.db*"):
            path.unlink()
    else:
        engine = sa.create_engine(box.live_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()


def test_a_lost_catalog_is_refused_by_every_command_and_recover_rebuilds_live(box: Sandbox) -> None:
    second = box.sync("b").data["version"]
    manifests = sorted(p.name for p in (box.snapshots / "versions").glob("v*.json"))
    live_hash = box.views_hash()
    lose_catalog(box)
    for args in (["status"], ["versions"], ["verify"], ["gc", "--keep", "0"], ["rollback", box.base, "--reason", "x"],
                 ["sync"]):
        ran = box.reval(*args, "--json")
        assert ran.code == 1, (args, str(ran))
        assert "has no catalog" in ran.data["error"] and "`reval recover`" in ran.data["error"], ran.data
    assert sorted(p.name for p in (box.snapshots / "versions").glob("v*.json")) == manifests

    recovered = box.reval("recover", "--json")
    assert recovered.code == 0, str(recovered)
    assert recovered.data["live_version"] == second and sorted(recovered.data["recovered"]) == [
        m.removesuffix(".json") for m in manifests]
    assert box.views_hash() == live_hash
    assert box.reval("rollback", box.base, "--reason", "after recovery").code == 0
    assert box.reval("verify", box.base).code == 0
    assert box.reval("recover").code == 1  # the catalog is back: nothing to rebuild


def test_recover_leaves_out_a_version_whose_files_do_not_verify(box: Sandbox) -> None:
    second = box.sync("b").data["version"]
    manifest = json.loads((box.snapshots / "versions" / f"{box.base}.json").read_bytes())
    shared = {r["sha256"] for refs in json.loads((box.snapshots / "versions" / f"{second}.json").read_bytes())[
        "files"].values() for r in refs}
    own = next(r for refs in manifest["files"].values() for r in refs if r["sha256"] not in shared)
    (box.snapshots / own["path"]).write_bytes(b"damaged")
    lose_catalog(box)
    recovered = box.reval("recover", "--json")
    assert recovered.code == 0, str(recovered)
    assert recovered.data["recovered"] == [second] and box.base in recovered.data["skipped"]


# --- the store's identity -------------------------------------------------------------------------------


def test_a_dev_store_refuses_writers_under_another_environment_and_readers_warn(box: Sandbox) -> None:
    refused = box.reval("rollback", box.base, "--reason", "x", "--confirm", "prod", "--json", REVAL_ENV="prod")
    assert refused.code == 4 and "this live store is DEV" in refused.data["error"], str(refused)
    status = box.reval("status", "--json", REVAL_ENV="prod")
    assert status.code == 0 and "this live store is DEV" in status.data["warnings"][0]
    assert [r["action"] for r in audit(box)][-1] == "publish"


def test_a_prod_store_refuses_a_rollback_with_reval_env_unset(request, tmp_path: Path) -> None:
    box = _open(request, tmp_path, "sqlite")
    try:
        first = box.reval("sync", "--confirm", "prod", "--json", REVAL_ENV="prod")
        assert first.code == 0, str(first)
        box.reval("sync", "--confirm", "prod", "--json", source="b", REVAL_ENV="prod")
        refused = box.reval("rollback", first.data["version"], "--reason", "x", "--json")
        assert refused.code == 4 and "this live store is PROD" in refused.data["error"]
        gc = box.reval("gc", "--keep", "0", "--json", REVAL_ENV="prod")
        assert gc.code == 4 and "REFUSED" in gc.data["error"]
        assert box.reval("gc", "--keep", "0", "--confirm", "prod", REVAL_ENV="prod").code == 0
    finally:
        _close(box)


def test_gc_refuses_a_negative_keep(box: Sandbox) -> None:
    ran = box.reval("gc", "--keep", "-1", "--json")
    assert ran.code == 1 and "--keep must be 0 or more" in ran.data["error"]


def test_a_batch_count_change_is_refused_before_anything_is_staged(box: Sandbox, monkeypatch) -> None:
    versions = sorted((box.snapshots / "versions").glob("v*.json"))
    ran = box.reval("sync", "--batches", "0", "--allow-drift", "resize", "--json", source="b", REVAL_BATCHES="2")
    assert ran.code == 1, str(ran)
    assert "this live store has 4 batches, but REVAL_BATCHES is 2" in ran.data["error"]
    assert sorted((box.snapshots / "versions").glob("v*.json")) == versions
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REVAL_BATCHES", "2")
    from reval_assets.resources import RevalResource

    with pytest.raises(dg.Failure, match="this live store has 4 batches, but REVAL_BATCHES is 2"):
        RevalResource().runtime(partitioned=False)  # the Dagster layer refuses the same way


def test_one_snapshot_home_serves_one_live_store(box: Sandbox, pg_server: str) -> None:
    other = create_database(pg_server) if box.backend == "sqlite" else None  # type: ignore[attr-defined]
    other_url = other or f"sqlite:///{box.root / 'other.db'}"
    try:
        new_store = box.reval("sync", "--json", REVAL_LIVE_URL=other_url)  # a new store on a used home
        assert new_store.code == 1 and "its own REVAL_HOME" in new_store.data["error"], str(new_store)
        own_home = box.reval("sync", "--json", REVAL_LIVE_URL=other_url, REVAL_HOME=str(box.root / "other-home"))
        assert own_home.code == 0, str(own_home)
        for args in (["gc", "--keep", "0"], ["sync"], ["status"]):
            ran = box.reval(*args, "--json", REVAL_LIVE_URL=other_url)
            assert ran.code == 1 and "serves another live store" in ran.data["error"], (args, str(ran))
        box.check_whole(expected_live=box.base)
    finally:
        if other:
            drop_database(other)


def test_reading_and_repointing_never_need_the_source(box: Sandbox) -> None:
    second = box.sync("b").data["version"]
    no_source = {"REVAL_SOURCE": "files", "REVAL_SOURCE_DIR": ""}
    for args in (["status"], ["versions"], ["verify"], ["diff", box.base, second],
                 ["rollback", box.base, "--reason", "3 a.m."], ["publish", second, "--reason", "x"],
                 ["gc", "--keep", "5"]):
        ran = box.reval(*args, "--json", **no_source)
        expected = 1 if args[0] == "publish" else 0  # a retired version is no candidate: refused, not a crash
        assert ran.code == expected, (args, str(ran))
        assert "REVAL_SOURCE_DIR" not in ran.stderr, (args, ran.stderr)
    sync = box.reval("sync", "--json", **no_source)
    assert sync.code == 1 and "REVAL_SOURCE=files needs REVAL_SOURCE_DIR" in sync.data["error"]


# --- verify reads the live tables ---------------------------------------------------------------------


def test_verify_finds_rows_deleted_from_a_live_table(box: Sandbox) -> None:
    with box.runtime() as rt:
        manifest = rt.snapshots.manifest(box.base)
        from reval_assets.store.live import file_table

        table = file_table(manifest.files["doctors"][0])
    engine = sa.create_engine(box.live_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        key = conn.exec_driver_sql(f"SELECT gmc_reference_number FROM {table} LIMIT 1").scalar()
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE gmc_reference_number = '{key}'")
    engine.dispose()
    ran = box.reval("verify", "--json")
    assert ran.code == 5, str(ran)
    assert f"table {table} (doctors" in ran.data["error"] and "rows" in ran.data["error"]


def test_read_only_commands_do_not_create_a_catalog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    runtime = Runtime(Settings.from_env({"REVAL_HOME": str(tmp_path / "home"), "REVAL_LIVE_URL": url}),
                      read_only=True)
    assert operations.status(runtime)["live_version"] is None
    assert not (tmp_path / "nothing.db").exists()


# --- a full disk ------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 96 MiB filesystem (tmpfs) of the test's own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def reval_on(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
    env.update(REVAL_HOME=str(home), REVAL_DOCTORS="800", **extra)
    return subprocess.run([*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=300)


def parquet_files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in (home / "snapshots" / "files").rglob("*.parquet")}


def test_a_nearly_full_disk_refuses_a_sync_and_live_stays_readable(small_disk: Path) -> None:
    home = small_disk / "home"
    first = reval_on(home, "sync")
    assert first.returncode == 0, first.stderr
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    with filler.open("wb") as out:
        out.truncate(0)
        out.write(b"\0" * (free - 4 * 2**20))  # 4 MiB left: less than a sync needs
    refused = reval_on(home, "sync", REVAL_SEED="1")
    assert refused.returncode == 1 and "disk full" in json.loads(refused.stdout)["error"], refused.stderr
    assert "Nothing was written" in json.loads(refused.stdout)["error"]
    status = reval_on(home, "status")
    assert status.returncode == 0 and json.loads(status.stdout)["live_version"] == json.loads(first.stdout)["version"]
    engine = sa.create_engine(f"sqlite:///{home / 'live.db'}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # a new reader, as an admin screen opens one
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM doctors").scalar() == 800
    engine.dispose()


def test_a_sync_that_fills_the_disk_gives_back_the_files_it_wrote(small_disk: Path) -> None:
    home = small_disk / "home"
    first = reval_on(home, "sync")
    assert first.returncode == 0, first.stderr
    before = parquet_files(home)
    full = reval_on(home, "sync", REVAL_SEED="1", REVAL_TEST_FAULT="write/doctors#2:oserror=ENOSPC")
    error = json.loads(full.stdout)["error"]
    assert full.returncode == 1 and "disk full (" in error and "No space left on device" in error, error
    assert "gave back" in error and "live is unchanged" in error
    assert parquet_files(home) == before  # the new raw and entity files are gone; live's are all there
    assert reval_on(home, "verify").returncode == 0
    again = reval_on(home, "sync", "--allow-drift", "another population", REVAL_SEED="1")
    assert again.returncode == 0, again.stderr


def test_a_prod_rollback_of_an_overlong_id_is_refused_in_one_line_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    overlong = "v" + "1" * 40
    env = {"REVAL_HOME": str(tmp_path / "home"), "REVAL_LIVE_URL": pg_url, "REVAL_ENV": "prod"}
    refused = subprocess.run([*CLI, "rollback", overlong, "--reason", "x", "--json"], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=120)
    assert refused.returncode == 4, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "SELECT" not in refused.stderr
    confirmed = subprocess.run([*CLI, "rollback", overlong, "--reason", "x", "--confirm", "prod", "--json"],
                               capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert confirmed.returncode == 2 and "unknown version" in json.loads(confirmed.stdout)["error"]


def test_a_store_from_before_identities_takes_its_live_versions_environment_and_batch_count(box: Sandbox) -> None:
    engine = sa.create_engine(box.live_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE reval_store")
    engine.dispose()
    (box.snapshots / "store.json").unlink()
    ran = box.reval("sync", "--json", source="b", REVAL_BATCHES="2")  # the first writer after the upgrade
    assert ran.code == 1 and "this live store has 4 batches, but REVAL_BATCHES is 2" in ran.data["error"], str(ran)
    assert box.sync("b").data["published"]

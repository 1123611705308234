"""Abort, resume and faults: live data is never harmed (issue 5). Figures in docs/reliability.md.

Every test runs the real `reval` command in a subprocess against a sandboxed REVAL_HOME (see
`reliability_kit`) and breaks it: SIGKILL at named points and at random instants, Ctrl-C and
SIGTERM, a dropped PostgreSQL connection, a full disk, a flipped or truncated file; or races
readers against publishes and rollbacks. After each fault the same invariants are checked:
live is exactly the version it was (content hash of the four views), no file under a final
name is partial, no manifest points to a missing or damaged file, every retained version
verifies, and the next sync succeeds, reusing what the stopped one finished.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from reval_assets.dagster_home import dagster_home
from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline import operations
from reval_assets.pipeline.steps import build_batch, land, land_batch, stage_candidate
from reval_assets.run import PID_TAG
from reval_assets.settings import Settings
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import ConcurrentPublishError, LiveStore
from reval_assets_tests.reliability_kit import (
    BATCHES,
    Ran,
    Sandbox,
    clone,
    create_database,
    drop_database,
    new_sandbox,
    remove_tree,
    store_problems,
    terminate_transaction_backends,
    wait_for_exit,
)
from reval_assets_tests.reliability_reader import READ, READ_VIEWS

pytestmark = pytest.mark.slow

# Named kill points in the order a sync reaches them (see reval_assets/store/faults.py). `write/<x>`
# is the n-th file written into folder <x> (`raw`/`entities`: batch heads; `landing`; `versions`:
# manifests; an entity or raw input name: its Parquet files); a kill there leaves half a temp file.
KILL_POINTS_FILES = [
    "extracted",            # source read, nothing written
    "write#1",              # the first raw Parquet file, half written
    "write/landing#1",      # every raw file written, the landing record half written
    "write/raw#2",          # raw heads: batch 0 moved on, batch 1 half written
    "write/doctors#2",      # entity files: batch 0 written, batch 1's doctors half written
    "write/entities#3",     # entity heads: batches 0-1 moved on, batch 2's head half written
    "write/versions#1",     # the candidate's manifest, half written
]
KILL_POINTS_DB = [
    "manifest_written",     # manifest complete, nothing loaded
    "load_table#3",         # third table created and filled, its transaction not committed
    "loaded",               # every table loaded and committed, the version not recorded yet
    "stage",                # catalog rows (and PostgreSQL's version views) created, not committed
    "checks",               # staged, checks computed, results not recorded
    "repoint_view#2",       # publish transaction: two of the four live views re-pointed
    "publish",              # publish transaction: views, pointer and audit written, not committed
]
REPORT: dict[str, object] = {}  # figures gathered by the tests, written to /tmp for docs/reliability.md


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    Path("/tmp/reval-reliability-figures.json").write_text(json.dumps(REPORT, indent=1, default=str))


_TEMPLATES: dict[str, Sandbox] = {}


@pytest.fixture(scope="module")
def _templates():
    """Per backend, built on first use: a sandbox where `reval sync` has published export `a` (the base)."""
    yield _TEMPLATES
    for box in _TEMPLATES.values():
        if box.backend == "postgresql":  # type: ignore[attr-defined]
            drop_database(box.live_url)
        remove_tree(box.root)
    _TEMPLATES.clear()


def _make(request: pytest.FixtureRequest, tmp_path: Path, backend: str, *, based: bool) -> Sandbox:
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    if not based:
        return new_sandbox(tmp_path, create_database(server) if server else None, backend)
    templates = request.getfixturevalue("_templates")
    if backend not in templates:
        template = new_sandbox(tmp_path / "template", create_database(server) if server else None, backend)
        first = template.sync("a")
        template.base, template.base_seconds = first.data["version"], first.seconds  # type: ignore[attr-defined]
        templates[backend] = template
    template = templates[backend]
    url = create_database(server, sa.engine.make_url(template.live_url).database) if server else None
    return clone(template, tmp_path, url)


def _cleanup(box: Sandbox) -> None:
    if box.backend == "postgresql":  # type: ignore[attr-defined]
        drop_database(box.live_url)
    remove_tree(box.root)


@pytest.fixture(params=["sqlite", "postgresql"])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path):
    """On each live store (SQLite, then a PostgreSQL database of its own): export `a` already published."""
    box = _make(request, tmp_path, request.param, based=True)
    yield box
    _cleanup(box)


@pytest.fixture(params=["sqlite", "postgresql"])
def bare(request: pytest.FixtureRequest, tmp_path: Path):
    """On each live store, nothing synced yet."""
    box = _make(request, tmp_path, request.param, based=False)
    yield box
    _cleanup(box)


@pytest.fixture
def sqlite_sandbox(request: pytest.FixtureRequest, tmp_path: Path):
    """For faults of the snapshot files and the Dagster layer, which do not depend on the live store."""
    box = _make(request, tmp_path, "sqlite", based=True)
    yield box
    _cleanup(box)


@pytest.fixture
def pg_sandbox(request: pytest.FixtureRequest, tmp_path: Path):
    box = _make(request, tmp_path, "postgresql", based=True)
    yield box
    _cleanup(box)


def last_audit(box: Sandbox) -> dict:
    with box.runtime() as rt:
        row = rt.live.audit_rows()[-1]
    return {**row, "detail": json.loads(row["detail"] or "{}")}


# --- 2. kill -9 at any instant --------------------------------------------------------------


def _step_at_death(box: Sandbox, ran: Ran) -> str:
    """The last Dagster step a killed `reval sync` started (from its runs' event logs), for the report."""
    if ran.code == 0:
        return "finished"
    instance = dg.DagsterInstance.from_config(str(dagster_home(Settings.from_env(box.env()))))
    since = datetime.fromtimestamp(ran.wall_started - 1, UTC)
    try:
        started = [(record.timestamp, record.step_key)
                   for run in instance.get_runs(dg.RunsFilter(tags={PID_TAG: str(ran.pid)}, created_after=since))
                   for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)]
    finally:
        instance.dispose()
    return max(started)[1] if started else "before any step (process start-up)"


def test_kill_9_at_named_points_and_random_instants_leaves_live_whole_then_sync_resumes_and_gc_reclaims(sandbox):
    box = sandbox
    base = live = box.base
    full_seconds = box.base_seconds
    points = (KILL_POINTS_FILES if box.backend == "sqlite" else []) + KILL_POINTS_DB
    trials = []
    target = "b"
    for point in points:
        ran = box.reval("sync", "--json", source=target, fault=f"{point}:kill")
        assert ran.code == -signal.SIGKILL, f"{point}: {ran}"
        assert ran.fired == [point if "#" in point else f"{point}#1"], (point, ran.fired)
        figures = box.check_whole(expected_live=live)
        trials.append({"kill": point, "after_s": round(ran.seconds, 2), **figures})

    # Kills at random instants: SIGKILL after a delay spread over a sync's duration. A kill that lands
    # after the publish committed (or a sync that finished first) leaves the NEW version live, whole.
    rng = random.Random(20231211)
    timed = 4 if box.backend == "sqlite" else 2
    for _ in range(timed):
        delay = rng.uniform(1.0, 1.3 * full_seconds)
        started = time.monotonic()
        proc = box.start("sync", "--json", source=target)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        ran = box.finish(proc, started)
        assert ran.code in (0, -signal.SIGKILL), str(ran)
        pointer = box.pointer()
        changed = pointer != live
        if changed:  # finished first, or killed after the publish committed: the NEW version is live, whole
            with box.runtime() as rt:
                created = rt.live.version(pointer)["created_at"]
            assert created >= datetime.fromtimestamp(ran.wall_started, UTC).replace(tzinfo=None), pointer  # its own
            box.remember(pointer)
            live, target = pointer, ("a" if target == "b" else "b")
        figures = box.check_whole(expected_live=live)
        trials.append({"kill": f"after {delay:.2f}s", "exit": ran.code, "live_changed": changed,
                       "during": _step_at_death(box, ran), **figures})

    # The next normal sync succeeds, reuses what the killed ones finished, and closes their Dagster runs.
    final = box.sync(target)
    assert final.data["published"] is True
    new = final.data["version"]
    assert box.views_hash() == box.hashes[new]
    reused = _materializations(box, final)  # everything was written and loaded by the killed syncs
    assert all(reused[e]["batches_written"] == 0 for e in ("doctors", "connections", "recommendations")), reused
    assert reused["release_candidate"]["tables_loaded"] == 0, reused["release_candidate"]
    instance = dg.DagsterInstance.from_config(str(dagster_home(Settings.from_env(box.env()))))
    try:
        unfinished = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED,
                                                                dg.DagsterRunStatus.STARTING,
                                                                dg.DagsterRunStatus.NOT_STARTED]))
        canceled = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.CANCELED]))
    finally:
        instance.dispose()
    assert unfinished == [], [r.run_id for r in unfinished]
    with box.runtime() as rt:
        killed_audits = [r for r in rt.live.audit_rows() if r["action"] == "abort"
                         and json.loads(r["detail"])["how"] == "killed"]
    closed = sum(len(json.loads(r["detail"])["run_ids"]) for r in killed_audits)
    assert closed == len(canceled) > 0

    # gc reclaims what the aborted syncs left (temp files, orphan manifests, staged candidates whose
    # checks never ran, loaded tables no version uses) and keeps everything live, pinned or retained reaches.
    pinned = base
    with box.runtime() as rt:
        rt.live.set_pinned(pinned, True, actor="reliability", env="dev", reason="kept")
        versions_before = {r["version"]: r["status"] for r in rt.live.versions()}
        tables_before = rt.live.loaded_tables()
    temp_before = len(list(box.snapshots.rglob(".tmp-*")))
    files_before = len(list(box.snapshots.rglob("*.parquet")))
    manifests_before = len(list((box.snapshots / "versions").glob("v*.json")))
    for path in box.snapshots.rglob("*"):  # older than gc's grace period for a sync still running
        if path.is_file():
            stat = path.stat()
            os.utime(path, (stat.st_atime - 3600, stat.st_mtime - 3600))
    engine = sa.create_engine(box.live_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # the candidates too: a young one may be a running sync's
        for version, created in conn.execute(sa.text("SELECT version, created_at FROM reval_versions")).all():
            created = datetime.fromisoformat(str(created))
            conn.execute(sa.text("UPDATE reval_versions SET created_at = :at WHERE version = :v"),
                         {"at": created - timedelta(hours=1), "v": version})
    engine.dispose()
    unseen = {p.stem for p in (box.snapshots / "versions").glob("v*.json")} - set(versions_before)
    gc = box.reval("gc", "--keep", "1", "--json")
    assert gc.code == 0, str(gc)
    report = gc.data
    with box.runtime() as rt:
        versions_after = {r["version"]: r["status"] for r in rt.live.versions()}
        assert set(versions_after) == set(report["retained"])
        assert {new, pinned} <= set(versions_after)
        reachable = set()
        for version in versions_after:
            manifest = rt.snapshots.manifest(version)
            reachable |= {f"rb_{ref.sha256[:32]}" for ref in manifest.all_files()}
            assert operations.verify(rt, version)["problems"] == []
        for version in unseen:  # a sync killed before staging its manifest: gc keeps what it reaches, tables too
            reachable |= {f"rb_{ref.sha256[:32]}" for ref in rt.snapshots.manifest(version).all_files()}
        assert rt.live.loaded_tables() == reachable
        inspector = sa.inspect(rt.live.engine)
        views = {v[1:24] for v in inspector.get_view_names() if v.startswith("rv")}
        assert views == (set(versions_after) if box.backend == "postgresql" else set())  # see store/live.py
    assert list(box.snapshots.rglob(".tmp-*")) == []
    # a manifest no catalog has seen (a sync killed before staging it) is never deleted: only reported
    assert report["unseen_manifests_kept"] == len(unseen)
    assert sorted(p.stem for p in (box.snapshots / "versions").glob("v*.json")) == sorted({*versions_after, *unseen})
    assert store_problems(box.snapshots) == []
    assert box.views_hash() == box.hashes[new]
    back = box.reval("rollback", pinned, "--reason", "pinned survives gc", "--json")
    assert back.code == 0, str(back)
    assert box.views_hash() == box.hashes[pinned]
    files_after = len(list(box.snapshots.rglob("*.parquet")))
    REPORT[f"kill9_{box.backend}"] = {
        "trials": trials, "full_sync_s": round(full_seconds, 1), "final_sync_s": round(final.seconds, 1),
        "dagster_runs_closed": closed,
        "gc": {"versions": [len(versions_before), len(versions_after)], "tables": [len(tables_before),
               len(reachable)], "temp_files": [temp_before, 0], "parquet_files": [files_before, files_after],
               "manifests": [manifests_before, len(versions_after) + len(unseen)]},
    }


# --- 1. cancel: Ctrl-C, SIGTERM, Dagster run termination ----------------------------------

INTERRUPT_POINTS = {
    "sqlite": ["write/doctors#2", "load_table#2", "checks", "publish"],
    "postgresql": ["load_table#2", "publish"],
}


def test_ctrl_c_stops_a_sync_within_seconds_leaves_live_unchanged_and_audits_the_abort(sandbox):
    box = sandbox
    live = box.base
    trials = []
    for point in INTERRUPT_POINTS[box.backend]:
        proc, marker, started = box.paused("sync", "--json", source="b", point=point)
        proc.send_signal(signal.SIGINT)
        stopped = wait_for_exit(proc, timeout=15)
        ran = box.finish(proc, started)
        assert ran.code == 1, str(ran)
        assert stopped < 5, f"took {stopped:.1f}s to stop after Ctrl-C at {point}"
        assert ran.data["interrupted"] is True and ran.data["published"] is False, ran.data
        assert "interrupted while" in ran.message and f"live is unchanged ({live})" in ran.message, ran.message
        assert "reval sync` again to resume" in ran.message
        audit = last_audit(box)
        assert audit["action"] == "abort" and audit["detail"]["how"] == "interrupted", audit
        assert audit["detail"]["live"] == live and audit["detail"]["run_ids"] == ran.data["run_ids"]
        box.check_whole(expected_live=live)
        marker.unlink(missing_ok=True)
        trials.append({"signal": "SIGINT", "at": point, "stopped_s": round(stopped, 2), "exit": ran.code})
    REPORT[f"ctrl_c_{box.backend}"] = trials


def test_terminating_the_dagster_run_stops_it_marks_it_canceled_and_leaves_live_unchanged(sqlite_sandbox):
    """What the Dagster UI's Terminate does to a run worker: mark the run CANCELING, then SIGTERM its process.

    `reval sync` runs the job in process (no run launcher to call `terminate` on), so the test plays the
    launcher's part: `instance.report_run_canceling(run)`, then SIGTERM to the process running the run.
    """
    box = sqlite_sandbox
    live = box.base
    trials = []
    for point in ("checks", "publish"):
        proc, marker, started = box.paused("sync", "--json", source="b", point=point)
        instance = dg.DagsterInstance.from_config(str(dagster_home(Settings.from_env(box.env()))))
        try:
            runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                   tags={PID_TAG: str(proc.pid)}))
            assert len(runs) == 1, runs
            instance.report_run_canceling(runs[0], message="terminated by test_reliability")
            proc.send_signal(signal.SIGTERM)
            stopped = wait_for_exit(proc, timeout=15)
            status = instance.get_run_by_id(runs[0].run_id).status
        finally:
            instance.dispose()
        ran = box.finish(proc, started)
        assert ran.code == 1 and stopped < 5, (stopped, str(ran))
        assert status == dg.DagsterRunStatus.CANCELED, status
        assert ran.data["interrupted"] is True and f"live is unchanged ({live})" in ran.message
        assert last_audit(box)["action"] == "abort"
        box.check_whole(expected_live=live)
        marker.unlink(missing_ok=True)
        trials.append({"signal": "CANCELING + SIGTERM", "at": point, "stopped_s": round(stopped, 2),
                       "dagster_status": status.value})
    REPORT["dagster_terminate_sqlite"] = trials


# --- 3. resume ------------------------------------------------------------------------------


def _materializations(box: Sandbox, ran: Ran) -> dict[str, dict]:
    """Metadata of each asset materialised by the runs of one `reval sync` process."""
    instance = dg.DagsterInstance.from_config(str(dagster_home(Settings.from_env(box.env()))))
    since = datetime.fromtimestamp(ran.wall_started - 1, UTC)
    try:
        found: dict[str, dict] = {}
        for run in instance.get_runs(dg.RunsFilter(tags={PID_TAG: str(ran.pid)}, created_after=since)):
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                materialization = record.dagster_event.event_specific_data.materialization
                found[materialization.asset_key.to_user_string()] = {
                    k: v.value for k, v in materialization.metadata.items()}
        return found
    finally:
        instance.dispose()


def test_resume_after_aborts_reuses_complete_batch_files_and_loaded_tables_and_reports_it(sandbox):
    box = sandbox
    with box.runtime() as rt:
        tables_a = rt.live.loaded_tables()
        files_a = {ref.sha256 for ref in rt.snapshots.manifest(box.base).all_files()}

    # Killed while writing batch 2's doctors file: batches 0 and 1 are complete.
    killed = box.reval("sync", "--json", source="b", fault="write/doctors#3:kill")
    assert killed.code == -signal.SIGKILL and killed.fired == ["write/doctors#3"]
    # The next sync resumes (reusing batches 0-1) and is killed inside the third table's transaction,
    # after committing the first two. PostgreSQL loads over two connections: when the kill lands, the
    # other connection may not have committed the second table yet, or may have committed a fourth.
    second = box.reval("sync", "--json", source="b", fault="load_table#3:kill")
    assert second.code == -signal.SIGKILL and second.fired == ["load_table#3"]
    resumed = _materializations(box, second)
    # Batches are built on threads: one whose write passed the fault point just after the kill was asked for
    # may finish before the kill lands (seen on a loaded machine), so two or three batches are complete.
    reused = resumed["doctors"]["batches_reused"]
    assert reused in (2, 3) and resumed["doctors"]["batches_written"] == BATCHES - reused, resumed["doctors"]
    with box.runtime() as rt:
        committed = len(rt.live.loaded_tables() - tables_a)  # each table commits on its own
    assert committed == 2 if box.backend == "sqlite" else committed in (1, 2, 3), committed
    box.check_whole(expected_live=box.base)

    final = box.sync("b")
    metadata = _materializations(box, final)
    for entity in ("doctors", "connections", "recommendations"):
        assert metadata[entity]["batches_written"] == 0 and metadata[entity]["batches_reused"] == BATCHES
    with box.runtime() as rt:
        files_b = {ref.sha256 for ref in rt.snapshots.manifest(final.data["version"]).all_files()}
    new_tables = len(files_b - files_a)
    candidate = metadata["release_candidate"]
    assert candidate["tables_loaded"] == new_tables - committed, candidate
    assert candidate["tables_reused"] == len(ENTITIES) * BATCHES - candidate["tables_loaded"], candidate
    assert box.views_hash() == box.hashes[final.data["version"]]
    REPORT[f"resume_{box.backend}"] = {
        "after_kill_in_doctors_batch_2": {k: resumed["doctors"][k] for k in ("batches_written", "batches_reused")},
        "after_kill_in_load_table_3": {"batches_written": metadata["doctors"]["batches_written"],
                                       "batches_reused": metadata["doctors"]["batches_reused"],
                                       "tables_loaded": candidate["tables_loaded"],
                                       "tables_reused": candidate["tables_reused"], "new_tables": new_tables},
    }


# --- 4. readers during publish and rollback ---------------------------------------------------

def _stage_passing(rt, doctors: int) -> str:
    """Stage a candidate with the core steps and mark its checks passed.

    These tests are about the view swap, not the checks (whose thresholds would block populations of
    different sizes as drift), so the check result is recorded directly.
    """
    landing = land(SyntheticSource(doctors=doctors, seed=7), rt.snapshots, BATCHES)
    for batch in range(BATCHES):
        land_batch(rt.snapshots, landing, batch)
        build_batch(rt.snapshots, batch)
    version = stage_candidate(rt, actor="reliability", reason="reader test", run_id=None).manifest.version
    rt.live.record_checks(version, [{"name": "view_swap_test", "passed": True, "blocking": True}],
                          actor="reliability", env="dev")
    return version


def _counts(box: Sandbox, version: str) -> tuple[int, ...]:
    """The version's rows in each view READ counts."""
    with box.runtime() as rt:
        queries = [rt.live.version_query(version, v) for v in READ_VIEWS]
    engine = sa.create_engine(box.live_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return tuple(conn.exec_driver_sql(f"SELECT COUNT(*) FROM ({query}) AS version_rows").scalar()
                         for query in queries)
    finally:
        engine.dispose()


def _connect(box: Sandbox):
    if box.backend == "sqlite":
        conn = sqlite3.connect(sa.engine.make_url(box.live_url).database, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    return psycopg.connect(_conninfo(box.live_url), autocommit=True)


def _conninfo(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_readers_never_see_a_missing_view_an_error_or_two_versions_during_publishes_and_rollbacks(bare):
    """Each read is ONE statement: the live pointer and the row counts of the four views.

    The three versions differ in every one of the four counts, so a read mixing views of two versions
    gives a tuple no version has ("mixed"); a read whose counts are not those of the version the pointer
    names in the same statement is "torn". Both must be 0, as must errors, over thousands of reads.
    """
    box = bare
    with box.runtime() as rt:
        v0 = _stage_passing(rt, 900)
        operations.publish(rt, v0, actor="reliability", reason="first")
        target = sa.engine.make_url(box.live_url).database if box.backend == "sqlite" else _conninfo(box.live_url)
        stop = box.root / "readers.stop"
        readers = []
        for i in range(2):  # reader PROCESSES, as real readers are (see reliability_reader for SQLite's reason)
            files = [str(box.root / f"reader{i}.{kind}") for kind in ("ready", "json")]
            proc = subprocess.Popen([sys.executable, "-m", "reval_assets_tests.reliability_reader", box.backend,
                                     target, files[0], str(stop), files[1]])
            readers.append((proc, Path(files[0]), Path(files[1])))
        deadline = time.monotonic() + 60
        while not all(ready.exists() for _, ready, _ in readers):
            assert time.monotonic() < deadline and all(p.poll() is None for p, _, _ in readers), "readers failed"
            time.sleep(0.05)
        started = time.monotonic()
        try:
            v1 = _stage_passing(rt, 1000)  # staging beside live, with readers reading
            operations.publish(rt, v1, actor="reliability", reason="second")
            v2 = _stage_passing(rt, 1100)
            operations.publish(rt, v2, actor="reliability", reason="third")
            cycle, repoints = [v0, v1, v2], 2
            while time.monotonic() - started < 60 and (time.monotonic() - started < 8 or repoints < 200):
                target_version = cycle[repoints % 3]
                if repoints % 10 == 0:
                    operations.rollback(rt, target_version, actor="reliability", reason="reader test")  # + verify
                else:
                    rt.live.rollback(target_version, actor="reliability", reason="reader test", env="dev")
                repoints += 1
        finally:
            stop.touch()
            for proc, _, _ in readers:
                proc.wait(timeout=60)
        seconds = time.monotonic() - started
    results = [json.loads(out.read_text()) for _, _, out in readers]
    reads = [[tuple(r) for r in result["reads"]] for result in results]
    errors = [e for result in results for e in result["errors"]]
    known = {v: _counts(box, v) for v in (v0, v1, v2)}
    for i in range(4):
        assert len({counts[i] for counts in known.values()}) == 3, f"versions share a count: {known}"
    every = [read for sink in reads for read in sink]
    mixed = [r for r in every if tuple(r[1:]) not in known.values()]
    torn = [r for r in every if tuple(r[1:]) != known.get(r[0])]
    seen = Counter(r[0] for r in every)
    switches = sum(1 for sink in reads for a, b in zip(sink, sink[1:], strict=False) if a[0] != b[0])
    REPORT[f"readers_{box.backend}"] = {"reads": len(every), "errors": len(errors), "mixed": len(mixed),
                                        "torn": len(torn), "publishes": 2, "repoints": repoints,
                                        "switches_seen": switches, "seconds": round(seconds, 1),
                                        "reads_per_version": dict(seen)}
    assert errors == [], errors[:5]
    assert mixed == [] and torn == [], (mixed[:5], torn[:5])
    assert len(every) >= 2000 and repoints >= 100, REPORT[f"readers_{box.backend}"]
    assert set(seen) == {v0, v1, v2} and switches >= 20, REPORT[f"readers_{box.backend}"]


def _hold(box: Sandbox, view: str, seconds: float, holding: threading.Event) -> threading.Thread:
    """A reader transaction that has read `view` and keeps it open for `seconds`."""

    def run() -> None:
        if box.backend == "sqlite":
            conn = _connect(box)
            conn.execute("BEGIN")
        else:
            conn = psycopg.connect(_conninfo(box.live_url))  # not autocommit: one open transaction
        try:
            conn.execute(f"SELECT COUNT(*) FROM {view}").fetchone()
            holding.set()
            time.sleep(seconds)
            conn.rollback() if box.backend == "postgresql" else conn.execute("ROLLBACK")
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert holding.wait(10)
    return thread


def test_publish_behind_a_long_reader_waits_or_fails_cleanly_after_the_lock_timeout(bare):
    """PostgreSQL: re-pointing a view needs an exclusive lock, so it waits for open readers of that view,
    at most `lock_timeout_seconds` for the whole publish; readers arriving meanwhile queue behind it for at
    most as long. SQLite (WAL): readers read a snapshot and never block a publish, nor it them."""
    box = bare
    timeout = 1.0
    with box.runtime() as rt:
        v0 = _stage_passing(rt, 900)
        operations.publish(rt, v0, actor="reliability", reason="first")
        v1 = _stage_passing(rt, 1000)
        operations.publish(rt, v1, actor="reliability", reason="second")
    box.remember(v0)
    box.remember(v1)
    store = LiveStore(box.live_url, lock_timeout_seconds=timeout)
    patient = LiveStore(box.live_url, lock_timeout_seconds=5.0)
    figures: dict[str, object] = {}
    try:
        # A reader shorter than the timeout: the publish waits for it, then succeeds.
        reader = _hold(box, "doctors", 0.5, threading.Event())
        started = time.monotonic()
        patient.rollback(v0, actor="reliability", reason="short reader", env="dev")
        waited = time.monotonic() - started
        reader.join()
        assert store.live_version() == v0 and box.views_hash() == box.hashes[v0]
        figures["short_reader_0.5s"] = {"lock_timeout_s": 5.0, "publish_waited_s": round(waited, 2),
                                        "outcome": "published"}
        if box.backend == "postgresql":
            assert 0.4 <= waited < 5.0, waited
        else:
            assert waited < 0.4, waited

        # A reader longer than the timeout: the publish fails cleanly after the timeout, live unchanged,
        # and a reader that arrives while the publish waits is held up no longer than the timeout.
        holder = _hold(box, "recommendations", 3.0, threading.Event())
        late: dict[str, object] = {}

        def late_reader() -> None:
            time.sleep(0.3)
            conn = _connect(box)
            begun = time.monotonic()
            late["row"] = tuple(conn.execute(READ).fetchone())
            late["waited"] = time.monotonic() - begun
            conn.close()

        late_thread = threading.Thread(target=late_reader, daemon=True)
        late_thread.start()
        started = time.monotonic()
        outcome = "published"
        try:
            store.rollback(v1, actor="reliability", reason="long reader", env="dev")
        except ConcurrentPublishError as error:
            outcome = str(error)
        failed_after = time.monotonic() - started
        late_thread.join(10)
        if box.backend == "postgresql":
            assert outcome.startswith(f"could not take the publish lock within {timeout:g}s"), outcome
            assert timeout - 0.05 <= failed_after < timeout + 1.0, failed_after
            assert store.live_version() == v0 and box.views_hash() == box.hashes[v0]
            assert late["row"] == (v0, *_counts(box, v0)) and late["waited"] < timeout + 0.5, late
        else:
            assert outcome == "published" and failed_after < 0.4, (outcome, failed_after)
            assert late["waited"] < 0.3, late
        figures["long_reader_3s"] = {"lock_timeout_s": timeout, "publish_s": round(failed_after, 2), "outcome": outcome,
                                     "late_reader_waited_s": round(late["waited"], 2)}
        holder.join()

        if box.backend == "postgresql":
            # Readers on two views in turn: the timeout bounds the whole publish, not each view's wait.
            first = _hold(box, "doctors", 0.9, threading.Event())
            second = _hold(box, "discrepancies", 3.0, threading.Event())
            started = time.monotonic()
            with pytest.raises(ConcurrentPublishError, match="publish lock"):
                store.rollback(v1, actor="reliability", reason="two readers", env="dev")
            both = time.monotonic() - started
            assert both < timeout + 0.5, both  # one timeout per view would be 0.9 + 1.0 s
            first.join()
            second.join()
            figures["readers_on_two_views_0.9s_and_3s"] = {"lock_timeout_s": timeout, "publish_s": round(both, 2),
                                                           "outcome": "lock timeout"}
            store.rollback(v1, actor="reliability", reason="readers gone", env="dev")  # and now it goes through
            assert store.live_version() == v1 and box.views_hash() == box.hashes[v1]
    finally:
        store.close()
        patient.close()
    REPORT[f"lock_timeout_{box.backend}"] = figures


# --- 5. database and disk faults ------------------------------------------------------------


def test_dropped_postgresql_connection_during_staging_or_publish_rolls_back_and_a_retry_succeeds(pg_sandbox):
    box = pg_sandbox
    live = box.base
    trials = []
    for point in ("load_table#2", "stage", "publish"):
        proc, marker, started = box.paused("sync", "--json", source="b", point=point)
        terminated = terminate_transaction_backends(box.live_url)
        marker.unlink()
        ran = box.finish(proc, started, timeout=60)
        # Paused inside the second table's transaction; the load's other connection may be inside its own
        # (between statements) or may have committed it already: one or two. Staging and publish use one.
        assert terminated in ((1, 2) if point.startswith("load_table") else (1,)), (point, terminated)
        assert ran.code == 1, str(ran)
        assert ran.data["published"] is False, ran.data
        error = ran.data["error"]
        # libpq reports the server's notice, or (when the socket closes before it reads it) a closed connection
        dropped = ("terminating connection due to administrator command", "server closed the connection unexpectedly")
        assert "database failed" in error and any(text in error for text in dropped), error
        assert f"Live is unchanged ({live})" in error and "\n" not in error, error
        box.check_whole(expected_live=live)
        trials.append({"dropped_at": point, "exit": ran.code, "error": error})
    retry = box.sync("b")
    assert retry.data["published"] is True and box.views_hash() == box.hashes[retry.data["version"]]
    REPORT["pg_connection_dropped"] = trials


DISK_FAULTS = [
    ("write/doctors#2:oserror=ENOSPC", "No space left on device"),    # an entity file
    ("write/entities#1:oserror=EROFS", "Read-only file system"),      # a batch head
    ("write/versions#1:oserror=ENOSPC", "No space left on device"),   # the candidate's manifest
]


def test_disk_full_or_unwritable_snapshot_folder_fails_clearly_and_leaves_no_half_version(sqlite_sandbox):
    box = sqlite_sandbox
    live = box.base
    manifests = sorted((box.snapshots / "versions").glob("v*.json"))
    trials = []
    # A real read-only folder (the first batch of doctors, which the sync must write a new file into): owned
    # by someone else, mode 0555, and a `reval` process without the root capabilities that would ignore that
    # (run as root; skipped where capsh is missing or when not root).
    capsh = shutil.which("capsh")
    if os.geteuid() == 0 and capsh:
        folder = box.snapshots / "files" / "doctors" / "batch=0"
        os.chown(folder, 65534, 65534)
        os.chmod(folder, 0o555)
        prefix = (capsh, "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c",
                  'exec "$0" "$@"')
        ran = box.reval("sync", "--json", source="b", prefix=prefix)
        os.chown(folder, 0, 0)
        os.chmod(folder, 0o700)
        assert ran.code == 1, str(ran)
        assert "Operation not permitted" in ran.data["error"] or "Permission denied" in ran.data["error"]
        assert str(folder) in ran.data["error"], ran.data["error"]
        assert sorted((box.snapshots / "versions").glob("v*.json")) == manifests
        box.check_whole(expected_live=live)
        trials.append({"fault": "read-only batch folder (real)", "exit": ran.code, "error": ran.data["error"][:160]})
    for fault, text in DISK_FAULTS:
        ran = box.reval("sync", "--json", source="b", fault=fault)
        assert ran.code == 1 and ran.fired, f"{fault}: {ran}"
        assert text in ran.data["error"] and str(box.snapshots) in ran.data["error"], ran.data["error"]
        assert list(box.snapshots.rglob(".tmp-*")) == []  # the half-written temp file is removed
        assert sorted((box.snapshots / "versions").glob("v*.json")) == manifests  # no new (half) version
        box.check_whole(expected_live=live)
        trials.append({"fault": fault, "exit": ran.code, "error": ran.data["error"][:160]})

    after = box.sync("b")
    assert after.data["published"] is True
    REPORT["disk_faults"] = trials


# --- 6. corruption --------------------------------------------------------------------------


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_or_truncated_snapshot_file_is_caught_before_staging_or_rollback_naming_the_file(sqlite_sandbox):
    box = sqlite_sandbox
    old = box.base
    live = box.sync("b").data["version"]
    with box.runtime() as rt:
        old_manifest, live_manifest = rt.snapshots.manifest(old), rt.snapshots.manifest(live)
    only_old = [r for r in old_manifest.files["doctors"] if r not in live_manifest.files["doctors"]]
    flipped = box.snapshots / only_old[1].path
    _flip(flipped)
    results = {}

    verify = box.reval("verify", old, "--json")
    assert verify.code == 5 and str(flipped) in verify.data["error"], str(verify)
    back = box.reval("rollback", old, "--reason", "to a damaged version", "--json")
    assert back.code == 5 and str(flipped) in back.data["error"], str(back)
    assert box.pointer() == live and box.views_hash() == box.hashes[live]
    results["flipped byte, rollback"] = back.data["error"][:160]

    # A file a partial sync would stage as it is (its batch is not rebuilt): truncated -> refused, named.
    truncated = box.snapshots / live_manifest.files["recommendations"][3].path
    truncated.write_bytes(truncated.read_bytes()[:-100])
    versions_before = sorted((box.snapshots / "versions").glob("v*.json"))
    partial = box.reval("sync", "--batches", "0", "--json", source="b")
    assert partial.code == 1 and str(truncated) in partial.data["error"], str(partial)
    assert sorted((box.snapshots / "versions").glob("v*.json")) == versions_before
    assert box.pointer() == live and box.views_hash() == box.hashes[live]
    results["truncated file, partial sync"] = partial.data["error"][:160]

    # A full sync rebuilds that batch: the damaged copy is rewritten with the right bytes (by checksum).
    full = box.sync("b")
    assert full.data["published"] is True
    # Only the flipped file of the old version is still damaged (nothing produces it any more).
    assert set(store_problems(box.snapshots)) == {f"{flipped}: bytes do not hash to the file's name (partial or "
                                                  "damaged)", f"{old}.json points to damaged {only_old[1].path}"}
    healed = _materializations(box, full)
    assert healed["recommendations"]["batches_written"] == 1, healed["recommendations"]
    REPORT["corruption"] = results

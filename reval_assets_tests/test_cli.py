"""The `reval` command end to end, run as a user runs it: a subprocess, its exit code, stdout and stderr.

Every call goes through `reval()`, which runs the installed command with the environment of the
`reval_env` fixture and, for `--json`, parses the WHOLE of stdout as one JSON object (so any stray
output on stdout fails the test). Syncs start Dagster and cost seconds each, so a test shares them
where the story reads naturally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from reval_assets.domain.batching import batch_of
from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import Manifest

REVAL_SCRIPT = Path(sys.executable).with_name("reval")
COMMAND = [str(REVAL_SCRIPT)] if REVAL_SCRIPT.exists() else [sys.executable, "-m", "reval_assets.cli"]
UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/nope"
UNKNOWN_VERSION = "v20990101_000000_abcdef"
STATUS_KEYS = {"env", "live_version", "rows", "published_at", "published_by", "reason"}
SYNC_KEYS = {"version", "published", "blocked_by", "rows", "seconds"}
VERSION_KEYS = {"version", "status", "parent", "created_at", "published_at", "rows"}


@dataclass
class Ran:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    data: dict | None

    @property
    def last_line(self) -> str:
        """The command's own message: the last line of stderr, after any Dagster log output."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return (f"reval {' '.join(self.args)} -> {self.code}\n"
                f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}")


def reval(*args: str, env: dict[str, str | None] | None = None, expect: int | None = 0) -> Ran:
    """Run `reval ARGS` with the test's environment (plus `env`; None removes a variable)."""
    environ = os.environ.copy()
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    proc = subprocess.run([*COMMAND, *args], env=environ, capture_output=True, text=True, timeout=300)
    data = None
    if "--json" in args:
        try:
            data = json.loads(proc.stdout)  # the whole of stdout: one JSON object and nothing else
        except json.JSONDecodeError as error:
            pytest.fail(f"stdout of `reval {' '.join(args)}` is not exactly one JSON object ({error}):\n"
                        f"{proc.stdout[:3000]}\nstderr: {proc.stderr[-2000:]}")
        assert isinstance(data, dict), f"stdout is JSON but not an object: {proc.stdout[:500]}"
    ran = Ran(args=args, code=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, data=data)
    if expect is not None:
        assert ran.code == expect, str(ran)
    return ran


def sync(*args: str, env: dict[str, str | None] | None = None, expect: int | None = 0) -> dict:
    ran = reval("sync", *args, "--json", env=env, expect=expect)
    assert ran.data.keys() >= SYNC_KEYS, ran.data
    return ran.data


def status(env: dict[str, str | None] | None = None) -> dict:
    data = reval("status", "--json", env=env).data
    assert data.keys() >= STATUS_KEYS, data
    return data


def versions(env: dict[str, str | None] | None = None) -> dict[str, dict]:
    data = reval("versions", "--json", env=env).data
    assert set(data) >= {"versions"} and isinstance(data["versions"], list), data
    for row in data["versions"]:
        assert row.keys() >= VERSION_KEYS, row
        assert set(row["rows"]) == set(ENTITIES), row
    return {row["version"]: row for row in data["versions"]}


def manifest(version: str) -> Manifest:
    runtime = Runtime(Settings.from_env())
    try:
        return runtime.snapshots.manifest(version)
    finally:
        runtime.close()


def snapshot_root() -> Path:
    return Settings.from_env().snapshot_root


def read_rows(m: Manifest, entity: str) -> dict[object, dict]:
    """Every row of an entity in a version, by key, read straight from its Parquet files."""
    key = ENTITY_SPECS[entity].key[0]
    table = pa.concat_tables(pq.read_table(snapshot_root() / ref.path) for ref in m.files[entity])
    return {row[key]: row for row in table.to_pylist()}


def expected_diff(a: str, b: str) -> dict[str, dict[str, int]]:
    """What `reval diff A B` should say, worked out independently with plain sets and dicts."""
    result = {}
    for entity in ENTITIES:
        old, new = read_rows(manifest(a), entity), read_rows(manifest(b), entity)
        result[entity] = {
            "added": len(new.keys() - old.keys()),
            "removed": len(old.keys() - new.keys()),
            "changed": sum(1 for k in old.keys() & new.keys() if old[k] != new[k]),
        }
    return result


def live_db(home: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{home / 'live.db'}")


def view_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {v: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {v}").scalar() for v in ENTITIES}


def audit(home: Path) -> list[dict]:
    engine = live_db(home)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.exec_driver_sql("SELECT * FROM reval_audit ORDER BY id").mappings()]
    finally:
        engine.dispose()


# --- sync, status, versions ------------------------------------------------------------------


def test_sync_publishes_and_status_reports_it_then_no_publish_only_stages(reval_env):
    assert status()["live_version"] is None

    first = sync()
    assert first["published"] is True
    assert first["blocked_by"] == []
    assert set(first["rows"]) == set(ENTITIES) and all(n > 0 for n in first["rows"].values())
    assert first["rows"]["doctors"] == 1500
    assert isinstance(first["seconds"], int | float) and first["seconds"] > 0

    now = status()
    assert now["env"] == "dev"
    assert now["live_version"] == first["version"]
    assert now["rows"] == first["rows"]
    assert now["published_at"] and now["published_by"] and now["reason"] == "manual sync"
    text = reval("status")
    assert "DEV" in text.stdout and first["version"] in text.stdout

    staged = sync("--no-publish", "--reason", "look before you leap")
    assert staged["published"] is False and staged["blocked_by"] == []
    assert staged["version"] != first["version"]
    assert status()["live_version"] == first["version"]

    listed = versions()
    assert list(listed) == [first["version"], staged["version"]]
    assert listed[first["version"]]["status"] == "live"
    assert listed[first["version"]]["parent"] is None
    assert listed[staged["version"]]["status"] == "staged"
    assert listed[staged["version"]]["parent"] == first["version"]
    assert listed[staged["version"]]["published_at"] is None
    assert listed[staged["version"]]["created_at"] >= listed[first["version"]]["created_at"]
    assert listed[staged["version"]]["rows"] == staged["rows"]

    engine = live_db(reval_env)
    try:
        assert view_counts(engine) == first["rows"]
    finally:
        engine.dispose()


def test_blocked_sync_exits_3_names_the_check_and_leaves_live_unchanged(reval_env):
    clean = sync()
    ran = reval("sync", "--json", env={"REVAL_FAULTS": "mapping_break"}, expect=3)
    blocked = ran.data
    assert blocked.keys() >= SYNC_KEYS
    assert blocked["published"] is False
    assert "non_empty" in blocked["blocked_by"]
    assert blocked["rows"]["recommendations"] == 0
    assert blocked["error"] and "non_empty" in blocked["error"]
    assert "non_empty" in ran.last_line and "recommendations" in ran.last_line
    assert "live is unchanged" in ran.last_line.lower() and clean["version"] in ran.last_line

    now = status()
    assert now["live_version"] == clean["version"] and now["rows"] == clean["rows"]
    listed = versions()
    assert listed[blocked["version"]]["status"] == "blocked"
    assert listed[clean["version"]]["status"] == "live"
    engine = live_db(reval_env)
    try:
        assert view_counts(engine) == clean["rows"]
    finally:
        engine.dispose()

    refused = reval("rollback", blocked["version"], "--reason", "try the blocked one", "--json", expect=None)
    assert refused.code not in (0, 2), str(refused)
    assert blocked["version"] in refused.data["error"] and "never published" in refused.data["error"]
    assert "never published" in refused.last_line

    for unknown in (UNKNOWN_VERSION, "nope"):
        missing = reval("rollback", unknown, "--reason", "r", "--json", expect=2)
        assert unknown in missing.data["error"] and "reval versions" in missing.data["error"]
        assert "reval versions" in missing.last_line
    assert status()["live_version"] == clean["version"]

    # The blocked candidate's batches must not leak into the next partial sync: the batches it
    # does not re-sync keep the live version's files.
    partial = sync("--batches", "0")
    assert partial["published"] and partial["rows"] == clean["rows"]
    assert manifest(partial["version"]).files == manifest(clean["version"]).files


# --- the environment guard -------------------------------------------------------------------


def test_prod_refuses_sync_and_rollback_without_the_typed_confirmation(reval_env):
    prod = {"REVAL_ENV": "prod"}

    refused = reval("sync", "--json", env=prod, expect=4)
    assert "PROD" in refused.data["error"] and "--confirm prod" in refused.data["error"]
    assert "PROD" in refused.last_line and "--confirm prod" in refused.last_line
    wrong = reval("sync", "--confirm", "staging", "--json", env=prod, expect=4)
    assert "'staging'" in wrong.data["error"] and "--confirm prod" in wrong.data["error"]
    now = status(env=prod)
    assert now["env"] == "prod" and now["live_version"] is None
    assert versions(env=prod) == {}
    refusals = [r for r in audit(reval_env) if r["action"] == "refuse"]
    assert len(refusals) == 2
    assert {r["env"] for r in refusals} == {"prod"}
    assert all(json.loads(r["detail"])["action"] == "sync" for r in refusals)

    published = sync("--confirm", "prod", env=prod)
    assert published["published"] is True
    version = published["version"]
    assert status(env=prod)["live_version"] == version

    no = reval("rollback", version, "--reason", "r", "--json", env=prod, expect=4)
    assert "PROD" in no.data["error"] and "--confirm prod" in no.data["error"]
    reval("rollback", version, "--reason", "r", "--confirm", "staging", "--json", env=prod, expect=4)
    refusals = [r for r in audit(reval_env) if r["action"] == "refuse"]
    assert len(refusals) == 4
    assert [r["version"] for r in refusals[2:]] == [version, version]
    assert not any(r["action"] == "rollback" for r in audit(reval_env))

    yes = reval("rollback", version, "--reason", "drill", "--confirm", "prod", "--json", env=prod)
    assert yes.data["live_version"] == version
    assert status(env=prod)["reason"] == "drill"
    assert audit(reval_env)[-1]["action"] == "rollback"


# --- diff, partial syncs, rollback -----------------------------------------------------------


def batches_touched_by(fault: str, doctors: int = 1500, batches: int = 16, name: str = "gmc_doctors") -> list[int]:
    """The batches whose doctors a synthetic fault edits in input `name` (same seed as `reval_env`): records it
    changed (their number as it was) and records it added."""
    clean = SyntheticSource(doctors=doctors, seed=7).extract()[name].table.to_pylist()
    faulty = SyntheticSource(doctors=doctors, seed=7, faults=(fault,)).extract()[name].table.to_pylist()
    touched = [a["gmcReferenceNumber"] for a, b in zip(clean, faulty[:len(clean)], strict=True) if a != b]
    touched += [b["gmcReferenceNumber"] for b in faulty[len(clean):]]
    return sorted({int(b) for b in batch_of(pa.array(touched, pa.string()), batches)})


def test_diff_partial_batches_and_rollback(reval_env, monkeypatch):
    # 4,000 doctors: a partial re-sync's quarantine budget is of its batches' records, and with 1,500
    # (~90 a batch) a single malformed date is over the 1 % limit
    monkeypatch.setenv("REVAL_DOCTORS", "4000")
    first = sync()
    again = sync("--batches", "0,1")  # the same data synced twice
    assert again["published"] is True and again["version"] != first["version"]
    same = reval("diff", first["version"], again["version"], "--json").data
    assert same == {"a": first["version"], "b": again["version"],
                    "entities": {e: {"added": 0, "removed": 0, "changed": 0} for e in ENTITIES}}
    assert manifest(again["version"]).files == manifest(first["version"]).files

    # Re-sync two batches whose doctors' TIS records now have free-text GMC numbers (quarantined): a new
    # version that shares the other 14 batches' files with the version before it, and whose diff counts
    # changed rows. (A bad GMC record would change nothing: its doctor keeps their last good row.)
    touched = batches_touched_by("tis_free_text_gmc", doctors=4000, name="tis_trainees")
    chosen = touched[:2]
    assert chosen, "the tis_free_text_gmc fault touched no doctor"
    partial = sync("--batches", ",".join(map(str, chosen)), "--reason", "two batches",
                   env={"REVAL_FAULTS": "tis_free_text_gmc"})
    assert partial["published"] is True and status()["live_version"] == partial["version"]
    before, after = manifest(again["version"]), manifest(partial["version"])
    assert after.parent == again["version"]
    for entity in ("doctors", "connections"):
        for batch, ref in enumerate(after.files[entity]):
            if batch in chosen:
                assert ref.sha256 != before.files[entity][batch].sha256, (entity, batch)
            else:
                assert ref == before.files[entity][batch], (entity, batch)  # the very same file, not a copy
    for batch in set(range(16)) - set(chosen):
        assert after.files["recommendations"][batch] == before.files["recommendations"][batch], batch
    changed = reval("diff", again["version"], partial["version"], "--json").data["entities"]
    assert changed == expected_diff(again["version"], partial["version"])
    assert changed["doctors"]["changed"] > 0
    assert changed["doctors"]["added"] == changed["doctors"]["removed"] == 0

    # Another seed is another population (staged only: the drift check rightly blocks publishing it).
    other = sync("--no-publish", env={"REVAL_SEED": "8"}, expect=None)
    assert other["version"] and other["published"] is False, other
    differ = reval("diff", first["version"], other["version"], "--json").data["entities"]
    assert differ == expected_diff(first["version"], other["version"])
    for entity in ENTITIES:
        c = differ[entity]
        # the first population's doctors are kept, disconnected (carried forward from live): changed, not removed
        assert c["added"] > 0 and (c["changed"] if entity in ("doctors", "connections") else c["removed"]) > 0
        assert c["added"] - c["removed"] == other["rows"][entity] - first["rows"][entity]
    table = reval("diff", first["version"], other["version"])
    assert all(entity in table.stdout for entity in ENTITIES)

    for bad in ("99", "16"):
        ran = reval("sync", "--batches", bad, "--json", expect=1)
        assert "0 and 15" in ran.data["error"], ran.data
    for bad in ("x", ","):
        ran = reval("sync", "--batches", bad, "--json", expect=1)
        assert "0 to 15" in ran.data["error"] and repr(bad) in ran.data["error"]
    assert "0 to 15" in ran.last_line

    back = reval("rollback", first["version"], "--reason", "undo", "--json")
    assert back.data["live_version"] == first["version"] and back.data["previous"] == partial["version"]
    now = status()
    assert now["live_version"] == first["version"] and now["rows"] == first["rows"] and now["reason"] == "undo"
    listed = versions()
    assert len(listed) == 4
    assert listed[partial["version"]]["status"] == "retired" and listed[first["version"]]["status"] == "live"
    engine = live_db(reval_env)
    try:
        assert view_counts(engine) == first["rows"]
    finally:
        engine.dispose()


# --- gc and verify ---------------------------------------------------------------------------


def _age_snapshots(root: Path, seconds: float = 3600) -> None:
    """Make every file look older (in the same order), so gc's grace period for a running sync spares none."""
    for path in root.rglob("*"):
        if path.is_file():
            mtime = path.stat().st_mtime - seconds
            os.utime(path, (mtime, mtime))


def _snapshot_files(root: Path) -> set[Path]:
    return set((root / "files").rglob("*.parquet"))


def test_gc_drops_old_versions_keeps_live_and_verify_catches_a_flipped_byte(reval_env):
    made = [sync(env=env)["version"] for env in ({}, {"REVAL_FAULTS": "tis_free_text_gmc"}, {})]
    oldest, middle, live = made
    root = snapshot_root()
    kept = {root / ref.path for ref in manifest(live).all_files()}
    assert kept == {root / ref.path for ref in manifest(oldest).all_files()}  # same data, same files
    only_middle = {root / ref.path for ref in manifest(middle).all_files()} - kept
    assert only_middle
    _age_snapshots(root)
    files_before = _snapshot_files(root)

    dry = reval("gc", "--keep", "1", "--dry-run", "--json").data
    assert dry["dry_run"] is True
    assert sorted(dry["versions_dropped"]) == [oldest, middle]
    assert live in dry["retained"] and dry["files_deleted"] >= len(only_middle)
    assert _snapshot_files(root) == files_before
    assert list(versions()) == made

    done = reval("gc", "--keep", "1", "--json").data
    assert done["dry_run"] is False and sorted(done["versions_dropped"]) == [oldest, middle]
    assert done["files_deleted"] == dry["files_deleted"]
    assert list(versions()) == [live]
    assert status()["live_version"] == live
    remaining = _snapshot_files(root)
    assert kept <= remaining and not only_middle & remaining
    assert len(files_before - remaining) == done["files_deleted"]
    assert audit(reval_env)[-1]["action"] == "gc"
    engine = live_db(reval_env)
    try:
        assert view_counts(engine) == status()["rows"]
    finally:
        engine.dispose()
    gone = reval("verify", oldest, "--json", expect=2)
    assert "reval versions" in gone.data["error"]

    ok = reval("verify", "--json").data
    assert ok["ok"] is True and ok["version"] == live and ok["problems"] == []
    assert ok["files"] == len(ENTITIES) * 16

    victim = root / manifest(live).files["doctors"][2].path
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))

    bad = reval("verify", "--json", expect=5)
    assert bad.data["ok"] is False and len(bad.data["problems"]) == 1
    assert str(victim) in bad.data["problems"][0] and str(victim) in bad.data["error"]
    text = reval("verify", live, expect=5)
    assert str(victim) in text.last_line  # on one line: the path can be copied from the terminal


# --- configuration and input failures --------------------------------------------------------


def test_bad_configuration_exits_1_with_a_message_that_says_what_to_fix(reval_env):
    unreachable = {"REVAL_LIVE_URL": UNREACHABLE_PG}
    for args in (("status",), ("versions",), ("sync", "--batches", "0")):
        ran = reval(*args, "--json", env=unreachable, expect=1)
        assert "live store" in ran.data["error"] and "REVAL_LIVE_URL" in ran.data["error"], ran.data
        assert "live store" in ran.last_line and "REVAL_LIVE_URL" in ran.last_line

    for args in (("status",), ("sync",)):
        ran = reval(*args, "--json", env={"REVAL_ENV": "production"}, expect=1)
        assert "REVAL_ENV" in ran.data["error"] and "dev, staging or prod" in ran.data["error"]
        assert "'production'" in ran.last_line
    assert not (reval_env / "live.db").exists()


def test_file_source_with_missing_exports_exits_1_naming_the_missing_file(reval_env, tmp_path):
    empty = tmp_path / "exports"
    empty.mkdir()
    ran = reval("sync", "--json", env={"REVAL_SOURCE": "files", "REVAL_SOURCE_DIR": str(empty)}, expect=1)
    assert ran.data["published"] is False
    assert "doctors_for_db.json" in ran.data["error"], ran.data["error"]
    assert "doctors_for_db.json" in ran.last_line
    assert status()["live_version"] is None


# --- PostgreSQL ------------------------------------------------------------------------------


def test_sync_and_status_against_postgresql_publish_the_four_views(reval_env, pg_url):
    pg = {"REVAL_LIVE_URL": pg_url}
    published = sync(env=pg)
    assert published["published"] is True
    now = status(env=pg)
    assert now["live_version"] == published["version"] and now["rows"] == published["rows"]
    assert not (reval_env / "live.db").exists()

    engine = sa.create_engine(pg_url)
    try:
        views = set(sa.inspect(engine).get_view_names())
        assert views >= {"doctors", "connections", "recommendations", "discrepancies"}
        assert view_counts(engine) == published["rows"]
        with engine.connect() as conn:
            discrepancies = conn.exec_driver_sql("SELECT COUNT(*) FROM discrepancies").scalar()
            flagged = conn.exec_driver_sql("SELECT COUNT(*) FROM connections WHERE is_discrepancy").scalar()
            catalog = conn.exec_driver_sql("SELECT status FROM reval_versions WHERE version = %(v)s",
                                           {"v": published["version"]}).scalar()
        assert discrepancies == flagged
        assert catalog == "live"
    finally:
        engine.dispose()


def test_pin_keeps_a_version_through_gc_and_unpin_lets_gc_drop_it(reval_env):
    first = sync("--reason", "first")["version"]
    for seed in ("8", "9"):
        sync("--reason", f"seed {seed}", "--allow-drift", "another population", env={"REVAL_SEED": seed})
    assert reval("pin", first, "--reason", "known good", "--json").data == {"version": first, "pinned": True}
    assert first in reval("gc", "--keep", "0", "--json").data["retained"]
    reval("pin", first, "--unpin", "--reason", "not needed", "--json")
    assert first in reval("gc", "--keep", "0", "--json").data["versions_dropped"]
    assert [a["action"] for a in audit(reval_env) if a["version"] == first][-2:] == ["unpin", "gc_drop"]
    assert reval("pin", "v20200101_000000_abcdef", "--reason", "x", expect=2).code == 2

"""Every refusal and failure `reval` can print names its cause AND the next step, on one line of stderr.

test_cli.py covers the contract (exit codes, JSON shapes) and several messages; this file tries the
rest of the messages a person can meet, each asserting the cause and what to do next: the blocked
release, unknown versions for diff/verify, a version that was never live, a damaged file met by a
rollback, an export folder with missing or malformed files, configuration mistakes, an unsupported
or unreachable database, the staging guard and a sync already running.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
UNKNOWN = "v20990101_000000_abcdef"


@dataclass
class Said:
    code: int
    data: dict
    line: str  # the command's own message: the last non-empty line of stderr

    def __str__(self) -> str:
        return f"exit {self.code}: {self.line}"


def environ(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
    env.update({"REVAL_HOME": str(home), "REVAL_DOCTORS": "400", "REVAL_SEED": "7", "REVAL_BATCHES": "4", **extra})
    return env


def reval(env: dict[str, str], *args: str, expect: int) -> Said:
    proc = subprocess.run([str(BIN / "reval"), *args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    said = Said(proc.returncode, json.loads(proc.stdout), lines[-1] if lines else "")
    assert said.code == expect, f"reval {' '.join(args)}: {said}\n{proc.stderr[-3000:]}"
    if expect:
        assert said.data["error"] == said.line, "the JSON error and the printed message differ"
    return said


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with two published versions and a third blocked by the incident's broken mapping."""
    home = tmp_path_factory.mktemp("messages") / "home"
    env = environ(home)
    first = reval(env, "sync", "--reason", "first", expect=0).data["version"]
    second = reval(env, "sync", "--batches", "0", "--reason", "second", expect=0).data["version"]
    blocked = reval({**env, "REVAL_FAULTS": "mapping_break"}, "sync", expect=3)
    return {"home": home, "env": env, "first": first, "second": second, "blocked": blocked}


def copy_of(history: dict, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    shutil.copytree(history["home"], home)
    return environ(home)


def test_blocked_release_names_the_checks_and_says_how_to_look_and_what_to_do(history):
    said = history["blocked"]
    assert said.data["blocked_by"] and all(name in said.line for name in said.data["blocked_by"])
    assert "recommendations" in said.line  # the cause, in the data's own terms
    assert f"Live is unchanged ({history['second']})" in said.line
    assert f"reval diff {history['second']} {said.data['version']}" in said.line
    assert "run `reval sync` again" in said.line


def test_unknown_versions_point_to_reval_versions(history):
    env = history["env"]
    for args in (("diff", UNKNOWN, history["first"]), ("diff", history["first"], UNKNOWN), ("verify", UNKNOWN),
                 ("rollback", UNKNOWN, "--reason", "r")):
        said = reval(env, *args, expect=2)
        assert UNKNOWN in said.line and "`reval versions` lists" in said.line, said


def test_rollback_to_a_version_that_was_never_live_says_which_can_be(history):
    said = reval(history["env"], "rollback", history["blocked"].data["version"], "--reason", "r", expect=1)
    assert "never published (status blocked)" in said.line
    assert "`reval versions` lists them" in said.line


def test_rollback_onto_a_damaged_file_is_stopped_and_names_the_file_and_reval_verify(history, tmp_path):
    env = copy_of(history, tmp_path)
    manifest = json.loads((Path(env["REVAL_HOME"]) / "snapshots" / "versions" / f"{history['first']}.json")
                          .read_text())
    victim = Path(env["REVAL_HOME"]) / "snapshots" / manifest["files"]["doctors"][1]["path"]
    victim.chmod(0o600)
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    said = reval(env, "rollback", history["first"], "--reason", "r", expect=5)
    assert str(victim) in said.line and "sha256" in said.line
    assert "reval verify" in said.line and "roll back to (or re-sync)" in said.line
    assert reval(env, "status", expect=0).data["live_version"] == history["second"]


def test_export_folder_with_a_missing_file_names_it_and_says_fix_and_sync_again(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    env = environ(tmp_path / "home", REVAL_SOURCE="files", REVAL_SOURCE_DIR=str(exports))
    said = reval(env, "sync", expect=1)
    assert "doctors_for_db.json" in said.line and str(exports) in said.line
    assert "Fix the export" in said.line and "`reval sync` again" in said.line and "live is unchanged" in said.line


def test_malformed_export_file_names_the_file_and_the_problem(tmp_path):
    from reval_assets.sources.export import write_export
    from reval_assets.sources.synthetic import SyntheticSource

    exports = tmp_path / "exports"
    write_export(SyntheticSource(doctors=50).extract(), exports)
    (exports / "trainee_info.json").write_text('[{"tcsPersonId": 1,')  # cut off mid-record
    env = environ(tmp_path / "home", REVAL_SOURCE="files", REVAL_SOURCE_DIR=str(exports))
    said = reval(env, "sync", expect=1)
    assert "trainee_info.json" in said.line and "invalid JSON" in said.line
    assert "Fix the export" in said.line


@pytest.mark.parametrize(("variables", "command", "cause"), [
    ({"REVAL_SOURCE": "files"}, "sync", "REVAL_SOURCE=files needs REVAL_SOURCE_DIR"),  # only a sync reads it
    ({"REVAL_SOURCE": "ftp"}, "status", "REVAL_SOURCE must be synthetic or files, not 'ftp'"),
    ({"REVAL_DOCTORS": "lots"}, "status", "REVAL_DOCTORS must be a whole number, not 'lots'"),
    ({"REVAL_BATCHES": "0"}, "status", "REVAL_BATCHES must be at least 1"),
    ({"REVAL_LIVE_URL": "mysql://u@h/db"}, "status", "set REVAL_LIVE_URL to sqlite:///PATH or postgresql+psycopg://"),
])
def test_configuration_mistakes_name_the_variable_and_the_allowed_values(tmp_path, variables, command, cause):
    said = reval(environ(tmp_path / "home", **variables), command, expect=1)
    assert cause in said.line, said


def test_unreachable_database_says_check_the_url_and_that_nothing_changed(tmp_path):
    env = environ(tmp_path / "home", REVAL_LIVE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nope")
    for args in (("status",), ("verify",), ("gc", "--dry-run"), ("sync",)):
        said = reval(env, *args, expect=1)
        assert "cannot reach the live store" in said.line and "Connection refused" in said.line, said
        assert "check REVAL_LIVE_URL and that the database is up" in said.line and "Nothing was changed" in said.line


def test_staging_guard_names_the_environment_and_the_confirmation_to_type(history, tmp_path):
    env = environ(tmp_path / "staging-home", REVAL_ENV="staging")  # a staging store of its own
    for args in (("sync",), ("rollback", history["first"], "--reason", "r"),
                 ("rollback", history["first"], "--reason", "r", "--confirm", "prod")):
        said = reval(env, *args, expect=4)
        assert said.line.startswith("REFUSED: this is STAGING") and "Nothing was changed" in said.line, said
        assert "`--confirm staging`" in said.line and "`confirm: staging`" in said.line
    assert "(got 'prod')" in said.line


def test_a_store_refuses_writers_of_another_environment_naming_both(history, tmp_path):
    env = {**copy_of(history, tmp_path), "REVAL_ENV": "staging"}
    said = reval(env, "rollback", history["first"], "--reason", "r", "--confirm", "staging", expect=4)
    assert said.line.startswith("REFUSED: this live store is DEV") and "REVAL_ENV is staging" in said.line, said
    assert "Set REVAL_ENV=dev" in said.line and "Nothing was changed" in said.line


def test_a_second_sync_while_one_runs_says_who_holds_it_and_to_wait(history, tmp_path):
    env = copy_of(history, tmp_path)
    lock = Path(env["REVAL_HOME"]) / "live.db.lock"  # the SQLite store's writer lock, beside its database
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write("sync by pid 4242 on host since 2026-01-01 02:00:00 UTC")
        held.flush()
        for args in (("sync",), ("rollback", history["first"], "--reason", "r"), ("gc",),
                     ("publish", history["first"], "--reason", "r")):
            said = reval(env, *args, expect=1)
            assert "another sync, publish, rollback or gc is running on this live store (sync by pid 4242" in said.line
            assert "wait for it to finish" in said.line and "Nothing was changed" in said.line


def test_a_drift_only_block_offers_allow_drift_and_that_next_step_works(history, tmp_path):
    env = {**copy_of(history, tmp_path), "REVAL_SEED": "8"}  # a whole new population: every doctor changes
    said = reval(env, "sync", expect=3)
    assert said.data["blocked_by"] == ["drift"], said
    assert '`reval sync --allow-drift "why"`' in said.line
    published = reval(env, "sync", "--allow-drift", "new population, expected", expect=0).data
    assert published["published"] is True

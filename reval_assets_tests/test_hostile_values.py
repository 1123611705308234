"""Nothing lost, nothing exposed: hostile values and surroundings, met by the command as a user meets them.

Private files whatever the umask; read-only snapshots that can still be verified and rolled back to;
reasons and actors that cannot forge a line on the terminal; GMC numbers and batch numbers in other
scripts' digits; a FIFO where an export file should be; an empty version id; a confirmation typed in
capitals; click's usage errors outside the contract's exit codes; and NUL, control characters and
10,000-character values in an export, quarantined before they reach a live store.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from reval_assets.cli import EX_USAGE, Exit, _parse_batches
from reval_assets.domain.conform import MAX_TEXT, conform
from reval_assets.domain.enums import Environment
from reval_assets.domain.schemas import CONNECTION_LOGS, GMC_DOCTORS
from reval_assets.pipeline.guard import GuardRefused, require_confirmation
from reval_assets.quality.evidence import quarantine_reasons
from reval_assets.quality.text import examples as _examples
from reval_assets.settings import Settings
from reval_assets.sources.base import SourceError
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LiveStore
from reval_assets_tests.core_sync import publish

BIN = Path(sys.executable).parent
FORGED = "2099-01-01 00:00:00 UTC by admin: looks published"
REASON = f"nightly\npublished    {FORGED}\x1b[2J\x1b[31m"
ACTOR = "eve\x1b]0;owned\x07"


def environ(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
    env.update({"REVAL_HOME": str(home), "REVAL_DOCTORS": "500", "REVAL_SEED": "7", "REVAL_BATCHES": "4",
                "COLUMNS": "200", **extra})
    return env


def reval(env: dict[str, str], *args: str, expect: int) -> subprocess.CompletedProcess:
    """`reval ARGS` under umask 022, as most shells run it."""
    proc = subprocess.run([str(BIN / "reval"), *args], env=env, capture_output=True, text=True, timeout=300,
                          umask=0o022)
    assert proc.returncode == expect, f"reval {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home made under umask 022 by two syncs; the second's reason and actor carry control characters."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    env = environ(home)
    first = json.loads(reval(env, "sync", "--reason", "first", "--json", expect=0).stdout)["version"]
    second = json.loads(reval({**env, "LOGNAME": ACTOR, "USER": ACTOR}, "sync", "--batches", "0", "--reason", REASON,
                              "--json", expect=0).stdout)["version"]
    return {"home": home, "env": env, "first": first, "second": second}


# --- 1. private files whatever the umask ------------------------------------------------------------


def test_a_sync_under_umask_022_leaves_every_folder_0700_and_every_file_0600(history):
    home = history["home"]
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in [home, *home.rglob("*")]}
    assert {home / "live.db", home / "snapshots", home / "dagster", home / "dagster" / "dagster.yaml"} <= set(modes)
    assert any(p.suffix == ".db" for p in (home / "dagster").rglob("*")), "Dagster's storage is in the home"
    exposed = {str(p.relative_to(home.parent)): oct(m) for p, m in modes.items()
               if m != (0o700 if p.is_dir() else 0o600)}
    assert exposed == {}


def test_the_sqlite_live_store_and_its_wal_and_shm_files_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = LiveStore(f"sqlite:///{tmp_path / 'home' / 'live.db'}")
        with store.engine.connect() as conn:  # open: the -wal and -shm files exist
            conn.exec_driver_sql("SELECT 1").all()
            files = sorted(p.name for p in (tmp_path / "home").iterdir() if p.name.startswith("live.db"))
            modes = {name: oct(stat.S_IMODE((tmp_path / "home" / name).stat().st_mode)) for name in files}
        store.close()
    finally:
        os.umask(old)
    assert {"live.db", "live.db-wal", "live.db-shm"} <= set(modes)
    assert set(modes.values()) == {"0o600"}
    assert oct(stat.S_IMODE((tmp_path / "home").stat().st_mode)) == "0o700"


# --- 3. read-only snapshots are read, never chmod'ed -------------------------------------------------


def test_verify_diff_and_rollback_work_on_read_only_snapshots_and_leave_their_modes(history, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(history["home"], home)
    env = environ(home)
    snapshots = home / "snapshots"
    for path in sorted([snapshots, *snapshots.rglob("*")], key=lambda p: -len(p.parts)):
        path.chmod(0o500 if path.is_dir() else 0o400)  # deepest first: a folder is read-only after its files
    try:
        reval(env, "verify", history["first"], expect=0)
        reval(env, "diff", history["first"], history["second"], expect=0)
        reval(env, "rollback", history["first"], "--reason", "drill", expect=0)
        assert stat.S_IMODE(snapshots.stat().st_mode) == 0o500
    finally:
        for path in [snapshots, *snapshots.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)


# --- 2. user text on the terminal --------------------------------------------------------------------


def test_status_shows_a_reason_and_actor_with_control_characters_escaped_on_one_line(history):
    shown = reval(history["env"], "status", expect=0).stdout
    assert "\x1b" not in shown and "\x07" not in shown
    [published] = [line for line in shown.splitlines() if line.startswith("published")]
    assert FORGED in published and "nightly\\npublished" in published and "\\x1b[2J" in published
    assert "eve\\x1b]0;owned\\x07" in published


def test_versions_shows_the_reason_escaped_and_json_keeps_it_exact(history):
    shown = reval(history["env"], "versions", expect=0).stdout
    assert "\x1b" not in shown
    assert not any(line.lstrip().startswith("published") for line in shown.splitlines())
    data = json.loads(reval(history["env"], "status", "--json", expect=0).stdout)
    assert (data["reason"], data["published_by"]) == (REASON, ACTOR)


# --- 4. digits are ASCII digits ----------------------------------------------------------------------


@pytest.mark.parametrize("number", ["１２３４５６７", "123\u200b4567", "1234567\u200b", "١٢٣٤٥٦٧"])
def test_a_gmc_number_in_other_digits_is_malformed_and_not_a_duplicate_of_other_malformed_ones(number):
    wire = pa.table({"gmcReferenceNumber": pa.array(["7654321", number, "", "12345"], pa.string())})
    result = conform(GMC_DOCTORS, wire, "doctors_for_db.json")
    assert result.table["gmc_reference_number"].to_pylist() == ["7654321"]
    problems = {(row["record"], row["problem"]) for row in result.quarantine.to_pylist()}
    assert problems == {(1, "malformed GMC number (expected 7 digits)"), (2, "missing required field"),
                        (3, "malformed GMC number (expected 7 digits)")}


@pytest.mark.parametrize("text", ["١", "３", "0,١", "", " ", ",", "+1", "-0"])
def test_batches_must_be_ascii_batch_numbers_and_an_empty_list_is_an_error(text):
    with pytest.raises(Exit, match="--batches takes batch numbers"):
        _parse_batches(text, 16)


def test_batches_take_ascii_numbers_with_spaces_and_no_option_means_all():
    assert _parse_batches(" 3, 0 ,3", 16) == [0, 3]
    assert _parse_batches(None, 4) == [0, 1, 2, 3]


def test_sync_with_arabic_indic_batch_digits_is_refused_before_anything_runs(history):
    said = reval(history["env"], "sync", "--batches", "١", expect=1)
    assert "--batches takes batch numbers" in said.stderr


# --- 5. messages that name the real problem ----------------------------------------------------------


def test_a_fifo_where_an_export_file_should_be_is_named_as_not_a_regular_file(tmp_path):
    folder = write_export(SyntheticSource(doctors=20).extract(), tmp_path / "exports")
    (folder / "trainee_info.json").unlink()
    os.mkfifo(folder / "trainee_info.json")
    with pytest.raises(SourceError) as raised:
        FileSource(folder).fingerprint()
    message = str(raised.value)
    assert "trainee_info.json is a FIFO (named pipe), not a regular file" in message
    assert "missing" not in message


def test_verify_of_an_empty_version_id_is_an_unknown_version_not_live(history):
    said = reval(history["env"], "verify", "", "--json", expect=2)
    assert json.loads(said.stdout)["error"].startswith("unknown version ''")


# --- 6. the environment's name compares the same way everywhere -------------------------------------


@pytest.mark.parametrize("typed", ["prod", "PROD", " Prod ", "prod\n"])
def test_confirm_matches_the_environment_case_insensitively_and_stripped_like_reval_env(typed):
    env = Settings.from_env({"REVAL_ENV": typed}).env
    assert env is Environment.PROD
    require_confirmation(env, typed, "publishing")  # what REVAL_ENV accepts, --confirm accepts


@pytest.mark.parametrize("typed", [None, "", "staging", "pro d", "prod2"])
def test_confirm_still_refuses_another_name(typed):
    with pytest.raises(GuardRefused):
        require_confirmation(Environment.PROD, typed, "publishing")


# --- 7. usage errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "cause"), [
    (("sync", "--bogus"), "No such option '--bogus'"),
    (("rollback",), "Missing argument 'VERSION'"),
    (("nosuch",), "No such command 'nosuch'"),
    (("gc", "--keep", "many"), "'many' is not a valid integer"),
    (("verify", "a", "b"), "unexpected extra argument"),
])
def test_a_usage_error_is_one_line_and_exits_ex_usage_not_a_contract_code(tmp_path, args, cause):
    env = environ(tmp_path / "home")
    said = reval(env, *args, expect=EX_USAGE)
    [line] = [line for line in said.stderr.splitlines() if line.strip()]
    assert cause in line and "--help` shows the usage" in line
    as_json = reval(env, *args, "--json", expect=EX_USAGE)
    assert json.loads(as_json.stdout)["error"] == line


# --- 8. control characters and huge values in an export -----------------------------------------------


def _doctors(**changes: list[str]) -> pa.Table:
    columns = {"gmcReferenceNumber": ["1000001", "1000002", "1000003"], "doctorFirstName": ["Ann", "Bob", "Cy"],
               **changes}
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


@pytest.mark.parametrize("name", ["Ann\x00", "Ann\x1b[31m", "Ann\tMarie", "Ann\nMarie", "Ann\x7f", "Ann\x85"])
def test_a_name_with_a_control_character_is_quarantined_as_malformed_naming_the_field(name):
    result = conform(GMC_DOCTORS, _doctors(doctorFirstName=["Ann", name, "Cy"]), "doctors_for_db.json")
    assert result.table["doctor_first_name"].to_pylist() == ["Ann", "Cy"]
    [row] = result.quarantine.to_pylist()
    assert (row["record"], row["field"], row["value"]) == (1, "doctorFirstName", name)
    assert row["problem"].startswith("malformed text: control character")


def test_free_text_may_hold_tab_and_newline_but_no_other_control_character():
    wire = pa.table({k: pa.array(v, pa.string()) for k, v in {
        "gmcId": ["1000001", "1000002", "1000003"], "requestTime": ["2024-01-01T00:00:00"] * 3,
        "requestType": ["ADD"] * 3, "reason": ["moved\tto\r\nLondon", "moved\x00", "moved\x1b[2J"]}.items()})
    result = conform(CONNECTION_LOGS, wire, "connection_logs.json")
    assert result.table["reason"].to_pylist() == ["moved\tto\r\nLondon"]
    assert {(r["record"], r["field"]) for r in result.quarantine.to_pylist()} == {(1, "reason"), (2, "reason")}


def test_a_text_value_over_ten_thousand_characters_is_quarantined_and_ten_thousand_is_not():
    names = ["A" * MAX_TEXT, "é" * (MAX_TEXT + 1), "Cy"]
    result = conform(GMC_DOCTORS, _doctors(doctorFirstName=names), "doctors_for_db.json")
    assert result.table["gmc_reference_number"].to_pylist() == ["1000001", "1000003"]
    [row] = result.quarantine.to_pylist()
    assert (row["record"], row["field"], row["problem"]) == (1, "doctorFirstName", "malformed text: over 10,000 "
                                                                                   "characters")
    # the quarantine keeps the start of the value and its length as evidence, not the whole value again
    assert row["value"] == "é" * 1_000 + "… (10,001 characters)"
    assert json.loads(row["record_json"])["doctorFirstName"] == row["value"]


def test_examples_of_bad_values_in_check_evidence_and_messages_are_cut_to_64_characters():
    result = conform(GMC_DOCTORS, _doctors(doctorFirstName=["Ann", "B" * 20_000, "C\x00" * 5_000]), "f")
    reasons = quarantine_reasons(result.quarantine)
    examples = [example for reason in reasons for example in reason["examples"]]
    assert len(examples) == 2 and all(len(example) <= 64 for example in examples)
    shown = _examples(["B" * 20_000, "C\x00" * 5_000])
    assert len(shown) < 2 * 64 + 20 and "\x00" not in shown


def test_a_doctor_named_with_nul_is_quarantined_and_the_rest_published_on_either_store(runtime, tmp_path):
    folder = write_export(SyntheticSource(doctors=200, seed=7).extract(), tmp_path / "exports")
    doctors = json.loads((folder / "doctors_for_db.json").read_text())
    doctors[0]["doctorFirstName"] = "Ann\u0000e"
    (folder / "doctors_for_db.json").write_text(json.dumps(doctors))
    version = publish(runtime, FileSource(folder))
    with runtime.live.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT doctor_first_name FROM doctors")).scalars().all()
    assert len(names) >= 199 and not any("\x00" in (name or "") for name in names)
    assert "malformed text: control character" in runtime.snapshots.manifest(version).to_json().decode()


def test_a_record_with_two_problems_is_kept_whole_once_as_json_that_reads_back():
    wire = _doctors(doctorFirstName=["Ann", 'B"o\\b\x00', "Cy"], doctorLastName=["Lee", "Ray\x01", "Day"])
    result = conform(GMC_DOCTORS, wire, "doctors_for_db.json")
    rows = result.quarantine.to_pylist()
    assert [(r["record"], r["field"]) for r in rows] == [(1, "doctorFirstName"), (1, "doctorLastName")]
    assert [r["record_json"] is None for r in rows] == [False, True]  # the record once, on its first row
    assert json.loads(rows[0]["record_json"]) == {"gmcReferenceNumber": "1000002", "doctorFirstName": 'B"o\\b\x00',
                                                  "doctorLastName": "Ray\x01"}
    assert result.quarantined_records == 1

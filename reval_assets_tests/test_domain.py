from collections import Counter
from datetime import datetime

import pyarrow as pa
import pytest

from reval_assets.domain.batching import batch_of, batch_of_one, split_by_batch
from reval_assets.domain.conform import _duplicates, conform
from reval_assets.domain.schemas import GMC_DOCTORS, RECOMMENDATION_RECORDS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings, SettingsError

PINNED = [5, 9, 7, 5]


def test_batch_of_a_gmc_number_never_changes():
    # Pinned values: a change here would move doctors between the batches of existing snapshots.
    assert batch_of(pa.array(["1234567", "7654321", "1000000", "9999999"]), 16).tolist() == PINNED
    assert batch_of_one("1234567", 16) == PINNED[0]


def test_batches_spread_doctors_evenly():
    numbers = pa.array([str(n) for n in range(1_000_000, 1_160_000)])
    counts = pa.array(batch_of(numbers, 16)).value_counts().to_pylist()
    sizes = [c["counts"] for c in counts]
    assert len(sizes) == 16
    assert max(sizes) / min(sizes) < 1.1


def test_split_by_batch_keeps_every_row_and_groups_by_gmc_number():
    table = pa.table({"gmc_reference_number": ["1234567", "7654321", "1234567", "1111111"], "x": [1, 2, 3, 4]})
    parts = split_by_batch(table, 4)
    assert sum(p.num_rows for p in parts) == 4
    for b, part in enumerate(parts):
        assert all(batch_of_one(g, 4) == b for g in part["gmc_reference_number"].to_pylist())


def test_batch_count_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        batch_of(pa.array(["1234567"]), 0)


def _wire(**columns: list) -> pa.Table:
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


def test_conform_types_good_records_and_keeps_them_all():
    wire = _wire(gmcReferenceNumber=["1234567", "7654321"], submissionDate=["04/07/2017", None],
                 underNotice=["Yes", "On Hold"],
                 gmcLastUpdatedDateTime=["2023-11-20T10:15:30.25", "2023-11-20 10:15:30"])
    result = conform(GMC_DOCTORS, wire, "doctors_for_db.json")
    assert result.quarantine.num_rows == 0
    assert result.table.num_rows == 2
    assert str(result.table["submission_date"][0]) == "2017-07-04"
    assert result.table["gmc_last_updated"].to_pylist() == [datetime(2023, 11, 20, 10, 15, 30, 250000),
                                                            datetime(2023, 11, 20, 10, 15, 30)]
    assert result.table.schema == GMC_DOCTORS.schema


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("gmcReferenceNumber", "123456", "malformed GMC number"),
        ("gmcReferenceNumber", "12345678", "malformed GMC number"),
        ("submissionDate", "31/02/2023", "malformed date"),
        ("submissionDate", "05-01-2023", "malformed date"),
        ("underNotice", "Maybe", "unknown value"),
        ("gmcLastUpdatedDateTime", "2023-13-01T00:00:00", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-02-29T10:00:00", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-01-01T24:00:00", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-01-01T23:60:00", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-01-01T23:59:60", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-01-01T00:00:00.1234567890", "malformed date-time"),
        ("gmcLastUpdatedDateTime", "2023-01-01T00:00:00Q", "malformed date-time"),
    ],
)
def test_conform_quarantines_a_bad_value_with_its_record_field_and_problem(field, value, problem):
    good = {"gmcReferenceNumber": "7654321", "submissionDate": "01/01/2020", "underNotice": "No",
            "gmcLastUpdatedDateTime": "2023-01-01T00:00:00"}
    bad = {**good, "gmcReferenceNumber": "1234567", field: value}
    wire = _wire(**{k: [good[k], bad[k]] for k in good})
    result = conform(GMC_DOCTORS, wire, "doctors_for_db.json")
    assert result.table["gmc_reference_number"].to_pylist() == ["7654321"]
    [row] = result.quarantine.to_pylist()
    assert (row["origin"], row["record"], row["field"], row["value"]) == ("doctors_for_db.json", 1, field, value)
    assert problem in row["problem"]
    assert value in row["record_json"]


def test_conform_quarantines_every_copy_of_a_duplicate_key():
    wire = _wire(gmcReferenceNumber=["1234567", "1234567", "7654321"])
    result = conform(GMC_DOCTORS, wire, "f")
    assert result.table["gmc_reference_number"].to_pylist() == ["7654321"]
    assert result.quarantined_records == 2
    assert set(result.quarantine["problem"].to_pylist()) == {"duplicate key"}


def test_duplicate_keys_are_every_copy_of_a_repeated_value_across_chunks_and_nulls():
    keys = pa.chunked_array([["r1", "r2", None], ["r1", None, "r3"], ["r4", "r4"]])
    counts = Counter(keys.to_pylist())
    expected = [counts[k] > 1 for k in keys.to_pylist()]
    assert _duplicates(pa.table({"id": keys}), ("id",)).tolist() == expected
    assert _duplicates(pa.table({"id": pa.array([], pa.string())}), ("id",)).tolist() == []


def test_conform_quarantines_missing_required_fields():
    wire = _wire(id=["r1", "r2"], gmcNumber=["1234567", "1234567"], recommendationType=["REVALIDATE", None],
                 recommendationStatus=["STARTED", "STARTED"])
    result = conform(RECOMMENDATION_RECORDS, wire, "recommendations.json")
    assert result.table["recommendation_id"].to_pylist() == ["r1"]
    assert result.quarantine["problem"].to_pylist() == ["missing required field"]


def test_settings_reject_bad_values_with_the_variable_name():
    with pytest.raises(SettingsError, match="REVAL_ENV"):
        Settings.from_env({"REVAL_ENV": "production"})
    with pytest.raises(SettingsError, match="REVAL_BATCHES"):
        Settings.from_env({"REVAL_BATCHES": "0"})
    with pytest.raises(SettingsError, match="REVAL_SOURCE_DIR"):  # when the source is read, not before
        Runtime(Settings.from_env({"REVAL_SOURCE": "files"})).source()


def test_settings_defaults_follow_the_contract(tmp_path):
    settings = Settings.from_env({"REVAL_HOME": str(tmp_path)})
    assert (settings.env.value, settings.source, settings.doctors, settings.seed, settings.batches) == (
        "dev", "synthetic", 20000, 0, 16)
    assert settings.live_url == f"sqlite:///{tmp_path / 'live.db'}"

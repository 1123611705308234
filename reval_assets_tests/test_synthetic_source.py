"""The synthetic source: deterministic, valid wire text, realistic shape, and faults that do what they say."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.domain.conform import Conformed, conform
from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES, OWNER_TO_DESIGNATED_BODY
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.base import Source
from reval_assets.sources.synthetic import _FAULTS, SyntheticSource

DOCTORS = 5_000


@pytest.fixture(scope="module")
def clean() -> dict[str, pa.Table]:
    return {name: wire.table for name, wire in SyntheticSource(DOCTORS, seed=7).extract().items()}


def _faulty(*faults: str, doctors: int = DOCTORS) -> dict[str, pa.Table]:
    return {name: wire.table for name, wire in SyntheticSource(doctors, seed=7, faults=faults).extract().items()}


def _conformed(tables: dict[str, pa.Table], name: str) -> Conformed:
    return conform(RAW_SPECS[name], tables[name], "synthetic")


def _problems(conformed: Conformed) -> list[str]:
    return conformed.quarantine["problem"].to_pylist()


def _column(table: pa.Table, column: str) -> list:
    return table[column].to_pylist()


# --- the Source contract ---------------------------------------------------------------------


def test_is_a_source_with_description_and_fingerprint() -> None:
    source: Source = SyntheticSource(100, seed=3)
    assert source.description == "synthetic: 100 doctors, seed 3, faults: none"
    assert re.fullmatch(r"[0-9a-f]{64}", source.fingerprint())


def test_fingerprint_changes_with_every_parameter_and_ignores_fault_order() -> None:
    base = SyntheticSource(100, seed=0).fingerprint()
    assert SyntheticSource(100, seed=0).fingerprint() == base
    assert SyntheticSource(101, seed=0).fingerprint() != base
    assert SyntheticSource(100, seed=1).fingerprint() != base
    assert SyntheticSource(100, seed=0, faults=["duplicate_keys"]).fingerprint() != base
    assert (
        SyntheticSource(100, faults=["duplicate_keys", "mapping_break"]).fingerprint()
        == SyntheticSource(100, faults=["mapping_break", "duplicate_keys"]).fingerprint()
    )


def test_extract_returns_every_raw_input_with_synthetic_origin() -> None:
    extracted = SyntheticSource(50).extract()
    assert set(extracted) == set(RAW_SPECS)
    assert {wire.origin for wire in extracted.values()} == {"synthetic"}


@pytest.mark.parametrize("name", list(RAW_SPECS))
def test_every_wire_field_is_a_string_column_plus_record_positions(clean: dict[str, pa.Table], name: str) -> None:
    table = clean[name]
    for column in RAW_SPECS[name].columns:
        assert table.schema.field(column.wire).type == pa.string(), column.wire
    assert table.schema.field("_record").type == pa.int64()
    assert _column(table, "_record") == list(range(table.num_rows))


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_tables() -> None:
    first = SyntheticSource(2_000, seed=11, faults=["duplicate_keys", "malformed_dates"]).extract()
    second = SyntheticSource(2_000, seed=11, faults=["duplicate_keys", "malformed_dates"]).extract()
    for name in RAW_SPECS:
        assert first[name].table.equals(second[name].table), name


def test_different_seed_gives_different_tables() -> None:
    first = SyntheticSource(2_000, seed=1).extract()
    second = SyntheticSource(2_000, seed=2).extract()
    for name in RAW_SPECS:
        assert not first[name].table.equals(second[name].table), name


def test_faults_leave_the_untouched_inputs_as_they_were(clean: dict[str, pa.Table]) -> None:
    faulty = _faulty("malformed_dates")
    for name in ("tis_trainees", "recommendation_records", "connection_logs"):
        assert faulty[name].equals(clean[name]), name


# --- valid wire text -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RAW_SPECS))
def test_clean_output_conforms_with_nothing_quarantined(clean: dict[str, pa.Table], name: str) -> None:
    conformed = _conformed(clean, name)
    assert conformed.quarantine.num_rows == 0, conformed.quarantine.slice(0, 5).to_pylist()
    assert conformed.table.num_rows == clean[name].num_rows > 0


def test_dates_use_each_systems_format(clean: dict[str, pa.Table]) -> None:
    gmc_date = re.compile(r"\d{2}/\d{2}/\d{4}")
    iso_date = re.compile(r"\d{4}-\d{2}-\d{2}")
    iso_datetime = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
    assert all(gmc_date.fullmatch(v) for v in _column(clean["gmc_doctors"], "submissionDate"))
    assert all(iso_datetime.fullmatch(v) for v in _column(clean["gmc_doctors"], "gmcLastUpdatedDateTime"))
    assert all(iso_date.fullmatch(v) for v in _column(clean["tis_trainees"], "curriculumEndDate"))
    assert all(iso_date.fullmatch(v) for v in _column(clean["recommendation_records"], "gmcSubmissionDate"))
    assert all(iso_datetime.fullmatch(v) for v in _column(clean["connection_logs"], "requestTime"))


# --- realistic shape -------------------------------------------------------------------------


def test_gmc_numbers_are_unique_seven_digit_numbers(clean: dict[str, pa.Table]) -> None:
    for name in ("gmc_doctors", "tis_trainees"):
        numbers = _column(clean[name], "gmcReferenceNumber")
        assert len(set(numbers)) == len(numbers)
        assert all(re.fullmatch(r"[1-9]\d{6}", n) for n in numbers)


def test_most_doctors_are_in_both_systems_and_a_few_in_one(clean: dict[str, pa.Table]) -> None:
    gmc = set(_column(clean["gmc_doctors"], "gmcReferenceNumber"))
    tis = set(_column(clean["tis_trainees"], "gmcReferenceNumber"))
    everyone = len(gmc | tis)
    assert everyone == DOCTORS
    assert 0.90 < len(gmc & tis) / everyone < 0.96
    assert 0.02 < len(gmc - tis) / everyone < 0.05
    assert 0.02 < len(tis - gmc) / everyone < 0.05


def test_discrepancy_share_among_doctors_in_both_is_between_4_and_10_percent(clean: dict[str, pa.Table]) -> None:
    gmc = clean["gmc_doctors"].select(["gmcReferenceNumber", "designatedBodyCode"])
    tis = clean["tis_trainees"].select(["gmcReferenceNumber", "tcsDesignatedBody"])
    both = gmc.join(tis, "gmcReferenceNumber", join_type="inner")
    with_owner = both.filter(pc.is_valid(both["tcsDesignatedBody"]))
    differ = pc.sum(pc.not_equal(with_owner["designatedBodyCode"], with_owner["tcsDesignatedBody"])).as_py()
    assert 0.04 <= differ / with_owner.num_rows <= 0.10


def test_owner_maps_to_its_designated_body_and_a_few_trainees_have_no_single_owner(clean: dict[str, pa.Table]) -> None:
    tis = clean["tis_trainees"]
    owners, codes = _column(tis, "programmeOwner"), _column(tis, "tcsDesignatedBody")
    assert all(OWNER_TO_DESIGNATED_BODY[o] == c for o, c in zip(owners, codes, strict=True) if o is not None)
    assert all(c is None for o, c in zip(owners, codes, strict=True) if o is None)
    assert 0.01 < owners.count(None) / len(owners) < 0.04
    several = [p for o, p in zip(owners, _column(tis, "programmeName"), strict=True) if o is None]
    assert all(" | " in p for p in several)


def test_designated_bodies_are_all_used_with_uneven_sizes(clean: dict[str, pa.Table]) -> None:
    gmc = clean["gmc_doctors"]
    connected = gmc.filter(pc.is_valid(gmc["designatedBodyCode"]))  # the disconnected have no body
    counts = connected.group_by("designatedBodyCode").aggregate([([], "count_all")])
    sizes = dict(zip(_column(counts, "designatedBodyCode"), _column(counts, "count_all"), strict=True))
    assert set(sizes) == set(DESIGNATED_BODY_CODES)
    assert max(sizes.values()) > 2 * min(sizes.values())


def test_under_notice_is_mostly_no(clean: dict[str, pa.Table]) -> None:
    values = _column(clean["gmc_doctors"], "underNotice")
    assert 0.84 < values.count("No") / len(values) < 0.92
    assert 0.06 < values.count("Yes") / len(values) < 0.12
    assert 0.01 < values.count("On Hold") / len(values) < 0.05


def test_every_recommendation_belongs_to_a_generated_doctor(clean: dict[str, pa.Table]) -> None:
    doctors = set(_column(clean["gmc_doctors"], "gmcReferenceNumber"))
    assert set(_column(clean["recommendation_records"], "gmcNumber")) <= doctors
    ids = _column(clean["recommendation_records"], "id")
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    created = [int(i[:8], 16) for i in ids]  # like a Mongo ObjectId: seconds since 1970 first
    assert min(created) > 946_684_800 and max(created) < 1_893_456_000  # 2000 .. 2030


def test_recommendation_rules_hold(clean: dict[str, pa.Table]) -> None:
    rows = clean["recommendation_records"].to_pylist()
    assert {r["recommendationStatus"] for r in rows} == {
        "NOT_STARTED", "STARTED", "READY_TO_REVIEW", "READY_TO_SUBMIT", "SUBMITTED_TO_GMC", "COMPLETED", "DRAFT"
    }  # fmt: skip
    for r in rows:
        if r["recommendationStatus"] == "SUBMITTED_TO_GMC":
            assert r["outcome"] == "Under Review"
        elif r["recommendationStatus"] == "COMPLETED":
            assert r["outcome"] in ("Approved", "Rejected")
        else:
            assert r["outcome"] is None
        assert (r["deferralReason"] is not None) == (r["recommendationType"] == "DEFER")
        assert (r["deferralDate"] is not None) == (r["recommendationType"] == "DEFER")
        if r["deferralSubReason"] is not None:
            assert r["deferralReason"] == "1"
        assert r["gmcSubmissionDate"] >= "2012-12-03"  # revalidation began in December 2012


def test_under_notice_doctors_almost_always_have_an_open_recommendation(clean: dict[str, pa.Table]) -> None:
    notice = {
        r["gmcReferenceNumber"] for r in clean["gmc_doctors"].to_pylist() if r["underNotice"] in ("Yes", "On Hold")
    }
    latest = {r["gmcNumber"]: r["recommendationStatus"] for r in clean["recommendation_records"].to_pylist()}
    open_ = sum(1 for n in notice if latest.get(n, "COMPLETED") != "COMPLETED")
    assert open_ / len(notice) > 0.9


def test_connection_history_ends_at_the_current_gmc_body(clean: dict[str, pa.Table]) -> None:
    gmc = clean["gmc_doctors"]
    current = dict(zip(_column(gmc, "gmcReferenceNumber"), _column(gmc, "designatedBodyCode"), strict=True))
    last: dict[str, dict] = {}
    for log in sorted(clean["connection_logs"].to_pylist(), key=lambda r: r["requestTime"]):
        last[log["gmcId"]] = log
    assert set(current) <= set(last)
    for number, log in last.items():
        # A GMC-sync change has no requestType: then the bodies say whether it connected or removed.
        if current.get(number) is not None:
            assert log["requestType"] in ("ADD", None) and log["newDesignatedBodyCode"] == current[number]
        else:  # in TIS only, or disconnected (the GMC no longer returns them)
            assert log["requestType"] in ("REMOVE", None) and log["newDesignatedBodyCode"] is None


# --- faults ----------------------------------------------------------------------------------


def test_unknown_fault_raises_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mapping_break") as raised:
        SyntheticSource(100, faults=["no_such_fault"])
    assert "no_such_fault" in str(raised.value)


def test_faults_are_listed_publicly_and_named_in_the_description() -> None:
    assert set(SyntheticSource.FAULTS) == {
        "mapping_break", "unmapped_fields", "missing_connections", "duplicate_keys",
        "malformed_dates", "unknown_enums", "orphan_connection", "legacy_null_ids", "tis_free_text_gmc",
    }  # fmt: skip
    assert set(SyntheticSource.FAULTS) == set(_FAULTS)  # every listed fault is implemented
    source = SyntheticSource(100, seed=0, faults=["unknown_enums", "duplicate_keys"])
    assert source.description == "synthetic: 100 doctors, seed 0, faults: duplicate_keys, unknown_enums"


def test_mapping_break_yields_no_recommendation_records() -> None:
    tables = _faulty("mapping_break")
    assert tables["recommendation_records"].num_rows == 0
    wire_names = {c.wire for c in RAW_SPECS["recommendation_records"].columns}
    assert wire_names <= set(tables["recommendation_records"].column_names)
    assert tables["gmc_doctors"].num_rows > 0


def test_unmapped_fields_blank_the_mapped_trainee_fields_for_most_trainees(clean: dict[str, pa.Table]) -> None:
    tis = _faulty("unmapped_fields")["tis_trainees"]
    mapped = ("doctorFirstName", "doctorLastName", "programmeName", "programmeMembershipType", "curriculumEndDate")
    for column in mapped:
        assert 0.75 < tis[column].null_count / tis.num_rows < 0.85, column
    assert tis["gmcReferenceNumber"].null_count == 0
    assert tis["programmeOwner"].equals(clean["tis_trainees"]["programmeOwner"])


def test_missing_connections_drop_40_percent_of_one_bodys_doctors(clean: dict[str, pa.Table]) -> None:
    body = DESIGNATED_BODY_CODES[0]

    def count(table: pa.Table, code: str) -> int:
        return _column(table, "designatedBodyCode").count(code)

    faulty = _faulty("missing_connections")["gmc_doctors"]
    assert count(faulty, body) == pytest.approx(0.6 * count(clean["gmc_doctors"], body), abs=1)
    for other in DESIGNATED_BODY_CODES[1:]:
        assert count(faulty, other) == count(clean["gmc_doctors"], other)


def test_duplicate_keys_are_quarantined_as_duplicate_keys() -> None:
    tables = _faulty("duplicate_keys")
    conformed = _conformed(tables, "gmc_doctors")
    problems = _problems(conformed)
    assert problems and set(problems) == {"duplicate key"}
    assert len(problems) == 10  # five records, each there twice
    assert conformed.table.num_rows == tables["gmc_doctors"].num_rows - 10


def test_malformed_dates_are_quarantined_as_malformed_dates() -> None:
    conformed = _conformed(_faulty("malformed_dates"), "gmc_doctors")
    quarantine = conformed.quarantine
    assert quarantine.num_rows > 0
    assert all(p.startswith("malformed date") for p in _problems(conformed))
    values = _column(quarantine, "value")
    assert any(re.fullmatch(r"31/02/\d{4}", v) for v in values)
    assert any(re.fullmatch(r"\d{2}-\d{2}-\d{4}", v) for v in values)
    assert set(_column(quarantine, "field")) == {"submissionDate"}


def test_unknown_enums_are_quarantined_as_unknown_values() -> None:
    tables = _faulty("unknown_enums")
    recommendations = _conformed(tables, "recommendation_records")
    doctors = _conformed(tables, "gmc_doctors")
    for conformed, value in ((recommendations, "Pending GMC"), (doctors, "Maybe")):
        assert conformed.quarantine.num_rows > 0
        assert all(p.startswith("unknown value") for p in _problems(conformed))
        assert set(_column(conformed.quarantine, "value")) == {value}


def test_orphan_connection_references_a_valid_number_nobody_has(clean: dict[str, pa.Table]) -> None:
    tables = _faulty("orphan_connection")
    known = set(_column(tables["gmc_doctors"], "gmcReferenceNumber")) | set(
        _column(tables["tis_trainees"], "gmcReferenceNumber")
    )
    orphan_logs = set(_column(tables["connection_logs"], "gmcId")) - known
    orphan_recommendations = set(_column(tables["recommendation_records"], "gmcNumber")) - known
    assert len(orphan_logs) == 1 and orphan_logs == orphan_recommendations
    assert re.fullmatch(r"\d{7}", orphan_logs.pop())
    for name in ("connection_logs", "recommendation_records"):
        assert tables[name].num_rows == clean[name].num_rows + 1
        assert _conformed(tables, name).quarantine.num_rows == 0


def test_all_faults_together_still_extract() -> None:
    tables = _faulty(*SyntheticSource.FAULTS, doctors=500)
    assert tables["recommendation_records"].num_rows == 0
    for name, table in tables.items():
        assert np.array_equal(table["_record"].to_numpy(), np.arange(table.num_rows)), name

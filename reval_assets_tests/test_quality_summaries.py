"""Quarantine reasons as codes, and the typed landing summaries a manifest keeps (old manifests still read)."""

from __future__ import annotations

import json

import pyarrow as pa

from reval_assets.domain.conform import conform
from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import GMC_DOCTORS, RECOMMENDATION_RECORDS
from reval_assets.domain.summaries import InputSummary, LandingSummary, ReasonCount, Unmatched
from reval_assets.quality import evidence
from reval_assets.quality.checks import Export, check_schema, check_unique_keys
from reval_assets.store.snapshots import FileRef, Manifest
from reval_assets_tests.quality_tables import DEFAULT, data


def _wire(**columns: list[str | None]) -> pa.Table:
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


def test_every_quarantine_row_has_a_reason_code_and_an_unknown_value_its_allowed_values() -> None:
    wire = _wire(gmcReferenceNumber=["1000001", "123", "1000003", "1000003", "1000005", "1000006", "1000007"],
                 underNotice=["No", "No", "No", "No", "Maybe", "No", "No"],
                 submissionDate=["01/01/2020", None, None, None, None, "31/02/2023", None],
                 doctorFirstName=["Ann", None, None, None, None, None, "B\x00b"])
    rows = conform(GMC_DOCTORS, wire, "f").quarantine.to_pylist()
    codes = {(row["record"], row["field"]): row["code"] for row in rows}
    assert codes == {(1, "gmcReferenceNumber"): "malformed", (2, "gmcReferenceNumber"): "duplicate_key",
                     (3, "gmcReferenceNumber"): "duplicate_key", (4, "underNotice"): "unknown_value",
                     (5, "submissionDate"): "malformed", (6, "doctorFirstName"): "control_character"}
    allowed = {row["code"]: row["allowed"] for row in rows}
    assert allowed["unknown_value"] == ["Yes", "No", "On Hold"] and allowed["malformed"] is None
    missing = conform(RECOMMENDATION_RECORDS, _wire(id=["r1"], gmcNumber=["1000001"], recommendationType=[None],
                                                    recommendationStatus=["STARTED"]), "f").quarantine
    assert missing["code"].to_pylist() == [QuarantineReason.MISSING]


def test_evidence_counts_reasons_by_code_and_they_read_back_typed() -> None:
    wire = _wire(gmcReferenceNumber=["1000001", "1000002", "1000003"], underNotice=["Maybe", "Perhaps", "No"])
    reasons = evidence.quarantine_reasons(conform(GMC_DOCTORS, wire, "f").quarantine)
    [reason] = [ReasonCount.from_dict(r) for r in reasons]
    assert (reason.field, reason.code, reason.records) == ("underNotice", QuarantineReason.UNKNOWN_VALUE, 2)
    assert reason.allowed == ("Yes", "No", "On Hold") and reason.problem.startswith("unknown value")
    assert [reason.to_dict()] == reasons


OLD_LANDINGS = {  # as a manifest keeps them: keys a summary has since gained (read_as, numbers) are absent
    "abc": {"source": "files: /x", "landed_at": "2023-12-11T10:00:00+00:00", "batches": [0, 1],
            "exported_at": "2023-12-11T09:00:00+00:00", "inputs": {
                "recommendation_records": {
                    "records": 100, "kept": 98, "quarantined": 2, "origin": "/x/recommendations.json",
                    "problems": [], "export_records": 100, "unmatched": {"records": 0, "examples": []},
                    "reasons": [{"field": "outcome", "code": "unknown_value", "allowed": ["Approved", "Rejected"],
                                 "problem": "unknown value; expected one of Approved, Rejected",
                                 "records": 1, "examples": ["Pending GMC"]},
                                {"field": "id", "code": "duplicate_key", "allowed": [], "problem": "duplicate key",
                                 "records": 1, "examples": ["r1"]}]},
                "gmc_doctors": {"records": 10, "kept": 10, "quarantined": 0}}},
    "gone": {"source": "unknown", "inputs": {}, "missing": True, "batches": [2], "exported_at": None},
}


def _manifest(landings: dict) -> Manifest:
    ref = FileRef(path="files/x.parquet", sha256="0" * 64, rows=1, bytes=1)
    return Manifest(version="v20231211_100000_abcdef", parent=None, created_at="2023-12-11T10:00:00+00:00",
                    actor="t", reason="r", env="dev", source="s", batches=1, files={"doctors": [ref]},
                    landings=landings)


def test_an_old_manifests_landings_read_typed_and_write_the_same_keys() -> None:
    body = json.loads(_manifest({}).to_json()) | {"landings": OLD_LANDINGS}
    manifest = Manifest.from_json(json.dumps(body).encode())
    summary = manifest.landings["abc"]
    assert isinstance(summary, LandingSummary) and summary.batches == (0, 1)
    recs = summary.inputs["recommendation_records"]
    assert recs.unmatched == Unmatched(0, ()) and recs.export_records == 100
    assert [r.code for r in recs.reasons] == [QuarantineReason.UNKNOWN_VALUE, QuarantineReason.DUPLICATE_KEY]
    assert summary.inputs["gmc_doctors"] == InputSummary(records=10, kept=10)
    assert manifest.landings["gone"].missing
    written = json.loads(manifest.to_json())["landings"]
    assert set(written["abc"]) == set(OLD_LANDINGS["abc"]) and set(written["gone"]) == set(OLD_LANDINGS["gone"])
    assert set(written["abc"]["inputs"]["recommendation_records"]) == set(
        OLD_LANDINGS["abc"]["inputs"]["recommendation_records"])
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_the_checks_find_an_old_manifests_quarantine_reasons_by_code() -> None:
    landings = Manifest.from_json(json.dumps(json.loads(_manifest({}).to_json()) | {"landings": OLD_LANDINGS})
                                  .encode()).landings
    [export, _] = Export.from_manifest(landings)
    schema = check_schema(data(export=export), DEFAULT)
    assert schema.metadata["unknown_enum_records_in_source"] == 1
    assert "the schema allows one of Approved, Rejected" in schema.description
    assert check_unique_keys(data(export=export), DEFAULT).metadata["duplicate_key_records_in_source"] == 1

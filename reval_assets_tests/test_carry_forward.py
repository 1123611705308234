"""A doctor the GMC stops returning, or whose GMC record is unreadable this time, keeps their history from live,
as the original keeps them in its own store (`transforms.build.carry_forward`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.domain.conform import conform
from reval_assets.domain.enums import ConnectionStatus
from reval_assets.domain.schemas import GMC_DOCTORS
from reval_assets.domain.summaries import Unmatched
from reval_assets.pipeline import operations
from reval_assets.quality.checks import Thresholds, check_referential_integrity
from reval_assets.quality.model import InputReport
from reval_assets.sources.base import WireInput
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.transforms.build import carry_forward
from reval_assets_tests.core_sync import publish, stage
from reval_assets_tests.quality_tables import clean_export, data


def _live_doctor(number: str, *, body: str | None, exists: bool, added: date | None) -> dict:
    return {"gmc_reference_number": number, "doctor_first_name": "Ada", "doctor_last_name": "Byron",
            "submission_date": added, "date_added": added, "under_notice": "No" if added else None,
            "sanction": None, "designated_body_code": body, "exists_in_gmc": exists, "last_updated": None,
            "tis_status": "NOT_STARTED"}


def _gmc(*numbers: str) -> pa.Table:
    rows = [{"gmc_reference_number": n, "designated_body_code": "1-AIIDR8", "exists_in_gmc": None} for n in numbers]
    return pa.Table.from_pylist(rows, schema=GMC_DOCTORS.schema)


def test_a_doctor_the_gmc_no_longer_returns_is_kept_disconnected_with_their_history() -> None:
    live = pa.Table.from_pylist([
        _live_doctor("1000001", body="1-AIIDR8", exists=True, added=date(2020, 1, 2)),  # still returned
        _live_doctor("1000002", body="1-AIIDR8", exists=True, added=date(2019, 5, 6)),  # gone from the GMC
        _live_doctor("1000003", body=None, exists=False, added=None),  # only ever known to TIS
    ])
    carried = carry_forward(_gmc("1000001"), live)
    assert (carried.disconnected, carried.unreadable) == (1, 0)
    rows = {r["gmc_reference_number"]: r for r in carried.gmc.to_pylist()}
    assert set(rows) == {"1000001", "1000002"}
    assert rows["1000002"]["exists_in_gmc"] is False and rows["1000002"]["designated_body_code"] is None
    assert rows["1000002"]["date_added"] == date(2019, 5, 6) and rows["1000002"]["doctor_last_name"] == "Byron"
    assert rows["1000002"]["doctor_status"] == "NOT_STARTED"  # kept, not worked out again from recommendations


def test_a_doctor_whose_gmc_record_was_quarantined_keeps_their_last_good_row_as_it_was() -> None:
    live = pa.Table.from_pylist([_live_doctor("1000002", body="1-AIIDR8", exists=True, added=date(2019, 5, 6))])
    carried = carry_forward(_gmc(), live, quarantined=pa.array(["1000002"]))
    assert (carried.disconnected, carried.unreadable) == (0, 1)
    row = carried.gmc.to_pylist()[0]
    assert row["exists_in_gmc"] is True and row["designated_body_code"] == "1-AIIDR8"


def test_nothing_is_carried_before_the_first_publish() -> None:
    gmc = _gmc("1000001")
    assert carry_forward(gmc, None).gmc is gmc


def test_source_records_for_a_doctor_kept_from_live_are_not_unmatched() -> None:
    known, stranger = data().tables["doctors"]["gmc_reference_number"][0].as_py(), "9999999"
    recs = InputReport("recommendation_records", "recommendations.json", records=10, kept=10, unmatched=3,
                       unmatched_of=Unmatched(records=3, examples=(known, stranger), numbers={known: 2, stranger: 1}))
    only_known = dataclasses.replace(recs, unmatched=2, unmatched_of=Unmatched(2, (known,), {known: 2}))
    assert check_referential_integrity(data(export=clean_export(recommendation_records=only_known)),
                                       Thresholds()).passed
    result = check_referential_integrity(data(export=clean_export(recommendation_records=recs)), Thresholds())
    assert not result.passed and result.metadata["unmatched_recommendations_in_source"] == 1
    assert stranger in result.description and known not in result.description


def _without(inputs: dict[str, WireInput], name: str, column: str, number: str) -> None:
    table = inputs[name].table
    inputs[name] = dataclasses.replace(inputs[name], table=table.filter(pc.not_equal(table[column], number)))


def _with_bad_date(inputs: dict[str, WireInput], number: str) -> None:
    table = inputs["gmc_doctors"].table
    dates = pc.if_else(pc.equal(table["gmcReferenceNumber"], number), "31/02/2020", table["submissionDate"])
    inputs["gmc_doctors"] = dataclasses.replace(
        inputs["gmc_doctors"], table=table.set_column(table.schema.get_field_index("submissionDate"),
                                                      "submissionDate", dates))


@pytest.mark.parametrize("shape", ["dto", "soap"])
def test_a_doctor_who_left_both_systems_keeps_their_history_and_recommendations(runtime, tmp_path: Path,
                                                                                shape: str) -> None:
    population = SyntheticSource(doctors=600, seed=7).extract()
    # The first export has the GMC's history (a DTO export of the store); later ones are `shape`, a SOAP pull say
    first = publish(runtime, FileSource(write_export(population, tmp_path / "day1")))
    before = {r["gmc_reference_number"]: r for r in runtime.live.read_view("doctors").to_pylist()}
    recommended = set(runtime.live.read_view("recommendations")["gmc_reference_number"].to_pylist())
    gone, unreadable = sorted(n for n, r in before.items() if r["exists_in_gmc"] and r["tis_person_id"]
                              and n in recommended)[:2]
    later = dict(population)
    _without(later, "gmc_doctors", "gmcReferenceNumber", gone)
    _without(later, "tis_trainees", "gmcReferenceNumber", gone)  # left training too: only their history is left
    _with_bad_date(later, unreadable)
    second = stage(runtime, FileSource(write_export(later, tmp_path / "day2", shapes={"gmc_doctors": shape})))
    checks = {c["name"]: c["passed"] for c in json.loads(runtime.live.version(second)["checks"])}
    assert all(checks.values()), checks
    operations.publish(runtime, second, actor="tester", reason="a doctor left")
    after = {r["gmc_reference_number"]: r for r in runtime.live.read_view("doctors").to_pylist()}
    assert set(after) == set(before)
    assert not after[gone]["exists_in_gmc"] and after[gone]["designated_body_code"] is None  # 0 on SQLite
    assert (after[gone]["date_added"], after[gone]["tis_status"]) == (before[gone]["date_added"],
                                                                      before[gone]["tis_status"])
    assert after[unreadable] == before[unreadable]
    connections = runtime.live.read_view("connections").to_pylist()
    status = {r["gmc_reference_number"]: r["connection_status"] for r in connections}
    assert status[gone] == ConnectionStatus.DISCONNECTED.value
    assert gone in set(runtime.live.read_view("recommendations")["gmc_reference_number"].to_pylist())
    assert operations.diff(runtime, first, second)["doctors"]["removed"] == 0
    publish(runtime, FileSource(write_export(later, tmp_path / "day3", shapes={"gmc_doctors": shape})))
    again = {r["gmc_reference_number"]: r for r in runtime.live.read_view("doctors").to_pylist()}
    assert (again[gone], again[unreadable]) == (after[gone], after[unreadable])  # kept as they are, night after night


def test_the_quarantine_names_the_doctor_of_a_bad_record_where_its_gmc_number_reads() -> None:
    wire = pa.table({"gmcReferenceNumber": ["1000001", "12AB"], "submissionDate": ["31/02/2020", "01/01/2020"],
                     "designatedBodyCode": ["1-AIIDR8", "1-AIIDR8"]})
    rows = conform(GMC_DOCTORS, wire, "doctors_for_db.json").quarantine.to_pylist()
    assert {(r["record"], r["gmc_reference_number"]) for r in rows} == {(0, "1000001"), (1, None)}

"""A GMC record read from a saved GetDoctorsForDB response, or pulled live, is quarantined naming the response's
file (`gmc/<DBC>.xml`), not the `gmc/` folder: the file an operator opens to see the record."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from reval_assets.domain.schemas import QUARANTINE_SCHEMA
from reval_assets.pipeline.steps import land
from reval_assets.sources.base import WireInput
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource, PerFileInput, origins_of_records
from reval_assets.sources.gmc_server import GmcServer, population
from reval_assets.sources.gmc_service import GmcClient, GmcSoapSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import SnapshotStore

BODIES = ("1-1RUZV1D", "1-1RUZV6H", "1-1RSSQ5L")
DOCTORS, SEED, BATCHES = 300, 5, 4
BAD_DATE = "31/02/2020"


def _gmc_quarantine(store: SnapshotStore, source: object) -> list[dict]:
    landing = land(source, store, BATCHES)
    rows = store.read_table(landing.quarantine).to_pylist()
    return [r for r in rows if r["input"] == "gmc_doctors"]


def _spoil_one_doctor_per_body(doctors: dict[str, list[dict]]) -> dict[str, str]:
    """Give the last doctor of each body but the first a malformed submission date; GMC number -> body."""
    spoiled = {}
    for body in BODIES[1:]:
        doctor = doctors[body][-1]
        doctor["submissionDate"] = BAD_DATE
        spoiled[doctor["gmcReferenceNumber"]] = body
    return spoiled


def test_a_record_of_a_saved_response_is_quarantined_naming_its_file(tmp_path: Path) -> None:
    inputs = SyntheticSource(DOCTORS, SEED, designated_bodies=BODIES).extract()
    table = inputs["gmc_doctors"].table
    numbers, bodies = table["gmcReferenceNumber"].to_pylist(), table["designatedBodyCode"].to_pylist()
    spoiled = {numbers[i]: bodies[i] for i in (len(numbers) - 1, 0) if bodies[i]}
    dates = [BAD_DATE if n in spoiled else d for n, d in zip(numbers, table["submissionDate"].to_pylist(),
                                                               strict=True)]
    inputs["gmc_doctors"] = WireInput(table.set_column(table.schema.get_field_index("submissionDate"),
                                                       "submissionDate", pa.array(dates, pa.string())), "x")
    export = write_export(inputs, tmp_path / "export", shapes={"gmc_doctors": "soap"})
    rows = _gmc_quarantine(SnapshotStore(tmp_path / "home"), FileSource(export, designated_bodies=BODIES))
    assert {r["gmc_reference_number"]: r["origin"] for r in rows} == {
        number: str(export.absolute() / "gmc" / f"{body}.xml") for number, body in spoiled.items()}
    assert len(set(spoiled.values())) == 2  # two files, so each record names its own


def test_a_record_pulled_live_is_quarantined_naming_its_bodys_saved_answer(tmp_path: Path) -> None:
    doctors = population(DOCTORS, SEED, BODIES)
    spoiled = _spoil_one_doctor_per_body(doctors)
    evidence = tmp_path / "gmc" / "20261202T010203.000004Z"
    with GmcServer(0, doctors).start() as server:
        source = GmcSoapSource(SyntheticSource(DOCTORS, SEED, designated_bodies=BODIES),
                               GmcClient(server.url, "u", "p", timeout=5), designated_bodies=BODIES,
                               evidence_dir=evidence)
        rows = _gmc_quarantine(SnapshotStore(tmp_path / "home"), source)
    assert {r["gmc_reference_number"]: r["origin"] for r in rows} == {
        number: str(evidence / f"{body}.xml") for number, body in spoiled.items()}
    assert all(Path(r["origin"]).is_file() for r in rows)


def _quarantine(records: list[int]) -> pa.Table:
    rows = [{"input": "gmc_doctors", "origin": "folder", "record": r} for r in records]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def test_each_quarantined_record_takes_the_file_its_position_falls_in() -> None:
    wire = PerFileInput(pa.table({"a": ["1"] * 3}), "folder", files=(("gmc/A.xml", 2), ("gmc/E.xml", 0),
                                                                     ("gmc/B.xml", 1)))
    relabelled = origins_of_records(wire, _quarantine([2, 0, 1]))
    assert relabelled["origin"].to_pylist() == ["gmc/B.xml", "gmc/A.xml", "gmc/A.xml"]
    assert relabelled["record"].to_pylist() == [2, 0, 1]


def test_an_input_from_one_file_keeps_its_quarantine_as_it_is() -> None:
    quarantine = _quarantine([0, 1])
    assert origins_of_records(WireInput(pa.table({"a": ["1", "2"]}), "folder"), quarantine) is quarantine
    assert origins_of_records(PerFileInput(pa.table({"a": ["1"]}), "folder", files=(("A.xml", 1),)),
                              _quarantine([])).num_rows == 0


def test_a_quarantined_record_past_every_file_is_refused() -> None:
    wire = PerFileInput(pa.table({"a": ["1"] * 2}), "folder", files=(("gmc/A.xml", 2),))
    with pytest.raises(ValueError, match="past the 2 records of folder"):
        origins_of_records(wire, _quarantine([2]))

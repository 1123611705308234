"""One population, written in our spelling and in the original services' shapes, gives identical live tables;
the realistic oddities publish; and every incident fault still blocks when the export is real-shaped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline import operations
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.shapes import REAL_SHAPES
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets_tests.core_sync import publish, stage

NO_CHANGE = {"added": 0, "removed": 0, "changed": 0}
VARIANTS = {
    "real": {"shapes": REAL_SHAPES},
    "documents": {"shapes": {"gmc_doctors": "documents", "tis_trainees": "dto", "recommendation_records": "documents",
                             "connection_logs": "latest", "hidden_discrepancy_records": "documents"}, "bom": True},
    "records": {"shapes": {"gmc_doctors": "dto", "recommendation_records": "records"}, "json_lines": True},
}
INCIDENT_FAULTS = [f for f in SyntheticSource.FAULTS if f not in SyntheticSource.REALISTIC_FAULTS]


def _checks(runtime, version: str) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in json.loads(runtime.live.version(version)["checks"])}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_population_in_real_shapes_gives_the_live_tables_of_its_canonical_twin(runtime, tmp_path: Path,
                                                                                   variant: str) -> None:
    population = SyntheticSource(doctors=1200, seed=4).extract()
    canonical = publish(runtime, FileSource(write_export(population, tmp_path / "canonical")))
    shaped = stage(runtime, FileSource(write_export(population, tmp_path / variant, **VARIANTS[variant])))
    assert all(_checks(runtime, shaped).values()), _checks(runtime, shaped)
    assert operations.diff(runtime, canonical, shaped) == dict.fromkeys(ENTITIES, NO_CHANGE)
    operations.publish(runtime, shaped, actor="tester", reason="the same data, read from the real shapes")
    assert runtime.live.live_version() == shaped


def test_legacy_null_ids_and_free_text_gmc_numbers_publish(runtime, tmp_path: Path) -> None:
    source = SyntheticSource(doctors=1200, seed=4, faults=list(SyntheticSource.REALISTIC_FAULTS))
    version = publish(runtime, FileSource(write_export(source.extract(), tmp_path / "real", shapes=REAL_SHAPES)))
    assert runtime.live.live_version() == version and all(_checks(runtime, version).values())


@pytest.mark.parametrize("fault", INCIDENT_FAULTS)
def test_every_fault_is_judged_the_same_in_real_shapes_and_the_incidents_block(runtime, tmp_path: Path,
                                                                               fault: str) -> None:
    live = publish(runtime, SyntheticSource(doctors=1200, seed=4))
    faulty = SyntheticSource(doctors=1200, seed=4, faults=[fault]).extract()
    ours = stage(runtime, FileSource(write_export(faulty, tmp_path / "canonical")))
    real = stage(runtime, FileSource(write_export(faulty, tmp_path / "real", shapes=REAL_SHAPES)))
    assert _checks(runtime, real) == _checks(runtime, ours)
    if fault != "malformed_dates":  # a handful of bad dates in 1,200 doctors is within the quarantine budget
        assert runtime.live.version(real)["status"] == "blocked", _checks(runtime, real)
    assert runtime.live.live_version() == live

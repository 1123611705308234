"""mapping_coverage: the traineeInfo → recommendationInfo mapping, and doctors under notice."""

from __future__ import annotations

import pyarrow.compute as pc

from reval_assets.quality.checks import (
    InputReport,
    check_mapping_coverage,
)
from reval_assets_tests.quality_tables import (
    DEFAULT,
    clean_export,
    clean_tables,
    data,
    doctor_rows,
    tables_from,
)


def test_mapping_coverage_passes_clean_tables_with_its_numbers() -> None:
    result = check_mapping_coverage(data(live=clean_tables()), DEFAULT)
    assert result.passed
    assert result.metadata["mapping_coverage"] == 1.0 and result.metadata["under_notice_coverage"] == 1.0
    assert result.metadata["under_notice_doctors"] == 10 and result.metadata["coverage_programme_name"] == 1.0


def test_mapping_coverage_fails_when_mapped_fields_are_missing() -> None:
    doctors = doctor_rows()
    for d in doctors[:30]:
        d["programme_name"] = d["membership_type"] = None
    result = check_mapping_coverage(data(tables_from(doctors)), DEFAULT)
    assert not result.passed and result.metadata["mapping_coverage"] == 0.25
    assert "only 25.0 % of 40 recommendations have every mapped trainee field" in result.description


def test_mapping_coverage_fails_on_a_drop_against_live_above_the_minimum() -> None:
    doctors = doctor_rows()
    for d in doctors[:4]:  # 90 % coverage: above the 80 % floor, but 10 points below live
        d["programme_name"] = None
    result = check_mapping_coverage(data(tables_from(doctors), live=clean_tables()), DEFAULT)
    assert not result.passed and result.metadata["mapping_drop_points"] == 10.0
    assert "mapping coverage fell 10.0 points against live (100.0 % → 90.0 %" in result.description
    assert check_mapping_coverage(data(tables_from(doctors)), DEFAULT).passed  # no live: the floor only


def test_mapping_coverage_fails_when_doctors_under_notice_have_no_recommendation() -> None:
    tables = clean_tables()
    recs = tables["recommendations"]
    tables["recommendations"] = recs.filter(pc.not_equal(recs["under_notice"], "Yes"))
    result = check_mapping_coverage(data(tables), DEFAULT)
    assert not result.passed and result.metadata["under_notice_coverage"] == 0.0
    assert "only 0 of 10 doctors under notice (0.0 %) have a recommendation" in result.description


def test_mapping_coverage_names_an_unknown_list_key_never_as_zero_rows() -> None:
    problem = ("no recommendation list: expected key 'recommendationInfo' or 'traineeInfo', found keys "
               "'countTotal', 'recommendationList' (file /x/recommendations.json)")
    export = clean_export(recommendation_records=InputReport("recommendation_records", "/x/recommendations.json",
                                                             problems=(problem,)))
    tables = clean_tables()
    tables["recommendations"] = tables["recommendations"].slice(0, 0)
    result = check_mapping_coverage(data(tables, live=clean_tables(), export=export), DEFAULT)
    assert not result.passed and result.metadata["input_problems"] == 1
    assert result.description.startswith("/x/recommendations.json: no recommendation list")
    assert "'recommendationList'" in result.description
    assert "'recommendationInfo' or 'traineeInfo'" in result.description


def test_mapping_coverage_fails_on_an_empty_list_when_live_was_not_empty() -> None:
    export = clean_export(recommendation_records=InputReport("recommendation_records", "/x/recommendations.json"))
    tables = clean_tables()
    tables["recommendations"] = tables["recommendations"].slice(0, 0)
    result = check_mapping_coverage(data(tables, live=clean_tables(), export=export), DEFAULT)
    assert not result.passed
    assert result.description.startswith("/x/recommendations.json sent an empty recommendation list while live "
                                         "v-live has 40 recommendations")

"""referential_integrity: every row belongs to a doctor, every body is known."""

from __future__ import annotations

from reval_assets.quality.checks import (
    InputReport,
    check_referential_integrity,
)
from reval_assets.transforms.build import is_discrepancy
from reval_assets_tests.quality_tables import (
    BODY_A,
    DEFAULT,
    clean_export,
    clean_tables,
    data,
    set_column,
)


def test_referential_integrity_passes_clean_tables() -> None:
    result = check_referential_integrity(data(), DEFAULT)
    assert result.passed and result.metadata["orphan_recommendations"] == 0


def test_referential_integrity_fails_on_a_recommendation_or_connection_without_its_doctor() -> None:
    tables = clean_tables()
    tables["doctors"] = tables["doctors"].slice(1)
    result = check_referential_integrity(data(tables), DEFAULT)
    assert not result.passed
    assert result.metadata["orphan_recommendations"] == 1 and result.metadata["orphan_connections"] == 1
    assert "1 recommendations rows belong to no doctor in this version (e.g. '1000000')" in result.description


def test_referential_integrity_fails_on_a_connection_the_source_sent_for_an_unknown_doctor() -> None:
    export = clean_export(connection_logs=InputReport("connection_logs", "/x/connection_logs.json", records=100,
                                                      kept=100, unmatched=1, unmatched_examples=("9999999",)))
    result = check_referential_integrity(data(export=export), DEFAULT)
    assert not result.passed and result.metadata["unmatched_connection_logs_in_source"] == 1
    assert "/x/connection_logs.json: 1 current connection(s)" in result.description
    assert "'9999999'" in result.description


def test_referential_integrity_fails_on_an_unknown_designated_body_and_a_wrong_discrepancy_flag() -> None:
    tables = clean_tables()
    tables["doctors"] = set_column(tables["doctors"], "designated_body_code", ["1-NOTREAL"] + [BODY_A] * 39)
    tables["connections"] = set_column(tables["connections"], "is_discrepancy", [True] + [False] * 39)
    result = check_referential_integrity(data(tables), DEFAULT)
    assert not result.passed
    assert result.metadata["unknown_designated_body_codes"] == 1 and result.metadata["discrepancy_flags_wrong"] == 1
    assert "doctors.designated_body_code has 1 unknown designated-body codes (e.g. '1-NOTREAL')" in result.description


def test_hand_made_discrepancy_flags_follow_the_transform() -> None:
    connections = clean_tables()["connections"]
    expected = is_discrepancy(connections["designated_body_code"], connections["tis_designated_body_code"])
    assert connections["is_discrepancy"].to_pylist() == expected.to_pylist()

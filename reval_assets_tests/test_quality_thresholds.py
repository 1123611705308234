"""The threshold model, its Dagster config, and what every check reports."""

from __future__ import annotations

from dataclasses import fields

import pytest

from reval_assets.assets.checks import ThresholdsConfig
from reval_assets.quality.checks import (
    CHECKS,
    Thresholds,
    run_checks,
)
from reval_assets_tests.quality_tables import (
    clean_tables,
    data,
)


def test_thresholds_have_safe_defaults_and_reject_out_of_range_values() -> None:
    t = Thresholds()
    assert t.max_drift_loss_share == 0.05 and t.allow_drift_reason == ""
    assert t.max_unknown_enum_records == t.max_duplicate_key_records == t.max_unmatched_records == 0
    with pytest.raises(ValueError, match="max_drift_loss_share"):
        Thresholds(max_drift_loss_share=5)
    with pytest.raises(ValueError, match="max_export_age_hours"):
        Thresholds(max_export_age_hours=-1)


def test_candidate_checks_config_exposes_every_threshold_with_the_same_default() -> None:
    config = ThresholdsConfig()
    exposed = set(ThresholdsConfig.model_fields)
    assert exposed == {f.name for f in fields(Thresholds)} - {"allow_drift_reason"}
    assert config.to_thresholds() == Thresholds()
    assert config.to_thresholds(" known merger ").allow_drift_reason == "known merger"
    with pytest.raises(ValueError, match="min_mapping_coverage"):
        ThresholdsConfig(min_mapping_coverage=80).to_thresholds()


def test_every_check_reports_numbers_and_its_thresholds_and_all_pass_on_clean_tables() -> None:
    results = run_checks(data(live=clean_tables()))
    assert [r.name for r in results] == list(CHECKS)
    for result in results:
        assert result.passed, (result.name, result.description)
        assert result.blocking
        assert any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in result.metadata.values())
        assert any(k.startswith("threshold_") for k in result.metadata), result.name

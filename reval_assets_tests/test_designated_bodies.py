"""Designated bodies: the real programme owner → code map, and the configured list the checks judge against.

The map is TIS-TCS `DesignatedBodyMapper`'s, written out here again on its own so that the module's
table is checked against the facts, not against itself.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from reval_assets.domain.designated_bodies import (
    DESIGNATED_BODY_PATTERN,
    PROD_CODES,
    STAGE_CODES,
    designated_body_of_owner,
)
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality.checks import check_referential_integrity
from reval_assets.settings import Settings, SettingsError
from reval_assets.sources.export import write_export
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets_tests.quality_tables import DEFAULT, clean_tables, data, set_column
from reval_assets_tests.test_cli import reval, sync

# Production: each local office and the code it maps to.
PRODUCTION = {
    "Kent, Surrey and Sussex": "1-1RUZV1D",
    "North West London": "1-1RUZV6H",
    "North Central and East London": "1-1RUZV4H",
    "South London": "1-1RSSQ5L",
    "East Midlands": "1-1RSSPZ7",
    "East of England": "1-1RSSQ05",
    "North East": "1-1RSSQ1B",
    "Thames Valley": "1-1RSSQ6R",
    "Yorkshire and the Humber": "1-1RSG4X0",
    "West Midlands": "1-1RUZUYF",
    "South West": "1-1RUZUVB",
    "Wessex": "1-1RUZUSF",
    "North West": "1-1RSSQ2H",
    "Northern Ireland Medical and Dental Training Agency": "1-25U-830",
}
# Staging: the pairings known from the original system (the other seven stage codes are inferred).
STAGING_KNOWN = {
    "Wessex": "1-AIIDHJ",
    "Yorkshire and the Humber": "1-AIIDQQ",
    "Kent, Surrey and Sussex": "1-AIIDR8",
    "North Central and East London": "1-AIIDVS",
    "North West London": "1-AIIDWA",
    "South London": "1-AIIDWI",
}
STAGING_ALL = ("1-AIIDHJ", "1-AIIDMQ", "1-AIIDNQ", "1-AIIDMY", "1-AIIDQQ", "1-AIIDWT", "1-AIIDR8", "1-AIIDSA",
               "1-AIIDH1", "1-AIIDWA", "1-AIIDVS", "1-AIIDWI", "1-AIIDSI")
STAGED_DOCTORS = {"REVAL_ENV": "staging", "REVAL_DOCTORS": "300"}


# --- the owner → code map --------------------------------------------------------------------


@pytest.mark.parametrize(("owner", "code"), PRODUCTION.items())
def test_every_owner_maps_to_its_production_code(owner: str, code: str) -> None:
    assert designated_body_of_owner(owner) == code


def test_the_production_and_stage_lists_are_the_real_codes() -> None:
    assert tuple(PRODUCTION.values()) == PROD_CODES
    assert sorted(STAGE_CODES) == sorted(STAGING_ALL)
    assert all(DESIGNATED_BODY_PATTERN.match(code) for code in PROD_CODES + STAGE_CODES)


def test_london_letbs_maps_to_the_first_london_code_kent_surrey_and_sussex() -> None:
    assert designated_body_of_owner("London LETBs") == "1-1RUZV1D"
    assert designated_body_of_owner("London LETBs", STAGE_CODES) == "1-AIIDR8"


@pytest.mark.parametrize(("owner", "code"), PRODUCTION.items())
def test_the_health_education_england_spelling_before_aug_2024_maps_the_same(owner: str, code: str) -> None:
    assert designated_body_of_owner(f"Health Education England {owner}") == code
    assert designated_body_of_owner(f"  health education england {owner.upper()} ") == code


def test_stage_owners_map_to_their_stage_codes_and_northern_ireland_has_none() -> None:
    for owner, code in STAGING_KNOWN.items():
        assert designated_body_of_owner(owner, STAGE_CODES) == code
    mapped = {designated_body_of_owner(owner, STAGE_CODES) for owner in PRODUCTION}
    assert mapped == set(STAGING_ALL) | {None}  # every stage code has an owner; NI is the one without
    assert designated_body_of_owner("Northern Ireland Medical and Dental Training Agency", STAGE_CODES) is None


def test_an_unknown_or_missing_owner_maps_to_no_code() -> None:
    assert designated_body_of_owner("Health Education England") is None
    assert designated_body_of_owner("Scotland") is None
    assert designated_body_of_owner(None) is None


# --- the configured list: REVAL_DESIGNATED_BODIES --------------------------------------------


def test_each_environment_defaults_to_its_own_codes() -> None:
    assert Settings.from_env({"REVAL_ENV": "prod"}).designated_bodies == PROD_CODES
    assert Settings.from_env({"REVAL_ENV": "dev"}).designated_bodies == PROD_CODES
    assert Settings.from_env({"REVAL_ENV": "staging"}).designated_bodies == STAGE_CODES


def test_reval_designated_bodies_overrides_the_default() -> None:
    settings = Settings.from_env({"REVAL_ENV": "staging", "REVAL_DESIGNATED_BODIES": " 1-aiidhj, ,1-1RUZV1D,"})
    assert settings.designated_bodies == ("1-AIIDHJ", "1-1RUZV1D")


@pytest.mark.parametrize("text", ["1-AIIDHJ,Wessex", "1-AIIDHJ;1-AIIDQQ", "1AIIDHJ"])
def test_a_bad_designated_body_code_is_a_clear_error_naming_it(text: str) -> None:
    with pytest.raises(SettingsError, match="REVAL_DESIGNATED_BODIES") as raised:
        Settings.from_env({"REVAL_DESIGNATED_BODIES": text})
    bad = next(part.strip() for part in text.split(",") if not DESIGNATED_BODY_PATTERN.match(part.strip().upper()))
    assert repr(bad) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("text", ["", " , ,"])
def test_an_empty_designated_body_list_is_an_error(text: str) -> None:
    with pytest.raises(SettingsError, match="REVAL_DESIGNATED_BODIES lists no designated-body code"):
        Settings.from_env({"REVAL_DESIGNATED_BODIES": text})


# --- the referential check judges against the configured list --------------------------------


def test_the_referential_check_knows_only_the_configured_codes() -> None:
    prod = check_referential_integrity(data(), DEFAULT)  # the hand-made tables hold production codes
    assert prod.passed and prod.metadata["known_designated_bodies"] == 14

    judged_in_staging = check_referential_integrity(data(designated_bodies=STAGE_CODES, env="staging"), DEFAULT)
    assert not judged_in_staging.passed
    assert judged_in_staging.metadata["known_designated_bodies"] == 13
    assert judged_in_staging.metadata["designated_bodies_env"] == "staging"
    assert "not among the 13 configured for staging" in judged_in_staging.description

    tables = clean_tables()
    for entity, columns in (("doctors", 2), ("connections", 2), ("recommendations", 1)):
        n = tables[entity].num_rows
        for column in ("designated_body_code", "tis_designated_body_code")[:columns]:
            tables[entity] = set_column(tables[entity], column, pa.array(["1-AIIDHJ"] * n))
    on_stage_codes = check_referential_integrity(data(tables, designated_bodies=STAGE_CODES, env="staging"), DEFAULT)
    assert on_stage_codes.passed, on_stage_codes.description


def test_a_synthetic_source_on_stage_codes_sends_each_with_its_real_owner() -> None:
    tables = {name: wire.table for name, wire in SyntheticSource(800, seed=3, designated_bodies=STAGE_CODES)
              .extract().items()}
    tis = tables["tis_trainees"]
    pairs = {(o, c) for o, c in zip(tis["programmeOwner"].to_pylist(), tis["tcsDesignatedBody"].to_pylist(),
                                    strict=True) if c is not None}
    assert {c for _, c in pairs} == set(STAGE_CODES)
    assert all(designated_body_of_owner(owner, STAGE_CODES) == code for owner, code in pairs)
    assert set(tables["gmc_doctors"]["designatedBodyCode"].drop_null().to_pylist()) <= set(STAGE_CODES)
    logs = tables["connection_logs"]
    for column in ("newDesignatedBodyCode", "previousDesignatedBodyCode"):
        assert set(logs[column].drop_null().to_pylist()) <= set(STAGE_CODES)


def test_the_synthetic_source_of_the_runtime_uses_the_environments_codes(tmp_path) -> None:
    settings = Settings.from_env({"REVAL_ENV": "staging", "REVAL_HOME": str(tmp_path), "REVAL_DOCTORS": "50"})
    source = Runtime(settings).source()
    assert isinstance(source, SyntheticSource) and source.designated_bodies == STAGE_CODES
    assert source.fingerprint() != SyntheticSource(50).fingerprint()


# --- end to end: a staging sync ---------------------------------------------------------------


def _referential(version: str) -> dict:
    runtime = Runtime(Settings.from_env())
    try:
        checks = json.loads(runtime.live.version(version)["checks"])
    finally:
        runtime.close()
    return next(c for c in checks if c["name"] == "referential_integrity")


def test_a_staging_sync_on_stage_codes_passes_the_referential_check_and_publishes(reval_env, monkeypatch) -> None:
    for name, value in STAGED_DOCTORS.items():
        monkeypatch.setenv(name, value)
    published = sync("--confirm", "staging")
    assert published["published"] is True and published["blocked_by"] == []
    check = _referential(published["version"])
    assert check["passed"] is True
    assert check["metadata"]["known_designated_bodies"] == 13
    assert check["metadata"]["designated_bodies_env"] == "staging"


def test_a_production_export_in_staging_is_blocked_for_its_unknown_codes(reval_env, monkeypatch, tmp_path) -> None:
    for name, value in STAGED_DOCTORS.items():
        monkeypatch.setenv(name, value)
    folder = write_export(SyntheticSource(300, seed=7).extract(), tmp_path / "prod-export")  # production codes
    ran = reval("sync", "--confirm", "staging", "--json",
                env={"REVAL_SOURCE": "files", "REVAL_SOURCE_DIR": str(folder)}, expect=3)
    assert ran.data["published"] is False and "referential_integrity" in ran.data["blocked_by"]
    check = _referential(ran.data["version"])
    assert check["passed"] is False and check["metadata"]["unknown_designated_body_codes"] > 0
    assert "not among the 13 configured for staging" in check["description"]


def test_a_bad_reval_designated_bodies_stops_the_command_with_the_bad_value(reval_env) -> None:
    ran = reval("status", "--json", env={"REVAL_DESIGNATED_BODIES": "1-AIIDHJ,Wessex"}, expect=1)
    assert "REVAL_DESIGNATED_BODIES" in ran.data["error"] and "'Wessex'" in ran.data["error"]

"""The synthetic source sends what the real services send: doctors the GMC no longer returns, connection
changes the GMC sync wrote, hidden discrepancies, and the realistic faults (null legacy ids, free-text GMC
numbers in TIS)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pyarrow as pa
import pytest

from reval_assets.domain.conform import conform
from reval_assets.domain.schemas import HIDDEN_DISCREPANCIES, RAW_SPECS
from reval_assets.sources.synthetic import (
    ADMINS,
    AS_OF,
    GMC_SYNC_UPDATED_BY,
    HIDDEN_REASONS,
    SyntheticSource,
    _wire_table,
)

DOCTORS = 20_000  # enough discrepant doctors (~1,000) for a few dozen hidden discrepancies
REALISTIC = ("legacy_null_ids", "tis_free_text_gmc")
HIDDEN = HIDDEN_DISCREPANCIES.name  # the raw input


def _tables(doctors: int = DOCTORS, seed: int = 7, faults: tuple[str, ...] = ()) -> dict[str, pa.Table]:
    return {name: wire.table for name, wire in SyntheticSource(doctors, seed=seed, faults=faults).extract().items()}


@pytest.fixture(scope="module")
def clean() -> dict[str, pa.Table]:
    return _tables()


def _rows(table: pa.Table) -> list[dict]:
    return table.drop_columns(["_record"]).to_pylist()


def _latest_logs(logs: pa.Table) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for log in sorted(_rows(logs), key=lambda r: r["requestTime"]):
        latest[log["gmcId"]] = log
    return latest


# --- doctors the GMC no longer returns -------------------------------------------------------


def test_a_few_gmc_doctors_are_disconnected_with_no_body(clean: dict[str, pa.Table]) -> None:
    doctors = _rows(clean["gmc_doctors"])
    exists = Counter(d["existsInGmc"] for d in doctors)
    assert set(exists) == {"true", "false"}
    assert 0.005 < exists["false"] / len(doctors) < 0.03
    for d in doctors:
        assert (d["designatedBodyCode"] is None) == (d["existsInGmc"] == "false"), d


def test_disconnected_doctors_keep_their_names_dates_and_recommendations(clean: dict[str, pa.Table]) -> None:
    gone = [d for d in _rows(clean["gmc_doctors"]) if d["existsInGmc"] == "false"]
    for d in gone:
        assert d["doctorFirstName"] and d["doctorLastName"] and d["submissionDate"] and d["dateAdded"], d
    numbers = {d["gmcReferenceNumber"] for d in gone}
    with_history = numbers & set(clean["recommendation_records"]["gmcNumber"].to_pylist())
    assert len(with_history) / len(numbers) > 0.6  # about 80 % of all doctors have a recommendation


def test_a_disconnected_doctors_latest_log_is_the_gmc_syncs_removal(clean: dict[str, pa.Table]) -> None:
    gone = {d["gmcReferenceNumber"] for d in _rows(clean["gmc_doctors"]) if d["existsInGmc"] == "false"}
    latest = _latest_logs(clean["connection_logs"])
    assert gone <= set(latest)
    for number in gone:
        log = latest[number]
        assert log["updatedBy"] == GMC_SYNC_UPDATED_BY and log["requestType"] is None, log
        assert log["newDesignatedBodyCode"] is None and log["previousDesignatedBodyCode"] is not None, log


def test_exists_in_gmc_conforms_to_a_boolean(clean: dict[str, pa.Table]) -> None:
    conformed = conform(RAW_SPECS["gmc_doctors"], clean["gmc_doctors"], "synthetic")
    assert conformed.quarantine.num_rows == 0
    wire_false = clean["gmc_doctors"]["existsInGmc"].to_pylist().count("false")
    assert conformed.table["exists_in_gmc"].to_pylist().count(False) == wire_false > 0


# --- connection changes the GMC sync wrote ---------------------------------------------------


def test_gmc_sync_logs_have_no_request_type_reason_or_response_code(clean: dict[str, pa.Table]) -> None:
    logs = _rows(clean["connection_logs"])
    from_gmc = [r for r in logs if r["updatedBy"] == GMC_SYNC_UPDATED_BY]
    assert 0.15 < len(from_gmc) / len(logs) < 0.35
    for r in from_gmc:
        assert r["requestType"] is None and r["reason"] is None and r["responseCode"] is None, r
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T0[1-4]:\d{2}:\d{2}", r["requestTime"]), r  # the nightly run
    # They are real changes: connections to a body and removals from one.
    assert any(r["newDesignatedBodyCode"] is not None for r in from_gmc)
    assert any(r["newDesignatedBodyCode"] is None and r["previousDesignatedBodyCode"] for r in from_gmc)
    # Every other log is a TIS request by an admin, with its type, reason and response.
    for r in logs:
        if r["updatedBy"] != GMC_SYNC_UPDATED_BY:
            assert r["updatedBy"] in ADMINS and r["requestType"] in ("ADD", "REMOVE"), r
            assert r["reason"] is not None and r["responseCode"] is not None, r


def test_failed_requests_are_never_gmc_sync_logs(clean: dict[str, pa.Table]) -> None:
    failed = [r for r in _rows(clean["connection_logs"]) if r["responseCode"] not in (None, "0")]
    assert failed and all(r["updatedBy"] != GMC_SYNC_UPDATED_BY for r in failed)


def test_the_latest_change_still_matches_the_current_gmc_body(clean: dict[str, pa.Table]) -> None:
    body = {d["gmcReferenceNumber"]: d["designatedBodyCode"] for d in _rows(clean["gmc_doctors"])}
    latest = _latest_logs(clean["connection_logs"])
    for number, current in body.items():
        log = latest[number]
        assert log["newDesignatedBodyCode"] == current, log
        assert log["requestType"] in ((None, "ADD") if current else (None, "REMOVE")), log


def test_connection_logs_conform_with_nothing_quarantined(clean: dict[str, pa.Table]) -> None:
    conformed = conform(RAW_SPECS["connection_logs"], clean["connection_logs"], "synthetic")
    assert conformed.quarantine.num_rows == 0
    assert conformed.table["request_type"].null_count == clean["connection_logs"]["requestType"].null_count > 0


# --- hidden discrepancies --------------------------------------------------------------------


def _bodies(clean: dict[str, pa.Table]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    gmc = dict(zip(*(clean["gmc_doctors"][c].to_pylist() for c in ("gmcReferenceNumber", "designatedBodyCode")),
                   strict=True))  # fmt: skip
    tis = dict(zip(*(clean["tis_trainees"][c].to_pylist() for c in ("gmcReferenceNumber", "tcsDesignatedBody")),
                   strict=True))  # fmt: skip
    return gmc, tis


def test_hidden_discrepancies_are_one_per_doctor_and_body(clean: dict[str, pa.Table]) -> None:
    hidden = _rows(clean[HIDDEN])
    assert hidden
    keys = [(r["gmcId"], r["hiddenForDesignatedBodyCode"]) for r in hidden]
    assert len(set(keys)) == len(keys)
    conformed = conform(HIDDEN_DISCREPANCIES, clean[HIDDEN], "synthetic")
    assert conformed.quarantine.num_rows == 0 and conformed.table.num_rows == len(hidden)


def test_hidden_discrepancies_are_only_for_doctors_whose_bodies_differ(clean: dict[str, pa.Table]) -> None:
    gmc, tis = _bodies(clean)
    discrepant = {n for n in gmc.keys() & tis.keys() if gmc[n] and tis[n] and gmc[n] != tis[n]}
    hidden = _rows(clean[HIDDEN])
    for r in hidden:
        assert r["gmcId"] in discrepant, r
        assert (r["currentDesignatedBodyCode"], r["programmeOwnerDesignatedBodyCode"]) == (gmc[r["gmcId"]],
                                                                                          tis[r["gmcId"]])  # fmt: skip
        assert r["hiddenForDesignatedBodyCode"] in (gmc[r["gmcId"]], tis[r["gmcId"]]), r
    assert 0.02 < len(hidden) / len(discrepant) < 0.10  # a few %
    hidden_for = Counter(r["hiddenForDesignatedBodyCode"] == r["currentDesignatedBodyCode"] for r in hidden)
    assert hidden_for[True] and hidden_for[False]  # hidden by the GMC body's admins and by the TIS body's


def test_hidden_discrepancies_say_who_why_and_until_when(clean: dict[str, pa.Table]) -> None:
    hidden = _rows(clean[HIDDEN])
    as_of = AS_OF.isoformat()
    for r in hidden:
        assert r["hiddenBy"] in ADMINS and r["reason"] in HIDDEN_REASONS, r
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?", r["hiddenDateTime"]), r
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["hiddenUntilDate"]), r
        assert r["hiddenDateTime"][:10] < as_of, r
        assert r["hiddenUntilDate"] > r["hiddenDateTime"][:10], r
    future = sum(r["hiddenUntilDate"] > as_of for r in hidden)
    assert 0.75 < future / len(hidden) < 1  # mostly still hidden, a few already past


def test_a_small_population_still_has_a_hidden_discrepancy() -> None:
    """Its few discrepant doctors may draw none at 5 %: one is hidden anyway, so a demo shows the feature."""
    for seed in range(5):
        assert _tables(200, seed=seed)[HIDDEN].num_rows >= 1, seed


# --- the realistic faults --------------------------------------------------------------------


def test_realistic_faults_are_named_but_never_on_by_default() -> None:
    assert set(REALISTIC) <= set(SyntheticSource.FAULTS)
    assert set(SyntheticSource.REALISTIC_FAULTS) == set(REALISTIC)
    assert SyntheticSource(100).faults == ()


def test_legacy_null_ids_are_two_different_recommendations_without_an_id(clean: dict[str, pa.Table]) -> None:
    tables = _tables(faults=("legacy_null_ids",))
    records, before = tables["recommendation_records"], clean["recommendation_records"]
    assert records.num_rows == before.num_rows + 2
    assert records.slice(0, before.num_rows).equals(before)  # the clean ones are as they were
    legacy = _rows(records.slice(before.num_rows))
    assert [r["id"] for r in legacy] == [None, None]
    assert legacy[0] != legacy[1]  # distinct content: not duplicates of each other
    assert legacy[0]["gmcNumber"] == legacy[1]["gmcNumber"]  # one doctor's legacy history
    assert legacy[0]["gmcNumber"] in set(clean["gmc_doctors"]["gmcReferenceNumber"].to_pylist())
    assert all(r["gmcSubmissionDate"] < "2020-01-01" for r in legacy)
    assert clean["recommendation_records"]["id"].null_count == 0
    for name in ("gmc_doctors", "tis_trainees", "connection_logs", HIDDEN):
        assert tables[name].equals(clean[name]), name


def test_legacy_null_ids_conform_with_their_own_ids_not_as_duplicates() -> None:
    tables = _tables(doctors=2_000, faults=("legacy_null_ids",))
    conformed = conform(RAW_SPECS["recommendation_records"], tables["recommendation_records"], "synthetic")
    assert conformed.quarantine.num_rows == 0
    ids = conformed.table["recommendation_id"].to_pylist()
    assert None not in ids and len(set(ids)) == len(ids) == tables["recommendation_records"].num_rows


def test_tis_free_text_gmc_numbers(clean: dict[str, pa.Table]) -> None:
    tables = _tables(faults=("tis_free_text_gmc",))
    tis, before = tables["tis_trainees"], clean["tis_trainees"]
    assert tis.num_rows == before.num_rows + 1  # the second person holding a number
    numbers = tis["gmcReferenceNumber"].to_pylist()
    bad = [n for n in numbers if not re.fullmatch(r"\d{7}", n)]
    kinds = Counter("blank" if n == "" else "short" if re.fullmatch(r"\d{6}", n) else
                    "letter" if re.fullmatch(r"\d{6}[A-Z]", n) else n for n in bad)  # fmt: skip
    assert kinds == {"blank": 1, "short": 1, "letter": 1}
    shared = [n for n, count in Counter(numbers).items() if count > 1]
    assert len(shared) == 1
    holders = [r for r in _rows(tis) if r["gmcReferenceNumber"] == shared[0]]
    assert len({r["tcsPersonId"] for r in holders}) == 2
    ids = tis["tcsPersonId"].to_pylist()
    assert len(set(ids)) == len(ids)
    changed = sum(a != b for a, b in zip(numbers, before["gmcReferenceNumber"].to_pylist(), strict=False))
    assert changed == 3  # the others keep their numbers
    for name in ("gmc_doctors", "recommendation_records", "connection_logs", HIDDEN):
        assert tables[name].equals(clean[name]), name


def test_tis_free_text_gmc_quarantines_only_those_few_trainees() -> None:
    tables = _tables(doctors=2_000, faults=("tis_free_text_gmc",))
    conformed = conform(RAW_SPECS["tis_trainees"], tables["tis_trainees"], "synthetic")
    assert 0 < len(set(conformed.quarantine["record"].to_pylist())) <= 5
    assert conformed.table.num_rows >= tables["tis_trainees"].num_rows - 5


# --- determinism and size --------------------------------------------------------------------


def test_the_same_seed_gives_identical_tables_for_every_input() -> None:
    faults = ("legacy_null_ids", "tis_free_text_gmc", "duplicate_keys")
    first, second = _tables(5_000, seed=3, faults=faults), _tables(5_000, seed=3, faults=faults)
    assert set(first) == set(RAW_SPECS) == {
        "gmc_doctors", "tis_trainees", "recommendation_records", "connection_logs", HIDDEN
    }  # fmt: skip
    for name in RAW_SPECS:
        assert first[name].num_rows > 0 and first[name].equals(second[name]), name
    other = _tables(5_000, seed=4, faults=faults)
    assert not other[HIDDEN].equals(first[HIDDEN])


def test_a_wire_table_gives_nulls_for_a_field_the_generator_does_not_produce() -> None:
    spec = RAW_SPECS["gmc_doctors"]
    table = _wire_table(spec, {"gmcReferenceNumber": pa.array(["1234567", "7654321"])})
    assert table.column_names == [*(c.wire for c in spec.columns), "_record"]
    assert table["gmcReferenceNumber"].to_pylist() == ["1234567", "7654321"]
    assert all(table[c.wire].null_count == 2 and table[c.wire].type == pa.string()
               for c in spec.columns if c.wire != "gmcReferenceNumber")  # fmt: skip


def test_the_default_population_keeps_its_figures() -> None:
    """20,000 doctors at seed 0: the realism (attributes and extra log rows) moves no doctor or recommendation."""
    tables = _tables(20_000, seed=0)
    everyone = set(tables["gmc_doctors"]["gmcReferenceNumber"].to_pylist()) | set(
        tables["tis_trainees"]["gmcReferenceNumber"].to_pylist()
    )
    assert len(everyone) == 20_000
    assert tables["recommendation_records"].num_rows == 29_849


def test_a_different_as_of_day_moves_the_hidden_dates_with_it() -> None:
    later = date(2024, 6, 1)
    hidden = _rows(SyntheticSource(5_000, seed=7, as_of=later).extract()[HIDDEN].table)
    assert hidden and all(r["hiddenDateTime"][:10] < later.isoformat() for r in hidden)

"""The drift engine (shared with `reval diff`) and the drift check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES
from reval_assets.domain.schemas import DESIGNATED_BODY as DB
from reval_assets.domain.schemas import ENTITY_SPECS
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.quality.checks import (
    BatchPair,
    Thresholds,
    check_drift,
    entity_drift,
    run_checks,
)
from reval_assets.store.snapshots import LazyTable, SnapshotStore
from reval_assets_tests.quality_tables import (
    BODY_A,
    BODY_B,
    DEFAULT,
    clean_tables,
    data,
    doctor_rows,
    set_column,
    tables_from,
)


def test_entity_drift_counts_added_removed_changed_and_moves_between_bodies() -> None:
    old = clean_tables()["doctors"]
    doctors = doctor_rows()[2:] + doctor_rows(42)[40:]  # 2 removed (A and B), 2 added
    doctors[0] = {**doctors[0], "doctor_last_name": "Changed"}  # 1000002, A: changed in place
    doctors[1] = {**doctors[1], "designated_body_code": BODY_A}  # 1000003 moves B -> A
    drift = entity_drift("doctors", tables_from(doctors)["doctors"], old)
    assert (drift.live_rows, drift.added, drift.removed, drift.changed) == (40, 2, 2, 2)
    assert drift.bodies[BODY_A] == {"live_rows": 20, "lost": 1, "added": 2, "changed": 1}
    assert drift.bodies[BODY_B] == {"live_rows": 20, "lost": 2, "added": 1, "changed": 0}


def _drift_by_hand(new: list[dict], old: list[dict]) -> tuple[tuple[int, int, int], dict[str, dict[str, int]]]:
    """Added, removed and changed rows, and the per-body tallies, counted one row at a time."""
    by_key_new, by_key_old = {r[GMC]: r for r in new}, {r[GMC]: r for r in old}
    bodies: dict[str, dict[str, int]] = {}

    def tally(body: str | None, name: str) -> None:
        if body is not None:
            bodies.setdefault(body, dict.fromkeys(("live_rows", "lost", "added", "changed"), 0))[name] += 1

    changed = 0
    for row in old:
        tally(row[DB], "live_rows")
    for key, row in by_key_old.items():
        other = by_key_new.get(key)
        if other is None:
            tally(row[DB], "lost")
        elif other != row:
            changed += 1
            if other[DB] != row[DB]:
                tally(row[DB], "lost")
                tally(other[DB], "added")
            else:
                tally(row[DB], "changed")
    for key, row in by_key_new.items():
        if key not in by_key_old:
            tally(row[DB], "added")
    added, removed = len(by_key_new.keys() - by_key_old), len(by_key_old.keys() - by_key_new)
    return (added, removed, changed), bodies


def test_entity_drift_counts_what_a_row_by_row_comparison_counts_with_nulls_moves_and_shuffles() -> None:
    rng = np.random.default_rng(7)
    bodies = [BODY_A, BODY_B, DESIGNATED_BODY_CODES[2], None]

    def row(key: int) -> dict:
        return {GMC: str(key), DB: bodies[rng.integers(4)], "name": [None, "x", "y"][rng.integers(3)]}

    old = [row(k) for k in range(1000, 1400)]
    new = [r if rng.random() < 0.6 else row(int(r[GMC])) for r in old if rng.random() < 0.9]
    new += [row(k) for k in range(1400, 1450)]
    rng.shuffle(new)
    schema = pa.schema([(GMC, pa.string()), (DB, pa.string()), ("name", pa.string())])
    drift = entity_drift("doctors", pa.Table.from_pylist(new, schema), pa.Table.from_pylist(old, schema))
    (added, removed, changed), by_body = _drift_by_hand(new, old)
    assert (drift.added, drift.removed, drift.changed) == (added, removed, changed)
    assert removed > 30 and added == 50 and changed > 50  # the draw exercised every kind
    assert drift.bodies == by_body


def test_drift_passes_without_live_and_against_an_identical_live() -> None:
    assert check_drift(data(), DEFAULT).passed
    same = check_drift(data(live=clean_tables()), DEFAULT)
    assert same.passed and same.metadata["doctors_removed"] == same.metadata["recommendations_changed"] == 0


def _lose_connections(share: float, n: int = 400) -> dict[str, pa.Table]:
    """`share` of body A's doctors lose their GMC connection (the Connections list empties)."""
    doctors = doctor_rows(n)
    in_a = [d for d in doctors if d["designated_body_code"] == BODY_A]
    for d in in_a[: round(share * len(in_a))]:
        d["designated_body_code"], d["exists_in_gmc"] = None, False
    return tables_from(doctors)


def test_drift_fails_when_one_designated_body_loses_its_connections() -> None:
    result = check_drift(data(_lose_connections(0.4), live=clean_tables(400)), DEFAULT)
    assert not result.passed
    assert f"designated body {BODY_A} would lose 80 of its 200 connections (40.0 %)" in result.description
    assert result.metadata["worst_loss_share"] == 0.4 and result.metadata["overridden"] is False
    assert result.metadata["threshold_max_drift_loss_share"] == 0.05
    assert f"| connections | {BODY_A} | 200 | 80 | 0 | 0 | 40.0 % |" in result.table
    assert check_drift(data(_lose_connections(0.04), live=clean_tables(400)), DEFAULT).passed


def test_drift_fails_when_an_entity_loses_rows() -> None:
    tables = clean_tables(400)
    tables["recommendations"] = tables["recommendations"].slice(0, 300)
    result = check_drift(data(tables, live=clean_tables(400)), DEFAULT)
    assert not result.passed and result.metadata["recommendations_removed"] == 100
    assert "recommendations would lose 100 of 400 live rows (25.0 %)" in result.description


def test_drift_ignores_a_loss_smaller_than_min_drift_rows() -> None:
    tables = clean_tables(40)
    tables["doctors"] = tables["doctors"].slice(0, 35)  # 12.5 %, but only 5 rows
    assert check_drift(data(tables, live=clean_tables(40)), DEFAULT).passed
    assert not check_drift(data(tables, live=clean_tables(40)), Thresholds(min_drift_rows=5)).passed


def test_drift_lets_a_known_change_through_only_with_a_recorded_reason() -> None:
    thresholds = Thresholds(allow_drift_reason="body A merged into B, ticket TIS21-1234")
    result = check_drift(data(_lose_connections(0.4), live=clean_tables(400)), thresholds)
    assert result.passed and result.metadata["overridden"] is True
    assert result.metadata["allow_drift_reason"] == "body A merged into B, ticket TIS21-1234"
    assert "would have failed" in result.description and "TIS21-1234" in result.description


def _by_batch(batches: list[list[dict]]) -> list[dict[str, pa.Table]]:
    return [tables_from(rows) for rows in batches]


def _joined(parts: list[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    return {e: pa.concat_tables([part[e] for part in parts]) for e in ENTITY_SPECS}


def _lost_changed_and_moved() -> tuple[list[dict[str, pa.Table]], list[dict[str, pa.Table]], dict]:
    """Live and a candidate in 4 batches (batches 1 and 3 differ), and the layout pairing them."""
    rows = doctor_rows(400)
    live = _by_batch([rows[i:i + 100] for i in range(0, 400, 100)])
    changed = [dict(r) for r in rows[100:200]]
    del changed[:30]  # batch 1 loses 30 doctors (15 of body A)
    for r in changed[:5]:
        r["doctor_last_name"] = "Changed"
    for r in changed[5:8]:
        r["designated_body_code"] = BODY_A
    candidate = [live[0], *_by_batch([changed, rows[200:300], rows[300:400] + doctor_rows(402)[400:]])]
    # a recommendation moves from a doctor in batch 1 to one in batch 3: "changed", not removed and added
    moved = candidate[1]["recommendations"].slice(0, 1)
    candidate[1]["recommendations"] = candidate[1]["recommendations"].slice(1)
    candidate[3]["recommendations"] = pa.concat_tables([
        candidate[3]["recommendations"], set_column(moved, "gmc_reference_number", ["1000350"])])
    unchanged = (True, False, True, False)
    layout = {e: tuple(BatchPair(rows=new[e].num_rows, live_rows=old[e].num_rows, same=same)
                       for new, old, same in zip(candidate, live, unchanged, strict=True)) for e in ENTITY_SPECS}
    return candidate, live, layout


def test_drift_over_the_batches_whose_files_differ_counts_what_whole_tables_count() -> None:
    candidate, live, layout = _lost_changed_and_moved()
    whole = check_drift(data(_joined(candidate), live=_joined(live)), DEFAULT)
    by_batch = check_drift(data(_joined(candidate), live=_joined(live), layout=layout), DEFAULT)
    assert by_batch == whole
    assert whole.metadata["doctors_removed"] == 30 and whole.metadata["doctors_added"] == 2
    moves = (whole.metadata["recommendations_removed"], whole.metadata["recommendations_added"])
    assert moves == (30, 2)  # the moved recommendation is neither removed nor added
    assert f"designated body {BODY_A} would lose" in whole.description
    untouched = data(_joined(live), live=_joined(live), layout={e: tuple(BatchPair(p.rows, p.live_rows, True)
                                                                       for p in ps) for e, ps in layout.items()})
    assert check_drift(untouched, DEFAULT).metadata["doctors_changed"] == 0
    # a layout that does not add up to the tables is not trusted: the whole tables are compared
    misfit = {e: tuple(BatchPair(p.rows + 1, p.live_rows, True) for p in ps) for e, ps in layout.items()}
    assert check_drift(data(_joined(candidate), live=_joined(live), layout=misfit), DEFAULT) == whole


def test_every_check_answers_the_same_with_live_read_from_its_files_a_column_at_a_time(tmp_path: Path) -> None:
    candidate, live, layout = _lost_changed_and_moved()
    tables = _joined(candidate)
    tables["doctors"] = set_column(tables["doctors"], "membership_type", [None] * tables["doctors"].num_rows)
    store = SnapshotStore(tmp_path)
    files = {e: [store.put_table(e, b, part[e])[0] for b, part in enumerate(live)] for e in ENTITY_SPECS}
    in_memory = {files["doctors"][0].sha256: live[0]["doctors"]}  # a file shared with the candidate
    lazy = {e: store.lazy_table(refs, in_memory=in_memory) for e, refs in files.items()}
    assert all(isinstance(table, LazyTable) for table in lazy.values())
    for with_layout in ({}, {"layout": layout}):
        in_memory_results = run_checks(data(tables, live=_joined(live), **with_layout), DEFAULT)
        assert run_checks(data(tables, live=lazy, **with_layout), DEFAULT) == in_memory_results
    failed = {r.name for r in in_memory_results if not r.passed}
    assert {"schema", "drift"} <= failed  # the vanished column and the lost doctors are seen either way

"""Build `doctors`, `connections` and `recommendations` for one batch.

Inputs are conformed raw tables of a single batch (a doctor and everything about them share
a batch). Joins and aggregates are Arrow kernels: no per-row Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.enums import ConnectionStatus, RecommendationStatus
from reval_assets.domain.schemas import CONNECTIONS, DOCTORS, HIDDEN, MAPPED_TRAINEE_FIELDS, RECOMMENDATIONS
from reval_assets.domain.schemas import DESIGNATED_BODY as DB
from reval_assets.domain.schemas import GMC_NUMBER as GMC


def is_discrepancy(gmc_code: pa.Array, tis_code: pa.Array) -> pa.Array:
    """The original's rule: TIS's designated body (from the programme owner) and GMC's differ, compared as lists,
    so a body on one side and none on the other is a discrepancy, and none on both is not."""
    one_sided = pc.xor(pc.is_valid(gmc_code), pc.is_valid(tis_code))
    return pc.fill_null(pc.or_(one_sided, pc.fill_null(pc.not_equal(gmc_code, tis_code), False)), False)


def _latest_recommendation(records: pa.Table) -> pa.Table:
    """Per doctor, the status and outcome of their most recent recommendation."""
    when = pc.coalesce(records["actual_submission_date"], records["gmc_submission_date"], records["deferral_date"])
    ordered = (
        records.select([GMC, "recommendation_id", "recommendation_status", "gmc_outcome"])
        .append_column("_when", when)
        .sort_by([(GMC, "ascending"), ("_when", "ascending", "at_start"), ("recommendation_id", "ascending")])
    )
    latest = ordered.group_by(GMC, use_threads=False).aggregate(
        [("recommendation_status", "last"), ("gmc_outcome", "last")]
    )
    return latest.select([GMC, "recommendation_status_last", "gmc_outcome_last"]).rename_columns(
        [GMC, "tis_status", "gmc_status"])


# A live doctor with any of these has a GMC history (a doctor known only to TIS has none of them).
GMC_HISTORY: tuple[str, ...] = ("submission_date", "date_added", "under_notice", "sanction", "last_updated")


@dataclass(frozen=True)
class Carried:
    """This sync's GMC records, with the live doctors it lacks carried forward (`carry_forward`)."""

    gmc: pa.Table
    disconnected: int = 0  # no longer returned by the GMC: kept with their history, disconnected
    unreadable: int = 0  # their GMC record was quarantined this time: kept as they were


def absent_doctors(gmc: pa.Table, live_doctors: pa.Table) -> pa.Table:
    """The live doctors with a GMC history whom these GMC records lack: the ones `carry_forward` carries."""
    history = pc.fill_null(live_doctors["exists_in_gmc"], False)
    for column in GMC_HISTORY:
        history = pc.or_(history, pc.is_valid(live_doctors[column]))
    known = live_doctors.filter(history)
    return known.filter(pc.invert(pc.is_in(known[GMC], value_set=gmc[GMC].combine_chunks())))


def carry_forward(gmc: pa.Table, live_doctors: pa.Table | None, quarantined: pa.Array | None = None) -> Carried:
    """Keep every doctor the live version has a GMC history of and this sync's GMC records lack, as the original
    keeps them in its own store. A doctor whose GMC record was quarantined this time (`quarantined` GMC numbers)
    keeps their last good GMC row as it was; a doctor the GMC no longer returns keeps it disconnected:
    `exists_in_gmc` false, no designated body."""
    if live_doctors is None or live_doctors.num_rows == 0:
        return Carried(gmc)
    absent = absent_doctors(gmc, live_doctors)
    if absent.num_rows == 0:
        return Carried(gmc)
    unreadable = pc.is_in(absent[GMC], value_set=quarantined if quarantined is not None else pa.array([], pa.string()))
    rows = pa.table({
        GMC: absent[GMC],
        "doctor_first_name": absent["doctor_first_name"],
        "doctor_last_name": absent["doctor_last_name"],
        "submission_date": absent["submission_date"],
        "date_added": absent["date_added"],
        "under_notice": absent["under_notice"],
        "sanction": absent["sanction"],
        "doctor_status": absent["tis_status"],  # as the original's stored document keeps its doctorStatus
        DB: pc.if_else(unreadable, absent[DB], pa.scalar(None, pa.string())),
        "gmc_last_updated": absent["last_updated"],
        "exists_in_gmc": pc.and_(unreadable, absent["exists_in_gmc"]),
    })
    kept = int(pc.sum(unreadable).as_py() or 0)
    carried = pa.concat_tables([gmc, rows.select(gmc.schema.names).cast(gmc.schema)])
    return Carried(carried, disconnected=absent.num_rows - kept, unreadable=kept)


def build_doctors(gmc: pa.Table, tis: pa.Table, records: pa.Table) -> pa.Table:
    """GMC doctors joined with TIS trainees (full outer: a doctor in either system is kept)."""
    # A doctor the GMC no longer returns is kept, with their history, as disconnected: no GMC body. A record
    # that does not say (`existsInGmc` is only in the stored documents) was returned if it has a body.
    returned = pc.fill_null(gmc["exists_in_gmc"], pc.is_valid(gmc[DB]))
    gmc_side = gmc.set_column(gmc.schema.get_field_index(DB), DB,
                              pc.if_else(returned, gmc[DB], pa.scalar(None, pa.string())))
    gmc_side = gmc_side.drop_columns(["exists_in_gmc"]).append_column("_in_gmc", returned)
    joined = gmc_side.join(tis, keys=GMC, join_type="full outer", left_suffix="_gmc", right_suffix="_tis",
                           coalesce_keys=True)
    latest = _latest_recommendation(records)
    joined = joined.join(latest, keys=GMC, join_type="left outer")
    columns = {
        GMC: joined[GMC],
        "tis_person_id": joined["tis_person_id"],
        "doctor_first_name": pc.coalesce(joined["doctor_first_name_gmc"], joined["doctor_first_name_tis"]),
        "doctor_last_name": pc.coalesce(joined["doctor_last_name_gmc"], joined["doctor_last_name_tis"]),
        "submission_date": joined["submission_date"],
        "date_added": joined["date_added"],
        "under_notice": joined["under_notice"],
        "sanction": joined["sanction"],
        "designated_body_code": joined["designated_body_code"],
        "tis_designated_body_code": joined["tis_designated_body_code"],
        "programme_name": joined["programme_name"],
        "programme_owner": joined["programme_owner"],
        "membership_type": joined["membership_type"],
        "placement_grade": joined["placement_grade"],
        "membership_start_date": joined["membership_start_date"],
        "membership_end_date": joined["membership_end_date"],
        "curriculum_end_date": joined["curriculum_end_date"],
        "gmc_status": joined["gmc_status"],
        # The recommendation service's status of the doctor where the record carries it, else that of their
        # latest recommendation (not started without one).
        "tis_status": pc.coalesce(joined["doctor_status"], joined["tis_status"],
                                  pa.scalar(RecommendationStatus.NOT_STARTED.value)),
        "exists_in_gmc": pc.fill_null(joined["_in_gmc"], False),
        "last_updated": joined["gmc_last_updated"],
    }
    return pa.table(columns).sort_by(GMC).cast(DOCTORS.schema)


def build_connections(doctors: pa.Table, logs: pa.Table) -> pa.Table:
    """One row per doctor: their GMC connection, TIS's view of it, and the latest successful change."""
    succeeded = pc.fill_null(pc.equal(logs["response_code"], "0"), True)  # a refused request changed nothing
    ordered = logs.filter(succeeded).select([GMC, "request_time", "updated_by"]).sort_by([(GMC, "ascending"),
                                                                       ("request_time", "ascending")])
    latest = ordered.group_by(GMC, use_threads=False).aggregate([("request_time", "last"), ("updated_by", "last")])
    latest = latest.select([GMC, "request_time_last", "updated_by_last"]).rename_columns(
        [GMC, "last_connection_change", "last_updated_by"])
    joined = doctors.join(latest, keys=GMC, join_type="left outer").sort_by(GMC)
    connected = pc.and_(joined["exists_in_gmc"], pc.is_valid(joined["designated_body_code"]))
    status = pc.if_else(connected, ConnectionStatus.CONNECTED.value, ConnectionStatus.DISCONNECTED.value)
    columns = {
        GMC: joined[GMC],
        "doctor_first_name": joined["doctor_first_name"],
        "doctor_last_name": joined["doctor_last_name"],
        "designated_body_code": joined["designated_body_code"],
        "tis_designated_body_code": joined["tis_designated_body_code"],
        "programme_owner": joined["programme_owner"],
        "connection_status": status,
        "last_connection_change": joined["last_connection_change"],
        "last_updated_by": joined["last_updated_by"],
        "is_discrepancy": is_discrepancy(joined["designated_body_code"], joined["tis_designated_body_code"]),
    }
    return pa.table(columns).cast(CONNECTIONS.schema)


def build_recommendations(records: pa.Table, doctors: pa.Table) -> pa.Table:
    """Recommendation records with the trainee fields mapped on (the screen's recommendationInfo).

    A record whose doctor is not in this batch keeps null trainee fields: it is never dropped,
    and the referential-integrity check reports it.
    """
    trainee = doctors.select([GMC, *MAPPED_TRAINEE_FIELDS])
    joined = records.join(trainee, keys=GMC, join_type="left outer")
    return joined.select(RECOMMENDATIONS.schema.names).sort_by("recommendation_id").cast(RECOMMENDATIONS.schema)


def build_hidden_discrepancies(hidden: pa.Table) -> pa.Table:
    """The discrepancies a body's admin hid from that body's list, as recorded (a screen filters by the date)."""
    return hidden.select(HIDDEN.schema.names).sort_by([(GMC, "ascending"), (HIDDEN.key[1], "ascending")]).cast(
        HIDDEN.schema)


def build_entities(raw: Mapping[str, pa.Table], carried: Carried | None = None) -> dict[str, pa.Table]:
    """Every entity of one batch from its conformed raw inputs (keyed by raw input name), with the GMC records
    `carried` forward from live where given (`carry_forward`)."""
    gmc = raw["gmc_doctors"] if carried is None else carried.gmc
    doctors = build_doctors(gmc, raw["tis_trainees"], raw["recommendation_records"])
    return {
        "doctors": doctors,
        "connections": build_connections(doctors, raw["connection_logs"]),
        "recommendations": build_recommendations(raw["recommendation_records"], doctors),
        "hidden_discrepancies": build_hidden_discrepancies(raw["hidden_discrepancy_records"]),
    }

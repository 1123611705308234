"""Typed table specs: raw inputs (with their wire names) and the four live entities.

A `Column` carries its canonical (snake_case) name, its Arrow type, the name the source
system sends it under, and how to parse and validate it. The wire-to-canonical mapping is
therefore explicit data, never a text substitution. Over 400 lines on purpose: it is the data model,
every table and column declared once, with its description, in one place a reviewer reads top to bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

import pyarrow as pa

from reval_assets.domain import enums
from reval_assets.domain.enums import values

GMC_NUMBER = "gmc_reference_number"  # a doctor's key, in every input and entity
DESIGNATED_BODY = "designated_body_code"
TIS_DESIGNATED_BODY = "tis_designated_body_code"
RECORD_COLUMN = "_record"  # a wire record's position in its input (`sources.base.WireInput`)


class Parse(StrEnum):
    """How a wire value (always text once read) becomes its typed value. Each accepts every spelling the
    original services send (`reference/real-formats.md`): the source turns Jackson arrays and Extended JSON
    into text first (`sources.json_values`), so one columnar parser serves every shape."""

    TEXT = "text"
    GMC_NUMBER = "gmc_number"  # exactly 7 digits (surrounding blanks trimmed)
    DATE = "date"  # dd/mm/yyyy (GMC), yyyy-mm-dd, or a date-time whose day is taken (Mongo's {"$date"})
    DATETIME = "datetime"  # yyyy-mm-ddThh:mm[:ss[.f{1,9}]][Z|±hh:mm]; an offset is made UTC, none kept as given
    INTEGER = "integer"
    BOOLEAN = "boolean"  # true or false, any case


_ARROW_TYPE = {
    Parse.TEXT: pa.string(),
    Parse.GMC_NUMBER: pa.string(),
    Parse.DATE: pa.date32(),
    Parse.DATETIME: pa.timestamp("us"),
    Parse.INTEGER: pa.int64(),
    Parse.BOOLEAN: pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    name: str
    wire: str
    parse: Parse = Parse.TEXT
    required: bool = False
    enum: type[Enum] | None = None  # its values are the canonical ones; every spelling of them is accepted
    free_text: bool = False  # tab, newline and carriage return are allowed in it (other control characters never)
    aliases: tuple[str, ...] = ()  # other wire names the real services send the same field under

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPE[self.parse]

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return None if self.enum is None else tuple(str(v) for v in values(self.enum))

    @property
    def wire_names(self) -> tuple[str, ...]:
        return (self.wire, *self.aliases)


@dataclass(frozen=True)
class RawSpec:
    """A raw input: one export file of the contract, in canonical names once conformed."""

    name: str
    file: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # empty: no uniqueness (connection logs are an event history)
    optional: bool = False  # the export may leave its file out: then the input is empty, and says so
    derives_missing_key: bool = False  # a record without its key gets a stable derived one (`domain.keys`)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


GMC_DOCTORS = RawSpec(
    name="gmc_doctors",
    file="doctors_for_db.json",
    key=("gmc_reference_number",),
    columns=(
        # A DoctorsForDB document keeps the GMC number as its Mongo `_id`.
        Column("gmc_reference_number", "gmcReferenceNumber", Parse.GMC_NUMBER, required=True, aliases=("_id",)),
        Column("doctor_first_name", "doctorFirstName"),
        Column("doctor_last_name", "doctorLastName"),
        Column("submission_date", "submissionDate", Parse.DATE),
        Column("date_added", "dateAdded", Parse.DATE),
        Column("under_notice", "underNotice", enum=enums.UnderNotice),
        Column("sanction", "sanction"),
        # The recommendation service's own status of the doctor (the screens' TIS status), in stored records.
        Column("doctor_status", "doctorStatus", enum=enums.RecommendationStatus),
        Column("designated_body_code", "designatedBodyCode"),
        Column("gmc_last_updated", "gmcLastUpdatedDateTime", Parse.DATETIME),
        # False: the GMC no longer returns the doctor (disconnected); absent means the GMC returned them.
        Column("exists_in_gmc", "existsInGmc", Parse.BOOLEAN),
    ),
)

TIS_TRAINEES = RawSpec(
    name="tis_trainees",
    file="trainee_info.json",
    key=("gmc_reference_number",),
    columns=(
        Column("tis_person_id", "tcsPersonId", Parse.INTEGER, required=True),
        Column("gmc_reference_number", "gmcReferenceNumber", Parse.GMC_NUMBER, required=True),
        Column("doctor_first_name", "doctorFirstName"),
        Column("doctor_last_name", "doctorLastName"),
        Column("programme_name", "programmeName"),
        Column("membership_type", "programmeMembershipType"),
        Column("programme_owner", "programmeOwner"),
        Column("tis_designated_body_code", "tcsDesignatedBody"),
        Column("placement_grade", "placementGrade"),
        Column("membership_start_date", "programmeMembershipStartDate", Parse.DATE),
        Column("membership_end_date", "programmeMembershipEndDate", Parse.DATE),
        Column("curriculum_end_date", "curriculumEndDate", Parse.DATE),
    ),
)

RECOMMENDATION_RECORDS = RawSpec(
    name="recommendation_records",
    file="recommendations.json",
    key=("recommendation_id",),
    derives_missing_key=True,
    columns=(
        # Legacy (pre-2020 snapshot) recommendations may have no id: they get a derived one (`domain.keys`).
        Column("recommendation_id", "id", aliases=("recommendationId", "_id")),
        Column("gmc_reference_number", "gmcNumber", Parse.GMC_NUMBER, required=True, aliases=("gmcReferenceNumber",)),
        Column("recommendation_type", "recommendationType", required=True, enum=enums.RecommendationType),
        Column(
            "recommendation_status", "recommendationStatus", required=True, enum=enums.RecommendationStatus
        ),
        Column("gmc_outcome", "outcome", enum=enums.GmcOutcome, aliases=("gmcOutcome",)),
        Column("gmc_submission_date", "gmcSubmissionDate", Parse.DATE),
        Column("actual_submission_date", "actualSubmissionDate", Parse.DATE),
        Column("deferral_date", "deferralDate", Parse.DATE),
        Column("deferral_reason", "deferralReason", enum=enums.DeferralReason),
        Column("deferral_sub_reason", "deferralSubReason", enum=enums.DeferralSubReason),
        Column("admin", "admin"),
    ),
)

CONNECTION_LOGS = RawSpec(
    name="connection_logs",
    file="connection_logs.json",
    key=(),
    columns=(
        Column("gmc_reference_number", "gmcId", Parse.GMC_NUMBER, required=True),
        Column("new_designated_body_code", "newDesignatedBodyCode"),
        Column("previous_designated_body_code", "previousDesignatedBodyCode"),
        Column("updated_by", "updatedBy"),
        Column("request_time", "requestTime", Parse.DATETIME, required=True, aliases=("eventDateTime",)),
        Column("reason", "reason", free_text=True),
        # None on a change the GMC nightly sync wrote: a real connection change all the same.
        Column("request_type", "requestType", enum=enums.ConnectionRequestType),
        Column("response_code", "responseCode"),
    ),
)

HIDDEN_DISCREPANCIES = RawSpec(
    name="hidden_discrepancy_records",
    file="hidden_discrepancies.json",
    key=("gmc_reference_number", "hidden_for_designated_body_code"),
    optional=True,
    columns=(
        Column("gmc_reference_number", "gmcId", Parse.GMC_NUMBER, required=True),
        Column("current_designated_body_code", "currentDesignatedBodyCode"),
        Column("programme_owner_designated_body_code", "programmeOwnerDesignatedBodyCode"),
        Column("hidden_for_designated_body_code", "hiddenForDesignatedBodyCode", required=True),
        Column("hidden_by", "hiddenBy"),
        Column("reason", "reason", free_text=True),
        Column("hidden_at", "hiddenDateTime", Parse.DATETIME),
        Column("hidden_until_date", "hiddenUntilDate", Parse.DATE),
    ),
)

RAW_SPECS: dict[str, RawSpec] = {
    s.name: s for s in (GMC_DOCTORS, TIS_TRAINEES, RECOMMENDATION_RECORDS, CONNECTION_LOGS, HIDDEN_DISCREPANCIES)
}

# The recommendation service's summary payload names its list either way; both are valid.
RECOMMENDATION_LIST_KEYS: tuple[str, ...] = ("recommendationInfo", "traineeInfo")


@dataclass(frozen=True)
class EntitySpec:
    """A live entity: one Parquet file per batch, one view in the live store."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    indexed: tuple[str, ...]  # the columns a screen looks rows up by
    # A screen's list, so the checks refuse it empty or shrunk (`non_empty`, `drift`). Hidden discrepancies are
    # an admin's choices: none, or fewer than yesterday, is a normal day.
    guarded: bool = True


DOCTORS = EntitySpec(
    name="doctors",
    key=("gmc_reference_number",),
    indexed=("gmc_reference_number", "designated_body_code", "tis_designated_body_code"),
    schema=pa.schema(
        [
            pa.field("gmc_reference_number", pa.string(), nullable=False),
            pa.field("tis_person_id", pa.int64()),
            pa.field("doctor_first_name", pa.string()),
            pa.field("doctor_last_name", pa.string()),
            pa.field("submission_date", pa.date32()),
            pa.field("date_added", pa.date32()),
            pa.field("under_notice", pa.string()),
            pa.field("sanction", pa.string()),
            pa.field("designated_body_code", pa.string()),
            pa.field("tis_designated_body_code", pa.string()),
            pa.field("programme_name", pa.string()),
            pa.field("programme_owner", pa.string()),
            pa.field("membership_type", pa.string()),
            pa.field("placement_grade", pa.string()),
            pa.field("membership_start_date", pa.date32()),
            pa.field("membership_end_date", pa.date32()),
            pa.field("curriculum_end_date", pa.date32()),
            pa.field("gmc_status", pa.string()),
            pa.field("tis_status", pa.string()),
            pa.field("exists_in_gmc", pa.bool_(), nullable=False),
            pa.field("last_updated", pa.timestamp("us")),
        ]
    ),
)

CONNECTIONS = EntitySpec(
    name="connections",
    key=("gmc_reference_number",),
    indexed=("gmc_reference_number", "designated_body_code"),
    schema=pa.schema(
        [
            pa.field("gmc_reference_number", pa.string(), nullable=False),
            pa.field("doctor_first_name", pa.string()),
            pa.field("doctor_last_name", pa.string()),
            pa.field("designated_body_code", pa.string()),
            pa.field("tis_designated_body_code", pa.string()),
            pa.field("programme_owner", pa.string()),
            pa.field("connection_status", pa.string(), nullable=False),
            pa.field("last_connection_change", pa.timestamp("us")),
            pa.field("last_updated_by", pa.string()),
            pa.field("is_discrepancy", pa.bool_(), nullable=False),
        ]
    ),
)

RECOMMENDATIONS = EntitySpec(
    name="recommendations",
    key=("recommendation_id",),
    indexed=("gmc_reference_number", "designated_body_code"),
    schema=pa.schema(
        [
            pa.field("gmc_reference_number", pa.string(), nullable=False),
            pa.field("recommendation_id", pa.string(), nullable=False),
            pa.field("recommendation_type", pa.string(), nullable=False),
            pa.field("recommendation_status", pa.string(), nullable=False),
            pa.field("gmc_outcome", pa.string()),
            pa.field("gmc_submission_date", pa.date32()),
            pa.field("actual_submission_date", pa.date32()),
            pa.field("deferral_date", pa.date32()),
            pa.field("deferral_reason", pa.string()),
            pa.field("deferral_sub_reason", pa.string()),
            pa.field("admin", pa.string()),
            # The trainee fields mapped on: the "recommendationInfo" the screen shows.
            pa.field("doctor_first_name", pa.string()),
            pa.field("doctor_last_name", pa.string()),
            pa.field("programme_name", pa.string()),
            pa.field("membership_type", pa.string()),
            pa.field("curriculum_end_date", pa.date32()),
            pa.field("designated_body_code", pa.string()),
            pa.field("under_notice", pa.string()),
        ]
    ),
)

# A body's admin hid the doctor's discrepancy from that body's list until `hidden_until_date` (the original's
# `hiddenDiscrepancy`): a screen joins `discrepancies` to it on the GMC number and its own body's code.
HIDDEN = EntitySpec(
    name="hidden_discrepancies",
    key=("gmc_reference_number", "hidden_for_designated_body_code"),
    indexed=("gmc_reference_number", "hidden_for_designated_body_code"),
    guarded=False,
    schema=pa.schema(
        [
            pa.field("gmc_reference_number", pa.string(), nullable=False),
            pa.field("hidden_for_designated_body_code", pa.string(), nullable=False),
            pa.field("hidden_until_date", pa.date32()),
            pa.field("hidden_by", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("hidden_at", pa.timestamp("us")),
            pa.field("current_designated_body_code", pa.string()),
            pa.field("programme_owner_designated_body_code", pa.string()),
        ]
    ),
)

# What each column of a raw input or entity holds, for people (the Dagster catalog's column descriptions). A column
# means the same wherever it appears, except where a "<table>.<column>" entry says otherwise.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "gmc_reference_number": "The doctor's GMC reference number (7 digits): their key in every input and entity",
    "doctor_first_name": "First name (the GMC's where it has one, else TIS's)",
    "doctor_last_name": "Last name (the GMC's where it has one, else TIS's)",
    "submission_date": "The GMC's date for the doctor's next revalidation submission",
    "date_added": "When the doctor was added to their designated body (GMC)",
    "under_notice": "Whether the doctor is under notice for revalidation: Yes, No or On Hold (GMC)",
    "sanction": "Any GMC sanction on the doctor",
    "doctor_status": "The recommendation service's status of the doctor, where the record carries it",
    "designated_body_code": "The designated body the doctor is connected to at the GMC; none when disconnected",
    "gmc_last_updated": "When the GMC last changed the doctor's record",
    "exists_in_gmc": "False when the GMC no longer returns the doctor (disconnected; kept with their history)",
    "tis_person_id": "The doctor's person id in TIS (TCS)",
    "programme_name": "Current training programme name(s) in TIS, joined with ' | '",
    "membership_type": "Programme membership type in TIS (only with one current programme)",
    "programme_owner": "The local office that owns the current programme in TIS",
    "tis_designated_body_code": "The designated body TIS connects the doctor to",
    "placement_grade": "Current placement grade(s) in TIS",
    "membership_start_date": "Start of the current programme membership (TIS)",
    "membership_end_date": "End of the current programme membership (TIS)",
    "curriculum_end_date": "The latest curriculum end date (TIS)",
    "recommendation_id": "The recommendation's id (`derived-…` for a legacy record that had none)",
    "recommendation_type": "REVALIDATE, DEFER or NON_ENGAGEMENT",
    "recommendation_status": "Where the recommendation is in its workflow",
    "gmc_outcome": "The GMC's decision on a submitted recommendation",
    "gmc_submission_date": "The GMC submission due date the recommendation is for",
    "actual_submission_date": "When the recommendation was submitted to the GMC",
    "deferral_date": "The new submission date of a deferral",
    "deferral_reason": "Why the revalidation was deferred",
    "deferral_sub_reason": "The detail of the deferral reason",
    "admin": "The admin who made the recommendation",
    "new_designated_body_code": "The body the doctor is connected to after the change (none: disconnected)",
    "previous_designated_body_code": "The body the doctor was connected to before the change",
    "updated_by": "Who made the change (an admin, or the GMC sync)",
    "request_time": "When the change was requested",
    "request_type": "ADD or REMOVE; none for a change the GMC nightly sync wrote",
    "response_code": "The GMC's response code to the request ('0': done)",
    "connection_logs.reason": "The reason code or text given for the connection change",
    "reason": "Why the admin hid the discrepancy",
    "current_designated_body_code": "The doctor's GMC designated body when the discrepancy was hidden",
    "programme_owner_designated_body_code": "The programme owner's designated body when it was hidden",
    "hidden_for_designated_body_code": "The body whose list the discrepancy is hidden from",
    "hidden_by": "The admin who hid the discrepancy",
    "hidden_at": "When the discrepancy was hidden",
    "hidden_until_date": "The last day it stays hidden; none: until it is shown again",
    "gmc_status": "The GMC outcome of the doctor's latest recommendation",
    "tis_status": "The recommendation status of the doctor (the service's own, else their latest recommendation's; "
                  "not started without one)",
    "last_updated": "When the GMC last changed the doctor's record",
    "connection_status": "CONNECTED (the GMC returns the doctor with a designated body) or DISCONNECTED",
    "last_connection_change": "When the doctor's connection last changed successfully",
    "last_updated_by": "Who made that change",
    "is_discrepancy": "The GMC and TIS designated bodies differ (or only one side has one)",
}


def column_description(table: str, column: str) -> str:
    """`COLUMN_DESCRIPTIONS` of a table's column; KeyError for a column that has none."""
    described = COLUMN_DESCRIPTIONS.get(f"{table}.{column}") or COLUMN_DESCRIPTIONS.get(column)
    if described is None:
        raise KeyError(f"column {column!r} of {table} has no entry in COLUMN_DESCRIPTIONS "
                       "(reval_assets/domain/schemas.py): add what it holds")
    return described


# The doctor's fields mapped onto each of their recommendations (traineeInfo → the screen's recommendationInfo).
MAPPED_TRAINEE_FIELDS: tuple[str, ...] = (
    "doctor_first_name",
    "doctor_last_name",
    "programme_name",
    "membership_type",
    "curriculum_end_date",
    DESIGNATED_BODY,
    "under_notice",
)
# Those mapping_coverage requires filled. Not under_notice (measured from the doctors' side instead), nor the
# membership type and curriculum end, which TCS leaves null by design for a trainee with several programmes.
COVERED_TRAINEE_FIELDS: tuple[str, ...] = tuple(
    f for f in MAPPED_TRAINEE_FIELDS if f not in ("under_notice", "membership_type", "curriculum_end_date"))

ENTITY_SPECS: dict[str, EntitySpec] = {s.name: s for s in (DOCTORS, CONNECTIONS, RECOMMENDATIONS, HIDDEN)}
ENTITIES: tuple[str, ...] = tuple(ENTITY_SPECS)
GUARDED_ENTITIES: tuple[str, ...] = tuple(name for name, spec in ENTITY_SPECS.items() if spec.guarded)
RAW_ENTITIES: tuple[str, ...] = tuple(RAW_SPECS)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("input", pa.string()),  # raw entity name
        pa.field("origin", pa.string()),  # file path or "synthetic"
        pa.field("record", pa.int64()),  # position of the record in its input
        # the record's GMC number where it reads as one: the build keeps that doctor's last good row
        pa.field("gmc_reference_number", pa.string()),
        pa.field("field", pa.string()),  # wire name of the offending field
        pa.field("value", pa.string()),
        pa.field("code", pa.string()),  # an `enums.QuarantineReason`, which the checks count by
        pa.field("problem", pa.string()),  # the same, for people
        pa.field("allowed", pa.list_(pa.string())),  # for an unknown value: the values the schema allows
        pa.field("record_json", pa.string()),  # the whole record, so nothing is lost (on its first row only)
    ]
)

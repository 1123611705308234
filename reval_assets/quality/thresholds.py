"""The one threshold model of the blocking checks: every threshold, its safe default and its doc.

The Dagster config of candidate_checks (`assets.checks.ThresholdsConfig`) is generated from
these fields, so a new threshold is one edit here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _threshold(default: object, doc: str) -> object:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Thresholds:
    """Every threshold in one place, with safe defaults; each check shows the ones it applied.

    Exposed field by field on the `candidate_checks` Dagster config, so an operator can change
    them for one run, or check a staged candidate again with others. `allow_drift_reason` is not
    a threshold but the one override: a known large change goes live only with a recorded reason,
    never by default.
    """

    min_rows: int = _threshold(1, "Fewest rows each entity may have.")
    min_mapping_coverage: float = _threshold(
        0.80, "Lowest share of recommendation rows with every mapped trainee field filled.")
    min_under_notice_coverage: float = _threshold(
        0.50, "Lowest share of under-notice doctors that have a recommendation row.")
    max_coverage_drop_points: float = _threshold(
        5.0, "Most a coverage may fall against live, in percentage points.")
    max_drift_loss_share: float = _threshold(
        0.05, "Largest share of its live rows an entity, or a designated body, may lose.")
    min_drift_rows: int = _threshold(
        10, "A loss of fewer rows than this never fails on its share alone (tiny bodies).")
    max_unknown_enum_records: int = _threshold(
        0, "Source records with an enum value the schema does not know (quarantined) tolerated.")
    max_duplicate_key_records: int = _threshold(
        0, "Source records sharing a key (quarantined) tolerated; TIS persons' GMC numbers have their own budget.")
    max_tis_gmc_number_records: int = _threshold(
        50, "TIS persons quarantined for their free-text GMC number (blank, malformed, or shared by two persons, "
        "never merged) tolerated: a handful is normal in the real TIS.")
    max_unmatched_records: int = _threshold(
        0, "Recommendations and current connections for a doctor not in the export tolerated.")
    max_export_age_hours: float = _threshold(48.0, "Oldest the source export may be, in hours.")
    max_quarantine_share: float = _threshold(
        0.01, "Largest share of any input that may be quarantined (of the records landed: in a partial re-sync, "
        "its batches').")
    allow_drift_reason: str = _threshold(
        "", "Lets a known large drift through; recorded in the check and the audit. Empty: never.")

    def __post_init__(self) -> None:
        shares = ("min_mapping_coverage", "min_under_notice_coverage", "max_drift_loss_share", "max_quarantine_share")
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"threshold {name} must be a share between 0 and 1, not {getattr(self, name)!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in shares and isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"threshold {f.name} must not be negative, not {value!r}")

    def changed(self) -> dict[str, float | int | str]:
        """The values that differ from the defaults (what an audit of a check run records)."""
        default = Thresholds()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def metadata(self, *names: str) -> dict[str, float | int | str]:
        return {f"threshold_{name}": getattr(self, name) for name in names}

    @classmethod
    def docs(cls) -> dict[str, str]:
        return {f.name: f.metadata["doc"] for f in fields(cls)}

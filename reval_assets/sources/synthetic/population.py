"""The clean population: people, GMC doctors, TIS trainees, recommendations, connection logs (`connections`) and
hidden discrepancies, each generated column by column with numpy and Arrow kernels (no Python loop per record).

The clean population has what the real services send that looks odd but is not a fault: doctors
the GMC no longer returns (`existsInGmc` false, no designated body), connection changes written
by the GMC nightly sync (no requestType, reason or responseCode) and hidden discrepancies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.domain.enums import GmcOutcome, RecommendationStatus, RecommendationType
from reval_assets.domain.schemas import HIDDEN_DISCREPANCIES, RAW_SPECS
from reval_assets.sources.synthetic.connections import connection_logs
from reval_assets.sources.synthetic.vocabulary import (
    _CURRENT_REASON_WEIGHTS,
    _DISCREPANCY_SHARE,
    _GMC_DISCONNECTED_SHARE,
    _GRADE_BANDS,
    _HIDDEN_DISCREPANCY_SHARE,
    _HIDDEN_EXPIRED_SHARE,
    _HISTORIC_REASON_WEIGHTS,
    _IN_PROGRESS,
    _MEMBERSHIP_SPLIT,
    _MEMBERSHIP_WEIGHTS,
    _MULTI_PROGRAMME_SHARE,
    _OWNER_WEIGHTS,
    _RECOMMENDATIONS_PER_DOCTOR,
    _REJECTED_SHARE,
    _SANCTION_WEIGHTS,
    _STATUS_WEIGHTS,
    _TYPE_WEIGHTS,
    _UNDER_NOTICE_WEIGHTS,
    _WITH_SUB_REASON,
    ADMINS,
    DEFERRAL_REASONS,
    DEFERRAL_SUB_REASONS,
    FIRST_NAMES,
    HIDDEN_REASONS,
    LAST_NAMES,
    MEMBERSHIP_TYPES,
    NOT_UNDER_NOTICE,
    OUTCOMES,
    OWNERS,
    PROGRAMMES,
    RECOMMENDATION_TYPES,
    SANCTIONS,
    STATUSES,
    UNDER_NOTICE,
    owners_of,
)
from reval_assets.sources.synthetic.wire import (
    _DAY,
    Tables,
    _as_bool,
    _by_group,
    _dates,
    _datetimes,
    _days,
    _days_back,
    _expand,
    _hex_ids,
    _numbers,
    _other_body,
    _text,
    _uniform_days,
    _weighted,
    _wire_table,
)

_GMC_LOW, _GMC_HIGH = 1_000_000, 9_999_999
MAX_DOCTORS = _GMC_HIGH - _GMC_LOW  # one number is always kept back for the orphan fault
_APPROVED, _REJECTED, _UNDER_REVIEW = (OUTCOMES.index(o.value) for o in GmcOutcome)


@dataclass(frozen=True)
class _People:
    """One row per person: which systems know them and the facts both systems share."""

    gmc_number: np.ndarray  # int64, unique
    in_gmc: np.ndarray  # bool
    in_tis: np.ndarray  # bool
    owner: np.ndarray  # programme owner index, -1 when several current programmes
    gmc_body: np.ndarray  # GMC designated body index (meaningful where in_gmc)
    first_name: np.ndarray
    last_name: np.ndarray
    under_notice: np.ndarray  # index into UNDER_NOTICE
    submission_day: np.ndarray  # GMC submission date, days since 1970
    added_day: np.ndarray  # date added to the designated body
    orphan_number: int  # a valid GMC number held by nobody
    as_of: int  # the reference day, days since 1970
    # In GMC, but the GMC no longer returns them (`existsInGmc` false); see `_disconnect`.
    gmc_disconnected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # The designated-body codes the indices above point into, and each one's programme owner.
    codes: tuple[str, ...] = PROD_CODES
    owners: tuple[str, ...] = OWNERS


def _people(rng: np.random.Generator, n: int, as_of: int, codes: Sequence[str] = PROD_CODES) -> _People:
    codes = tuple(codes)
    owners = owners_of(codes)
    numbers = rng.choice(_GMC_HIGH - _GMC_LOW + 1, size=n + 1, replace=False).astype(np.int64) + _GMC_LOW
    split = _weighted(rng, _MEMBERSHIP_SPLIT, n)
    in_gmc, in_tis = split != 2, split != 1
    home = _weighted(rng, [_OWNER_WEIGHTS.get(o, 5) for o in owners], n)
    discrepant = (split == 0) & (rng.random(n) < _DISCREPANCY_SHARE)
    gmc_body = np.where(discrepant, _other_body(rng, home, len(codes)), home)
    owner = np.where(in_tis & (rng.random(n) < _MULTI_PROGRAMME_SHARE), -1, home)
    under_notice = _weighted(rng, _UNDER_NOTICE_WEIGHTS, n)
    due_soon = _uniform_days(rng, 0, 120, n)
    due_later = _uniform_days(rng, 121, 5 * 365, n)
    return _People(
        gmc_number=numbers[:n],
        in_gmc=in_gmc,
        in_tis=in_tis,
        owner=owner,
        gmc_body=gmc_body,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        under_notice=under_notice,
        submission_day=as_of + np.where(under_notice != NOT_UNDER_NOTICE, due_soon, due_later),
        added_day=as_of - _uniform_days(rng, 1, 8 * 365, n),
        orphan_number=int(numbers[n]),
        as_of=as_of,
        codes=codes,
        owners=owners,
    )


def _disconnect(rng: np.random.Generator, people: _People) -> _People:
    """Mark a small share of GMC doctors as no longer returned by the GMC, from its own stream (`rng`), so
    every other draw of the population (and so its row counts) stays as it was."""
    chosen = people.in_gmc & (rng.random(len(people.gmc_number)) < _GMC_DISCONNECTED_SHARE)
    return replace(people, gmc_disconnected=chosen)


def _gmc_doctors(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    rows = np.flatnonzero(people.in_gmc)
    n = len(rows)
    updated = as_of * _DAY - rng.integers(1, 365 * _DAY, size=n)
    disconnected = people.gmc_disconnected[rows]
    table = _wire_table(
        RAW_SPECS["gmc_doctors"],
        {
            "gmcReferenceNumber": _numbers(people.gmc_number[rows]),
            "doctorFirstName": _text(people.first_name[rows], FIRST_NAMES),
            "doctorLastName": _text(people.last_name[rows], LAST_NAMES),
            "submissionDate": _dates(people.submission_day[rows], "%d/%m/%Y"),
            "dateAdded": _dates(people.added_day[rows], "%d/%m/%Y"),
            "underNotice": _text(people.under_notice[rows], UNDER_NOTICE),
            "sanction": _text(_weighted(rng, _SANCTION_WEIGHTS, n), SANCTIONS),
            "designatedBodyCode": _text(people.gmc_body[rows], people.codes),
            "gmcLastUpdatedDateTime": _datetimes(updated),
            "existsInGmc": _text(~disconnected, ("false", "true")),
        },
    )
    # The GMC no longer returns a disconnected doctor, so they have no designated body there.
    body = pc.if_else(pa.array(disconnected), pa.scalar(None, pa.string()), table["designatedBodyCode"])
    return table.set_column(table.schema.get_field_index("designatedBodyCode"), "designatedBodyCode", body)


def _programme_names(rng: np.random.Generator, programme: np.ndarray, several: np.ndarray) -> pa.Array:
    """Programme names; trainees with several current programmes get them joined with " | "."""
    names = [name for name, _, _ in PROGRAMMES]
    second = (programme + rng.integers(1, len(PROGRAMMES), size=len(programme))) % len(PROGRAMMES)
    first_name, second_name = _text(programme, names), _text(second, names)
    joined = pc.binary_join_element_wise(first_name, second_name, " | ")
    return pc.if_else(pa.array(several), joined, first_name)


def _placement_grades(rng: np.random.Generator, programme: np.ndarray) -> pa.Array:
    grades = sorted({g for band in _GRADE_BANDS.values() for g in band})
    band_of_programme = [band for _, band, _ in PROGRAMMES]
    pick = rng.random(len(programme))
    grade = np.zeros(len(programme), dtype=np.int64)
    for band, members in _GRADE_BANDS.items():  # a loop over five bands, not over records
        in_band = np.isin(programme, [i for i, b in enumerate(band_of_programme) if b == band])
        lookup = np.array([grades.index(g) for g in members])
        grade[in_band] = lookup[(pick[in_band] * len(members)).astype(np.int64)]
    return _text(grade, grades, null=rng.random(len(programme)) < 0.01)


def _tis_trainees(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    rows = np.flatnonzero(people.in_tis)
    n = len(rows)
    owner = people.owner[rows]
    several = owner < 0
    programme = _weighted(rng, [w for _, _, w in PROGRAMMES], n)
    person_ids = rng.choice(max(4_000_000, 2 * n), size=n, replace=False).astype(np.int64) + 100_000
    end = as_of + _uniform_days(rng, -60, 5 * 365, n)
    start = end - _uniform_days(rng, 365, 6 * 365, n)
    extended = rng.random(n) < 0.3
    curriculum_end = end + np.where(extended, _uniform_days(rng, 1, 730, n), 0)
    return _wire_table(
        RAW_SPECS["tis_trainees"],
        {
            "tcsPersonId": _numbers(person_ids),
            "gmcReferenceNumber": _numbers(people.gmc_number[rows]),
            "doctorFirstName": _text(people.first_name[rows], FIRST_NAMES),
            "doctorLastName": _text(people.last_name[rows], LAST_NAMES),
            "programmeName": _programme_names(rng, programme, several),
            "programmeMembershipType": _text(_weighted(rng, _MEMBERSHIP_WEIGHTS, n), MEMBERSHIP_TYPES),
            "programmeOwner": _text(np.maximum(owner, 0), people.owners, null=several),
            "tcsDesignatedBody": _text(np.maximum(owner, 0), people.codes, null=several),
            "placementGrade": _placement_grades(rng, programme),
            "programmeMembershipStartDate": _dates(start, "%Y-%m-%d"),
            "programmeMembershipEndDate": _dates(end, "%Y-%m-%d"),
            "curriculumEndDate": _dates(curriculum_end, "%Y-%m-%d"),
        },
    )


def _recommendations(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    doctors = np.flatnonzero(people.in_gmc)
    notice = people.under_notice[doctors] != NOT_UNDER_NOTICE
    counts = _weighted(rng, _RECOMMENDATIONS_PER_DOCTOR, len(doctors))
    counts = np.where(notice, np.maximum(counts, 1), counts)
    doctor, position = _expand(counts)
    person = doctors[doctor]
    age = counts[doctor] - 1 - position  # 0 for the latest recommendation
    history = np.where(age > 0, 2, np.where(notice[doctor], 0, 1))
    keys = ("under_notice_latest", "latest", "older")
    status = _by_group(rng, history, {i: _STATUS_WEIGHTS[k] for i, k in enumerate(keys)})
    in_progress = np.isin(status, [STATUSES.index(s) for s in _IN_PROGRESS])
    submitted = status == STATUSES.index(RecommendationStatus.SUBMITTED_TO_GMC.value)
    completed = status == STATUSES.index(RecommendationStatus.COMPLETED.value)
    n = len(person)
    still_open = np.zeros(len(doctors), dtype=bool)  # the doctor's latest recommendation is not completed
    still_open[doctor[age == 0]] = (in_progress | submitted)[age == 0]
    # At most 1000 + 3 * 1000 days back from the reference day: revalidation began in December 2012.
    completed_day = as_of - _uniform_days(rng, 30, 1000, len(doctors))
    latest_day = np.where(still_open, people.submission_day[doctors], completed_day)[doctor]
    gmc_day = latest_day - _days_back(rng, doctor, age, len(_RECOMMENDATIONS_PER_DOCTOR) - 1, (365, 1000))
    actual_day = np.minimum(gmc_day - _uniform_days(rng, 0, 60, n), as_of - _uniform_days(rng, 0, 30, n))
    rec_type = _weighted(rng, _TYPE_WEIGHTS, n)
    deferred = rec_type == RECOMMENDATION_TYPES.index(RecommendationType.DEFER.value)
    reason = _by_group(rng, (age > 0).astype(np.int64), {0: _CURRENT_REASON_WEIGHTS, 1: _HISTORIC_REASON_WEIGHTS})
    rejected = rng.random(n) < _REJECTED_SHARE
    outcome = np.where(completed, np.where(rejected, _REJECTED, _APPROVED), _UNDER_REVIEW)
    created_day = np.minimum(gmc_day - _uniform_days(rng, 60, 200, n), as_of - 1)  # when it was started
    created = created_day * _DAY + rng.integers(0, _DAY, n)
    not_started = STATUSES.index(RecommendationStatus.NOT_STARTED.value)
    counter = rng.integers(0, 2**31) + np.arange(n, dtype=np.int64)  # unique, never 0xffffffff
    return _wire_table(
        RAW_SPECS["recommendation_records"],
        {
            "id": _hex_ids(created, rng.integers(0, 2**32, n), counter),
            "gmcNumber": _numbers(people.gmc_number[person]),
            "recommendationType": _text(rec_type, RECOMMENDATION_TYPES),
            "recommendationStatus": _text(status, STATUSES),
            "outcome": _text(outcome, OUTCOMES, null=in_progress),
            "gmcSubmissionDate": _dates(gmc_day, "%Y-%m-%d"),
            "actualSubmissionDate": _dates(actual_day, "%Y-%m-%d", null=in_progress),
            "deferralDate": _dates(gmc_day + _uniform_days(rng, 120, 365, n), "%Y-%m-%d", null=~deferred),
            "deferralReason": _text(reason, DEFERRAL_REASONS, null=~deferred),
            "deferralSubReason": _text(
                rng.integers(0, len(DEFERRAL_SUB_REASONS), n), DEFERRAL_SUB_REASONS,
                null=~deferred | (reason != _WITH_SUB_REASON),
            ),
            "admin": _text(rng.integers(0, len(ADMINS), n), ADMINS, null=status == not_started),
        },
    )


def _hidden_discrepancies(rng: np.random.Generator, people: _People, tables: Tables, as_of: int) -> pa.Table:
    """For a few doctors whose TIS body differs from their GMC body, an admin of one of the two bodies hid the
    discrepancy from that body's list until a day, mostly still to come. The bodies are read from the
    generated GMC and TIS tables, so they are the codes those tables send."""
    gmc_row, tis_row = np.cumsum(people.in_gmc) - 1, np.cumsum(people.in_tis) - 1
    both = np.flatnonzero(people.in_gmc & people.in_tis)
    gmc_body = tables["gmc_doctors"]["designatedBodyCode"].take(pa.array(gmc_row[both]))
    tis_body = tables["tis_trainees"]["tcsDesignatedBody"].take(pa.array(tis_row[both]))
    differ = np.flatnonzero(_as_bool(pc.not_equal(gmc_body, tis_body)))  # both known, and not the same
    pick = rng.random(len(differ))
    hide = pick < _HIDDEN_DISCREPANCY_SHARE
    if len(differ) and not hide.any():  # a small population still shows one; larger ones keep their draws
        hide[np.argmin(pick)] = True
    chosen = differ[hide]
    n = len(chosen)
    gmc_body, tis_body = gmc_body.take(pa.array(chosen)), tis_body.take(pa.array(chosen))
    hidden_for = pc.if_else(pa.array(rng.random(n) < 0.5), gmc_body, tis_body)
    hidden_day = as_of - _uniform_days(rng, 2, 180, n)
    hidden_at = hidden_day * _DAY + rng.integers(8 * 3600, 18 * 3600, n)
    expired = rng.random(n) < _HIDDEN_EXPIRED_SHARE
    until_past = hidden_day + 1 + (rng.random(n) * (as_of - hidden_day - 1)).astype(np.int64)  # before as_of
    until = np.where(expired, until_past, as_of + _uniform_days(rng, 1, 365, n))
    return _wire_table(
        HIDDEN_DISCREPANCIES,
        {
            "gmcId": _numbers(people.gmc_number[both[chosen]]),
            "currentDesignatedBodyCode": gmc_body.combine_chunks() if n else pa.array([], pa.string()),
            "programmeOwnerDesignatedBodyCode": tis_body.combine_chunks() if n else pa.array([], pa.string()),
            "hiddenForDesignatedBodyCode": hidden_for.combine_chunks() if n else pa.array([], pa.string()),
            "hiddenBy": _text(rng.integers(0, len(ADMINS), n), ADMINS),
            "reason": _text(rng.integers(0, len(HIDDEN_REASONS), n), HIDDEN_REASONS),
            "hiddenDateTime": _datetimes(hidden_at),
            "hiddenUntilDate": _dates(until, "%Y-%m-%d"),
        },
    )




def clean_population(
    seed: int, doctors: int, as_of: date, codes: Sequence[str] = PROD_CODES
) -> tuple[_People, Tables]:
    """The people and every raw input's clean table, from the seed's streams 0 (the population) and 2
    (the doctors the GMC no longer returns)."""
    rng = np.random.default_rng([seed, 0])
    day = _days(as_of)
    people = _people(rng, doctors, day, codes)
    people = _disconnect(np.random.default_rng([seed, 2]), people)
    generators = {
        "gmc_doctors": _gmc_doctors,
        "tis_trainees": _tis_trainees,
        "recommendation_records": _recommendations,
        "connection_logs": connection_logs,
    }
    tables = {name: make(rng, people, day) for name, make in generators.items()}
    tables[HIDDEN_DISCREPANCIES.name] = _hidden_discrepancies(rng, people, tables, day)
    return people, tables

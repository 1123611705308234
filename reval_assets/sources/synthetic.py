"""A seeded, realistic synthetic population, in the wire format of the original systems.

Every raw input is generated column by column with numpy and Arrow kernels (no Python loop
per record), so a million doctors take seconds. Values are text exactly as the source
systems send them (GMC dates `dd/mm/yyyy`, TIS and recommendation dates ISO), so the data
goes through the same `conform` step as real export files.

Dates are relative to a fixed reference day (`AS_OF`, the day of the incident) rather than
today, so the same parameters give the same tables on any day and the fingerprint is stable.

The clean population has what the real services send that looks odd but is not a fault: doctors
the GMC no longer returns (`existsInGmc` false, no designated body), connection changes written
by the GMC nightly sync (no requestType, reason or responseCode) and hidden discrepancies.

Named faults (`SyntheticSource.FAULTS`) are small deterministic edits applied on top of the
clean population, drawn from their own random stream, so switching a fault on never changes
the clean records it does not touch. `SyntheticSource.REALISTIC_FAULTS` are real-world oddities
(legacy null ids, free-text GMC numbers in TIS) that a release must absorb, not be blocked by.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.designated_bodies import PROD_CODES, owner_of_designated_body
from reval_assets.domain.schemas import (
    HIDDEN_DISCREPANCIES,
    MAPPED_TRAINEE_FIELDS,
    RAW_SPECS,
    RECORD_COLUMN,
    RawSpec,
)
from reval_assets.sources.base import WireInput

GENERATOR_VERSION = "2"  # 2: disconnected doctors, GMC-sync connection logs, hidden discrepancies
AS_OF = date(2023, 12, 11)
ORIGIN = "synthetic"

_EPOCH = date(1970, 1, 1)
_DAY = 86_400
_GMC_LOW, _GMC_HIGH = 1_000_000, 9_999_999
_MAX_DOCTORS = _GMC_HIGH - _GMC_LOW  # one number is always kept back for the orphan fault

# --- reference lists -------------------------------------------------------------------------

def owners_of(codes: Sequence[str]) -> tuple[str, ...]:
    """The programme owner TIS sends with each code: its local office (a code in no table stands for itself)."""
    return tuple(owner_of_designated_body(code) or code for code in codes)


# The owner of each production code, in `PROD_CODES` order (a source's own list: `SyntheticSource.owners`).
OWNERS: tuple[str, ...] = owners_of(PROD_CODES)
# Relative size of each local office (uneven, roughly by trainee numbers); unknown owners get 5.
_OWNER_WEIGHTS = {
    "Kent, Surrey and Sussex": 8,
    "North Central and East London": 9,
    "North West London": 6,
    "South London": 7,
    "East of England": 9,
    "East Midlands": 7,
    "West Midlands": 10,
    "Yorkshire and the Humber": 10,
    "North East": 5,
    "North West": 12,
    "Thames Valley": 4,
    "Wessex": 5,
    "South West": 7,
    "Northern Ireland Medical and Dental Training Agency": 3,
}

FIRST_NAMES = (
    "Aisha", "Alice", "Amelia", "Amir", "Ana", "Andrew", "Anna", "Ben", "Catherine", "Charlotte",
    "Chen", "Chloe", "Daniel", "David", "Deepa", "Elena", "Emily", "Emma", "Fatima", "Grace",
    "Hannah", "Harry", "Hassan", "Isabel", "Jack", "James", "Jessica", "John", "Joseph", "Kavya",
    "Laura", "Li", "Lucy", "Maria", "Mark", "Matthew", "Mei", "Michael", "Mohammed", "Nadia",
    "Naomi", "Nikhil", "Oliver", "Olivia", "Omar", "Priya", "Rachel", "Rahul", "Rebecca", "Rhys",
    "Samuel", "Sarah", "Sean", "Sophie", "Thomas", "Tom", "Wei", "William", "Yusuf", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Ahmed", "Ali", "Allen", "Bailey", "Baker", "Begum", "Bell", "Brown", "Campbell",
    "Chan", "Chowdhury", "Clarke", "Cooper", "Davies", "Edwards", "Evans", "Fernandes", "Fraser", "Gill",
    "Green", "Griffiths", "Hall", "Harris", "Hughes", "Hussain", "Iqbal", "Jackson", "James", "Jones",
    "Kaur", "Khan", "King", "Kumar", "Lee", "Lewis", "Martin", "Mensah", "Mitchell", "Moore",
    "Morgan", "Murphy", "Nguyen", "O'Brien", "Okafor", "Owen", "Parker", "Patel", "Phillips", "Price",
    "Rahman", "Roberts", "Robinson", "Scott", "Shah", "Singh", "Smith", "Taylor", "Thomas", "Thompson",
    "Turner", "Walker", "Wang", "Ward", "Watson", "White", "Williams", "Wilson", "Wood", "Wright",
)  # fmt: skip
ADMINS = tuple(
    f"{first}.{last}@hee.nhs.uk"
    for first, last in (
        ("amy", "fletcher"), ("ben", "hart"), ("carla", "mendes"), ("dan", "osei"), ("ella", "reid"),
        ("femi", "adeyemi"), ("gemma", "lowe"), ("harriet", "nash"), ("imran", "qureshi"), ("jo", "bates"),
        ("kate", "dunn"), ("leo", "marsh"), ("mina", "patel"), ("nick", "shaw"), ("orla", "byrne"),
        ("paul", "young"), ("ruth", "kerr"), ("sam", "holt"), ("tara", "singh"), ("vic", "lamb"),
    )
)  # fmt: skip

# Grade bands: which placement grades a programme's trainees hold.
_GRADE_BANDS = {
    "foundation": ("F1", "F2", "F2", "F2"),
    "core": ("CT1", "CT2", "CT3"),
    "gp": ("ST1", "ST2", "ST3"),
    "run_through": ("ST1", "ST2", "ST3", "ST4", "ST5", "ST6", "ST7", "ST8"),
    "higher": ("ST3", "ST4", "ST5", "ST6", "ST7", "ST8"),
}
# (programme name, grade band, relative weight)
PROGRAMMES: tuple[tuple[str, str, int], ...] = (
    ("General Practice", "gp", 30),
    ("Foundation Programme", "foundation", 12),
    ("Core Surgical Training", "core", 5),
    ("Internal Medicine Training", "core", 8),
    ("Core Psychiatry Training", "core", 3),
    ("Acute Care Common Stem - Anaesthetics", "core", 3),
    ("Anaesthetics", "higher", 5),
    ("Paediatrics", "run_through", 5),
    ("Obstetrics and Gynaecology", "run_through", 4),
    ("Emergency Medicine", "higher", 4),
    ("General Surgery", "higher", 4),
    ("Trauma and Orthopaedic Surgery", "higher", 3),
    ("Cardiology", "higher", 3),
    ("Gastroenterology", "higher", 2),
    ("Respiratory Medicine", "higher", 2),
    ("Geriatric Medicine", "higher", 3),
    ("General Psychiatry", "higher", 3),
    ("Histopathology", "run_through", 2),
    ("Clinical Radiology", "run_through", 3),
    ("Ophthalmology", "run_through", 2),
)
MEMBERSHIP_TYPES = ("Substantive", "LAT", "Military", "Visitor")
_MEMBERSHIP_WEIGHTS = (0.88, 0.05, 0.02, 0.05)

UNDER_NOTICE = ("No", "Yes", "On Hold")
_UNDER_NOTICE_WEIGHTS = (0.88, 0.09, 0.03)
SANCTIONS = ("No", "Yes")
_SANCTION_WEIGHTS = (0.985, 0.015)

# Share of people in both systems, in GMC only and in TIS only.
_MEMBERSHIP_SPLIT = (0.93, 0.035, 0.035)
_DISCREPANCY_SHARE = 0.06  # of doctors in both, whose GMC body differs from the programme owner's
_MULTI_PROGRAMME_SHARE = 0.02  # of trainees: several current programmes, so no single owner

RECOMMENDATION_TYPES = ("REVALIDATE", "DEFER", "NON_ENGAGEMENT")
_TYPE_WEIGHTS = (0.83, 0.14, 0.03)
STATUSES = ("NOT_STARTED", "STARTED", "READY_TO_REVIEW", "READY_TO_SUBMIT", "SUBMITTED_TO_GMC", "COMPLETED", "DRAFT")
_IN_PROGRESS = ("NOT_STARTED", "STARTED", "READY_TO_REVIEW", "READY_TO_SUBMIT", "DRAFT")
_STATUS_WEIGHTS = {  # by the recommendation's place in the doctor's history
    "under_notice_latest": (0.15, 0.2, 0.15, 0.15, 0.22, 0.03, 0.1),
    "latest": (0.05, 0.05, 0.03, 0.02, 0.08, 0.75, 0.02),
    "older": (0, 0, 0, 0, 0.05, 0.95, 0),
}
OUTCOMES = ("Approved", "Rejected", "Under Review")
_RECOMMENDATIONS_PER_DOCTOR = (0.2, 0.35, 0.25, 0.13, 0.07)  # 0..4
DEFERRAL_REASONS = tuple(str(code) for code in range(1, 10))
_CURRENT_REASON_WEIGHTS = (0.6, 0.4, 0, 0, 0, 0, 0, 0, 0)
_HISTORIC_REASON_WEIGHTS = (0.35, 0.25) + (0.4 / 7,) * 7
DEFERRAL_SUB_REASONS = tuple(str(code) for code in range(1, 9))

# Connection histories: (requestType, new body, previous body, failed) per event, where a body is
# a symbol: None, "cur" (the current GMC body), "X" or "Y" (earlier bodies, X != cur, Y != X).
_ConnectionEvent = tuple[str, str | None, str | None, bool]
_HISTORIES: tuple[tuple[_ConnectionEvent, ...], ...] = (
    (("ADD", "cur", None, False),),
    (("ADD", "X", None, False), ("ADD", "cur", "X", False)),  # transferred
    (("ADD", "cur", None, True), ("ADD", "cur", None, False)),  # GMC refused once, then accepted
    (("ADD", "X", None, False), ("REMOVE", None, "X", False), ("ADD", "cur", None, False)),  # left, rejoined
    (("ADD", "Y", None, False), ("ADD", "X", "Y", False), ("ADD", "cur", "X", False)),  # transferred twice
    (("ADD", "X", None, False), ("REMOVE", None, "X", False)),  # disconnected (TIS only)
)
_CONNECTED_HISTORY_WEIGHTS = (0.6, 0.27, 0.03, 0.05, 0.05, 0)
_DISCONNECTED_HISTORY = 5
_DISCONNECTED_WITH_HISTORY_SHARE = 0.5  # of TIS-only doctors
_BODY_SYMBOLS = (None, "cur", "X", "Y")
_ADD_REASON_WEIGHTS = (0.9, 0.1, 0)
_REMOVE_REASON_WEIGHTS = (0.1, 0.3, 0.6)
_ERROR_RESPONSE_CODES = ("70", "80", "81", "82", "84", "85", "90", "99", "110", "120", "161")

# Doctors the GMC no longer returns (`existsInGmc` false, no designated body): they keep their names,
# dates and recommendation history, and their latest connection log is the GMC sync's removal.
_GMC_DISCONNECTED_SHARE = 0.015  # of GMC doctors
# Connection changes the GMC nightly sync wrote: no requestType, reason or responseCode, and this `updatedBy`.
GMC_SYNC_UPDATED_BY = "GMC sync"
_GMC_SYNC_LOG_SHARE = 0.25  # of the successful changes in the connection history
# Hidden discrepancies: an admin of one of the two bodies hid the doctor from its Discrepancies list.
_HIDDEN_DISCREPANCY_SHARE = 0.05  # of doctors whose TIS body differs from their GMC body
_HIDDEN_EXPIRED_SHARE = 0.1  # of hidden discrepancies: hiddenUntilDate already past
HIDDEN_REASONS = (
    "Awaiting GMC transfer", "Connection change requested", "Out of programme", "Doctor on leave",
    "TIS record being corrected", "Dual training agreement",
)  # fmt: skip

# --- vectorised text building ----------------------------------------------------------------


def _text(indices: np.ndarray, dictionary: Sequence[str] | pa.Array, null: np.ndarray | None = None) -> pa.Array:
    """Strings from small-dictionary indices: one take, no per-record Python."""
    idx = pa.array(np.asarray(indices, dtype=np.int32), mask=null)
    values = dictionary if isinstance(dictionary, pa.Array) else pa.array(list(dictionary), pa.string())
    return pa.DictionaryArray.from_arrays(idx, values).cast(pa.string())


def _dates(days: np.ndarray, fmt: str, null: np.ndarray | None = None) -> pa.Array:
    """Format days since 1970 with `fmt`, formatting each distinct day only once."""
    if len(days) == 0:
        return pa.array([], pa.string())
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1, dtype=np.int32)
    return _text(days - low, pc.strftime(pa.array(span, pa.date32()), format=fmt), null)


@lru_cache(maxsize=1)
def _times_of_day() -> pa.Array:
    return pc.strftime(pa.array(np.arange(_DAY, dtype=np.int64), pa.timestamp("s")), format="%H:%M:%S")


def _datetimes(seconds: np.ndarray) -> pa.Array:
    """ISO date-times (`yyyy-mm-ddThh:mm:ss`) of seconds since 1970."""
    day, second = np.divmod(np.asarray(seconds, dtype=np.int64), _DAY)
    return pc.binary_join_element_wise(_dates(day, "%Y-%m-%d"), _text(second, _times_of_day()), "T")


# Each byte value's two lowercase hex digits, as a (256, 2) array of ASCII codes.
_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint8).reshape(256, 2)


def _hex_ids(*words: np.ndarray) -> pa.Array:
    """Fixed-width lowercase hex strings, 8 characters per uint32 word (Mongo ObjectId-like)."""
    n = len(words[0])
    big_endian = np.stack([np.asarray(w).astype(np.uint32) for w in words], axis=1).astype(">u4").view(np.uint8)
    chars = _HEX_PAIRS[big_endian].reshape(n, 8 * len(words))
    offsets = np.arange(n + 1, dtype=np.int64) * chars.shape[1]
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
    return array.cast(pa.string())


def _numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _days(day: date) -> int:
    return (day - _EPOCH).days


def _weighted(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _uniform_days(rng: np.random.Generator, low: int, high: int, size: int) -> np.ndarray:
    return rng.integers(low, high, size=size, endpoint=True)


def _other_body(rng: np.random.Generator, body: np.ndarray, k: int) -> np.ndarray:
    """A designated body different from `body`, uniformly among the other `k - 1` (itself if `k` is 1)."""
    if k < 2:
        return body.copy()
    return (body + rng.integers(1, k, size=len(body))) % k


def _wire_table(spec: RawSpec, columns: dict[str, pa.Array]) -> pa.Table:
    """Columns in the spec's wire order, plus `_record`; a field the generator does not produce is all null."""
    rows = len(next(iter(columns.values()))) if columns else 0
    table = pa.table({c.wire: columns.get(c.wire, pa.nulls(rows, pa.string())) for c in spec.columns})
    return _renumber(table)


def _renumber(table: pa.Table) -> pa.Table:
    if RECORD_COLUMN in table.column_names:
        table = table.drop_columns([RECORD_COLUMN])
    return table.append_column(RECORD_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))


# --- the clean population --------------------------------------------------------------------


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
        submission_day=as_of + np.where(under_notice > 0, due_soon, due_later),
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


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-owner counts: each row's owner index and its 0-based position within the owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _days_back(
    rng: np.random.Generator, owner: np.ndarray, steps: np.ndarray, max_steps: int, gap: tuple[int, int]
) -> np.ndarray:
    """Days between each row and its owner's latest row, `steps` rows later, with random gaps.

    The gaps are drawn per owner and summed, so an owner's rows stay in time order.
    """
    owners = int(owner.max()) + 1 if len(owner) else 0
    gaps = _uniform_days(rng, gap[0], gap[1], owners * max_steps).reshape(owners, max_steps)
    cumulative = np.concatenate([np.zeros((owners, 1), dtype=np.int64), np.cumsum(gaps, axis=1)], axis=1)
    return cumulative[owner, steps]


def _by_group(rng: np.random.Generator, group: np.ndarray, weights: dict[int, Sequence[float]]) -> np.ndarray:
    """A weighted draw per row, with the weights chosen by the row's group."""
    out = np.zeros(len(group), dtype=np.int64)
    for key, w in weights.items():
        rows = np.flatnonzero(group == key)
        out[rows] = _weighted(rng, w, len(rows))
    return out


def _recommendations(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    doctors = np.flatnonzero(people.in_gmc)
    notice = people.under_notice[doctors] > 0
    counts = _weighted(rng, _RECOMMENDATIONS_PER_DOCTOR, len(doctors))
    counts = np.where(notice, np.maximum(counts, 1), counts)
    doctor, position = _expand(counts)
    person = doctors[doctor]
    age = counts[doctor] - 1 - position  # 0 for the latest recommendation
    history = np.where(age > 0, 2, np.where(notice[doctor], 0, 1))
    keys = ("under_notice_latest", "latest", "older")
    status = _by_group(rng, history, {i: _STATUS_WEIGHTS[k] for i, k in enumerate(keys)})
    in_progress = np.isin(status, [STATUSES.index(s) for s in _IN_PROGRESS])
    submitted, completed = status == STATUSES.index("SUBMITTED_TO_GMC"), status == STATUSES.index("COMPLETED")
    n = len(person)
    still_open = np.zeros(len(doctors), dtype=bool)  # the doctor's latest recommendation is not completed
    still_open[doctor[age == 0]] = (in_progress | submitted)[age == 0]
    # At most 1000 + 3 * 1000 days back from the reference day: revalidation began in December 2012.
    completed_day = as_of - _uniform_days(rng, 30, 1000, len(doctors))
    latest_day = np.where(still_open, people.submission_day[doctors], completed_day)[doctor]
    gmc_day = latest_day - _days_back(rng, doctor, age, len(_RECOMMENDATIONS_PER_DOCTOR) - 1, (365, 1000))
    actual_day = np.minimum(gmc_day - _uniform_days(rng, 0, 60, n), as_of - _uniform_days(rng, 0, 30, n))
    rec_type = _weighted(rng, _TYPE_WEIGHTS, n)
    deferred = rec_type == 1
    reason = _by_group(rng, (age > 0).astype(np.int64), {0: _CURRENT_REASON_WEIGHTS, 1: _HISTORIC_REASON_WEIGHTS})
    outcome = np.where(completed, (rng.random(n) < 0.07).astype(np.int64), 2)
    created_day = np.minimum(gmc_day - _uniform_days(rng, 60, 200, n), as_of - 1)  # when it was started
    created = created_day * _DAY + rng.integers(0, _DAY, n)
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
            "deferralSubReason": _text(rng.integers(0, 8, n), DEFERRAL_SUB_REASONS, null=~deferred | (reason != 0)),
            "admin": _text(rng.integers(0, len(ADMINS), n), ADMINS, null=status == STATUSES.index("NOT_STARTED")),
        },
    )


def _history_lookup() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The connection histories as arrays indexed [history, position]: type, new, previous, failed, length."""
    shape = (len(_HISTORIES), max(len(h) for h in _HISTORIES))
    kind, new, previous = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    failed = np.zeros(shape, bool)
    for h, events in enumerate(_HISTORIES):
        for p, (request, new_body, previous_body, fail) in enumerate(events):
            kind[h, p] = request == "REMOVE"
            new[h, p], previous[h, p] = _BODY_SYMBOLS.index(new_body), _BODY_SYMBOLS.index(previous_body)
            failed[h, p] = fail
    return kind, new, previous, failed, np.array([len(h) for h in _HISTORIES])


def _connection_logs(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    """Connection histories that end at each doctor's current GMC body (or a removal, if not in GMC or the GMC
    no longer returns them)."""
    n_people = len(people.gmc_number)
    disconnected = ~people.in_gmc & (rng.random(n_people) < _DISCONNECTED_WITH_HISTORY_SHARE)
    subjects = np.flatnonzero(people.in_gmc | disconnected)
    history = np.where(
        people.in_gmc[subjects], _weighted(rng, _CONNECTED_HISTORY_WEIGHTS, len(subjects)), _DISCONNECTED_HISTORY
    )
    kind, new, previous, failed, length = _history_lookup()
    shape = kind.shape
    subject, position = _expand(length[history])
    person, h = subjects[subject], history[subject]
    current = people.gmc_body[subjects]
    owner = people.owner[subjects]
    k = len(people.codes)
    earlier = np.where((owner >= 0) & (owner != current), owner, _other_body(rng, current, k))  # X
    earliest = _other_body(rng, earlier, k)  # Y
    bodies = np.stack([np.full(len(subjects), -1), current, earlier, earliest])
    new_body = bodies[new[h, position], subject]
    previous_body = bodies[previous[h, position], subject]
    is_remove = kind[h, position].astype(bool)
    removed_day = as_of - _uniform_days(rng, 1, 3 * 365, n_people)
    last_day = np.where(people.in_gmc[person], people.added_day[person], removed_day[person])
    day = last_day - _days_back(rng, subject, length[h] - 1 - position, shape[1] - 1, (30, 1000))
    seconds = day * _DAY + rng.integers(8 * 3600, 18 * 3600, len(person))
    reason = np.where(
        is_remove,
        _weighted(rng, _REMOVE_REASON_WEIGHTS, len(person)),
        _weighted(rng, _ADD_REASON_WEIGHTS, len(person)),
    )
    fail = failed[h, position]
    response = np.where(fail, rng.integers(1, len(_ERROR_RESPONSE_CODES) + 1, len(person)), 0)
    # A share of the successful changes were written by the GMC nightly sync, not requested from TIS.
    from_gmc = ~fail & (rng.random(len(person)) < _GMC_SYNC_LOG_SHARE)
    # A doctor the GMC no longer returns: after their last connection, the GMC sync's removal from that body.
    gone = np.flatnonzero(people.gmc_disconnected[subjects])  # subject positions
    gone_added = people.added_day[subjects[gone]]
    gone_day = gone_added + 1 + (rng.random(len(gone)) * np.maximum(as_of - gone_added - 1, 0)).astype(np.int64)
    order = np.argsort(np.concatenate([subject, gone]), kind="stable")  # each doctor's events together, in order

    def extended(main: np.ndarray, extra: np.ndarray | int | bool) -> np.ndarray:
        return np.concatenate([main, np.broadcast_to(extra, len(gone)).astype(main.dtype)])[order]

    person, is_remove, reason = extended(person, subjects[gone]), extended(is_remove, True), extended(reason, 0)
    new_body, previous_body = extended(new_body, -1), extended(previous_body, current[gone])
    response, from_gmc = extended(response, 0), extended(from_gmc, True)
    seconds = extended(seconds, gone_day * _DAY)
    # The GMC sync runs at night.
    seconds = np.where(from_gmc, seconds // _DAY * _DAY + rng.integers(1 * 3600, 5 * 3600, len(person)), seconds)
    admin = _text(rng.integers(0, len(ADMINS), len(person)), ADMINS)
    updated_by = pc.if_else(pa.array(from_gmc), pa.scalar(GMC_SYNC_UPDATED_BY, pa.string()), admin)
    return _wire_table(
        RAW_SPECS["connection_logs"],
        {
            "gmcId": _numbers(people.gmc_number[person]),
            "newDesignatedBodyCode": _text(np.maximum(new_body, 0), people.codes, null=new_body < 0),
            "previousDesignatedBodyCode": _text(np.maximum(previous_body, 0), people.codes, null=previous_body < 0),
            "updatedBy": updated_by,
            "requestTime": _datetimes(seconds),
            "reason": _text(reason, ("1", "2", "3"), null=from_gmc),
            "requestType": _text(is_remove, ("ADD", "REMOVE"), null=from_gmc),
            "responseCode": _text(response, ("0", *_ERROR_RESPONSE_CODES), null=from_gmc),
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


# --- faults ----------------------------------------------------------------------------------

Tables = dict[str, pa.Table]
_HANDFUL = 5
_UNMAPPED_SHARE = 0.8
_MISSING_SHARE = 0.4
# The wire names of the mapped trainee fields TIS sends (the others come from GMC).
_MAPPED_TRAINEE_FIELDS = tuple(RAW_SPECS["tis_trainees"].column(name).wire for name in MAPPED_TRAINEE_FIELDS
                               if name in RAW_SPECS["tis_trainees"].schema.names)


def _handful(rng: np.random.Generator, rows: int, size: int = _HANDFUL) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(size, rows), replace=False))


def _replace(table: pa.Table, column: str, positions: np.ndarray, values: pa.Array) -> pa.Table:
    """`table` with `column` at `positions` (sorted) replaced by `values`, in one kernel call."""
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[positions] = True
    array = pc.replace_with_mask(table[column].combine_chunks(), pa.array(mask), values)
    return table.set_column(table.schema.get_field_index(column), column, array)


def _mapping_break(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    tables["recommendation_records"] = tables["recommendation_records"].slice(0, 0)


def _unmapped_fields(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    table = tables["tis_trainees"]
    blank = pa.array(rng.random(table.num_rows) < _UNMAPPED_SHARE)
    for column in _MAPPED_TRAINEE_FIELDS:
        array = pc.if_else(blank, pa.scalar(None, pa.string()), table[column])
        table = table.set_column(table.schema.get_field_index(column), column, array)
    tables["tis_trainees"] = table


def _missing_connections(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    table = tables["gmc_doctors"]
    in_body = np.flatnonzero(_as_bool(pc.equal(table["designatedBodyCode"], people.codes[0])))
    dropped = rng.choice(in_body, size=round(_MISSING_SHARE * len(in_body)), replace=False)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[dropped] = False
    tables["gmc_doctors"] = table.filter(pa.array(keep))


def _duplicate_keys(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    table = tables["gmc_doctors"]
    copies = table.take(pa.array(_handful(rng, table.num_rows)))
    tables["gmc_doctors"] = pa.concat_tables([table, copies])


def _malformed_dates(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    """Impossible days (31/02/yyyy) and dd-mm-yyyy (a spelling no service writes), in GMC submission dates."""
    table = tables["gmc_doctors"]
    positions = _handful(rng, table.num_rows, 2 * _HANDFUL)
    original = table["submissionDate"].combine_chunks().take(pa.array(positions))
    impossible = pc.replace_substring_regex(original, r"^\d{2}/\d{2}/(\d{4})$", r"31/02/\1")
    iso = pc.replace_substring_regex(original, r"^(\d{2})/(\d{2})/(\d{4})$", r"\1-\2-\3")
    first = np.arange(len(positions)) < len(positions) // 2
    tables["gmc_doctors"] = _replace(table, "submissionDate", positions, pc.if_else(pa.array(first), impossible, iso))


def _unknown_enums(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    edits = (("recommendation_records", "outcome", "Pending GMC"), ("gmc_doctors", "underNotice", "Maybe"))
    for name, column, value in edits:
        positions = _handful(rng, tables[name].num_rows)
        values = pa.array([value] * len(positions), pa.string())
        tables[name] = _replace(tables[name], column, positions, values)


def _orphan_connection(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    """A connection log and a recommendation for a valid GMC number that neither GMC nor TIS knows."""
    number = str(people.orphan_number)
    when = people.as_of - 10
    log = {
        "gmcId": number,
        "newDesignatedBodyCode": people.codes[0],
        "updatedBy": ADMINS[0],
        "requestTime": _datetimes(np.array([when * _DAY + 10 * 3600]))[0].as_py(),
        "reason": "1",
        "requestType": "ADD",
        "responseCode": "0",
    }
    recommendation = {
        # The counter word 0xffffffff is never used by the clean ids, so this id is unique.
        "id": _hex_ids(np.array([when * _DAY]), rng.integers(0, 2**32, 1), np.array([0xFFFFFFFF]))[0].as_py(),
        "gmcNumber": number,
        "recommendationType": "REVALIDATE",
        "recommendationStatus": "STARTED",
        "gmcSubmissionDate": _dates(np.array([when + 90]), "%Y-%m-%d")[0].as_py(),
        "admin": ADMINS[0],
    }
    for name, record in (("connection_logs", log), ("recommendation_records", recommendation)):
        table = tables[name]
        row = pa.table({c: pa.array([record.get(c)], pa.string()) for c in table.column_names if c != RECORD_COLUMN})
        tables[name] = pa.concat_tables([table.drop_columns([RECORD_COLUMN]), row])


def _append_records(table: pa.Table, records: Sequence[dict[str, str | None]]) -> pa.Table:
    """`table` with text `records` after its rows (a field a record leaves out is null)."""
    columns = [c for c in table.column_names if c != RECORD_COLUMN]
    rows = pa.table({c: pa.array([r.get(c) for r in records], pa.string()) for c in columns})
    return pa.concat_tables([table.select(columns), rows])


def _legacy_null_ids(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    """Two legacy (pre-2020 snapshot) recommendations of one doctor, both without an id: different records,
    which the sync must keep apart (a derived id), not take for duplicates of each other."""
    doctors = tables["gmc_doctors"]["gmcReferenceNumber"]
    number = doctors[int(rng.integers(0, len(doctors)))].as_py() if len(doctors) else str(people.gmc_number[0])
    first = _days(date(2015, 1, 1)) + int(rng.integers(0, 700))
    second = _days(date(2018, 1, 1)) + int(rng.integers(0, 700))
    day = _dates(np.array([first, first - 21, second, second - 9, second + 182]), "%Y-%m-%d").to_pylist()
    admin = rng.choice(len(ADMINS), size=2, replace=False)
    records = (
        {"id": None, "gmcNumber": number, "recommendationType": "REVALIDATE", "recommendationStatus": "COMPLETED",
         "outcome": "Approved", "gmcSubmissionDate": day[0], "actualSubmissionDate": day[1],
         "admin": ADMINS[admin[0]]},
        {"id": None, "gmcNumber": number, "recommendationType": "DEFER", "recommendationStatus": "COMPLETED",
         "outcome": "Approved", "gmcSubmissionDate": day[2], "actualSubmissionDate": day[3],
         "deferralDate": day[4], "deferralReason": "1", "deferralSubReason": "2", "admin": ADMINS[admin[1]]},
    )  # fmt: skip
    tables["recommendation_records"] = _append_records(tables["recommendation_records"], records)


def _tis_free_text_gmc(tables: Tables, rng: np.random.Generator, people: _People) -> None:
    """TIS keeps the GMC number as free text: one blank, one short (6 digits), one with a letter (O for 0),
    and one number held by two TIS persons (a second person, with its own tcsPersonId)."""
    table = tables["tis_trainees"]
    positions = _handful(rng, table.num_rows, 4)
    edited, shared = positions[:3], positions[3:]
    six = [n[:6] for n in table["gmcReferenceNumber"].take(pa.array(edited)).to_pylist()]  # three values
    values = ["", *six[1:2], *(n + "O" for n in six[2:3])]
    table = _replace(table, "gmcReferenceNumber", edited, pa.array(values, pa.string()))
    if len(shared):
        second = table.take(pa.array(shared))
        person_id = int(pc.max(pc.cast(table["tcsPersonId"], pa.int64())).as_py()) + 1
        second = second.set_column(
            second.schema.get_field_index("tcsPersonId"), "tcsPersonId", pa.array([str(person_id)], pa.string())
        )
        table = pa.concat_tables([table, second])
    tables["tis_trainees"] = table


def _as_bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


_Fault = Callable[[Tables, np.random.Generator, _People], None]
# Applied in this order whatever order they are asked for; mapping_break last, so that the
# recommendation payload is empty even when other faults touch it.
_FAULTS: dict[str, _Fault] = {
    "unmapped_fields": _unmapped_fields,
    "missing_connections": _missing_connections,
    "duplicate_keys": _duplicate_keys,
    "malformed_dates": _malformed_dates,
    "unknown_enums": _unknown_enums,
    "orphan_connection": _orphan_connection,
    "legacy_null_ids": _legacy_null_ids,
    "tis_free_text_gmc": _tis_free_text_gmc,
    "mapping_break": _mapping_break,
}


# --- the source ------------------------------------------------------------------------------


class SyntheticSource:
    """A seeded synthetic population of `doctors` people, optionally with named faults."""

    FAULTS: tuple[str, ...] = (
        "mapping_break",
        "unmapped_fields",
        "missing_connections",
        "duplicate_keys",
        "malformed_dates",
        "unknown_enums",
        "orphan_connection",
        # Appended last, so every fault above keeps its random stream (indexed by position here).
        "legacy_null_ids",
        "tis_free_text_gmc",
    )
    # Faults that are what the real services send, not a broken export: a release must not be blocked by them.
    REALISTIC_FAULTS: tuple[str, ...] = ("legacy_null_ids", "tis_free_text_gmc")

    def __init__(self, doctors: int = 20000, seed: int = 0, faults: Sequence[str] = (), *, as_of: date = AS_OF,
                 designated_bodies: Sequence[str] = PROD_CODES):
        # The environment's designated-body codes (`Settings.designated_bodies`), each sent with its real owner.
        self.designated_bodies: tuple[str, ...] = tuple(designated_bodies)
        if not self.designated_bodies:
            raise ValueError("a synthetic source needs at least one designated-body code")
        self.owners = owners_of(self.designated_bodies)
        if not 1 <= doctors <= _MAX_DOCTORS:
            raise ValueError(f"doctors must be between 1 and {_MAX_DOCTORS}, got {doctors}")
        if isinstance(faults, str):
            faults = [f.strip() for f in faults.split(",") if f.strip()]
        unknown = sorted(set(faults) - set(self.FAULTS))
        if unknown:
            raise ValueError(f"unknown synthetic fault(s) {', '.join(unknown)}; known faults: {', '.join(self.FAULTS)}")
        self.doctors, self.seed, self.as_of = int(doctors), int(seed), as_of
        self.faults: tuple[str, ...] = tuple(f for f in self.FAULTS if f in set(faults))
        faults_text = ", ".join(self.faults) or "none"
        self.description = f"synthetic: {self.doctors} doctors, seed {self.seed}, faults: {faults_text}"
        if as_of != AS_OF:
            self.description += f", as of {as_of.isoformat()}"
        if self.designated_bodies != PROD_CODES:
            self.description += f", designated bodies: {', '.join(self.designated_bodies)}"
        self._extracted: dict[str, WireInput] | None = None
        # The population is generated on demand, so it is as fresh as this instance (one per run).
        self.generated_at = datetime.now(UTC)

    def exported_at(self) -> datetime:
        """The generation time: when this source was made (not `as_of`, the day the data describes)."""
        return self.generated_at

    def fingerprint(self) -> str:
        parameters = {
            "generator": GENERATOR_VERSION,
            "doctors": self.doctors,
            "seed": self.seed,
            "faults": sorted(self.faults),
            "as_of": self.as_of.isoformat(),
            # Only another list than the default changes the fingerprint (so the default's stays as it was).
            **({} if self.designated_bodies == PROD_CODES else {"designated_bodies": list(self.designated_bodies)}),
        }
        return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()

    def extract(self) -> dict[str, WireInput]:
        if self._extracted is None:
            people, tables = self._clean_tables()
            self._apply_faults(tables, people)
            self._extracted = {name: WireInput(_renumber(tables[name]), ORIGIN) for name in RAW_SPECS}
        return dict(self._extracted)

    def _clean_tables(self) -> tuple[_People, Tables]:
        rng = np.random.default_rng([self.seed, 0])
        as_of = _days(self.as_of)
        people = _people(rng, self.doctors, as_of, self.designated_bodies)
        people = _disconnect(np.random.default_rng([self.seed, 2]), people)
        generators = {
            "gmc_doctors": _gmc_doctors,
            "tis_trainees": _tis_trainees,
            "recommendation_records": _recommendations,
            "connection_logs": _connection_logs,
        }
        tables = {name: make(rng, people, as_of) for name, make in generators.items()}
        tables[HIDDEN_DISCREPANCIES.name] = _hidden_discrepancies(rng, people, tables, as_of)
        return people, tables

    def _apply_faults(self, tables: Tables, people: _People) -> None:
        """Each fault draws from its own stream, so faults never disturb each other or the clean data."""
        for name, fault in _FAULTS.items():
            if name in self.faults:
                fault(tables, np.random.default_rng([self.seed, 1, self.FAULTS.index(name)]), people)

    def __repr__(self) -> str:
        bodies = "" if self.designated_bodies == PROD_CODES else f", designated_bodies={list(self.designated_bodies)}"
        return f"SyntheticSource(doctors={self.doctors}, seed={self.seed}, faults={list(self.faults)}{bodies})"
